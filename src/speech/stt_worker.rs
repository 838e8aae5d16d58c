//! Whisper on its own thread: calls from every live call queue there, so transcription never runs on the reactor.

use super::{SpeechToText, Transcript, WhisperStt};
use crate::inference::worker::{Lane, Worker};
use crate::inference::InferenceError;
use crate::models::ModelDir;

/// Utterances waiting before callers wait to queue.
const QUEUE: usize = 32;

/// Cloneable async access to one loaded Whisper model.
#[derive(Clone)]
pub struct SttHandle {
    worker: Worker<Vec<f32>, Transcript>,
    model: String,
}

impl SttHandle {
    /// Loads the model in `dir` on thread `tourdesk-stt`, with the vocabulary `hint` (see [`WhisperStt::load`]).
    pub async fn spawn(dir: ModelDir, hint: String) -> Result<Self, InferenceError> {
        let model = dir.spec.name.clone();
        let (worker, ()) = Worker::spawn_serial(
            "stt",
            QUEUE,
            move || Ok((WhisperStt::load(&dir, &hint)?, ())),
            |stt: &mut WhisperStt, pcm: Vec<f32>| stt.transcribe(&pcm),
        )
        .await?;
        Ok(Self { worker, model })
    }

    /// Transcribes 16 kHz samples.
    pub async fn transcribe(&self, pcm: Vec<f32>) -> Result<Transcript, InferenceError> {
        self.call(pcm, Lane::Now).await
    }

    /// Transcribes 16 kHz samples when no transcription a caller is waiting on is queued: for a transcript that
    /// may not be needed (an utterance that might go on after a pause).
    pub async fn transcribe_ahead(&self, pcm: Vec<f32>) -> Result<Transcript, InferenceError> {
        self.call(pcm, Lane::Background).await
    }

    async fn call(&self, pcm: Vec<f32>, lane: Lane) -> Result<Transcript, InferenceError> {
        let span = tracing::info_span!("stt", model = %self.model, secs = pcm.len() as f64 / 16_000.0, lane = ?lane);
        tracing::Instrument::instrument(self.worker.call(pcm, lane), span).await
    }

    /// The model's name in the manifest.
    pub fn model(&self) -> &str {
        &self.model
    }
}
