//! Text-to-speech: the seam, and espeak-ng (installed by the project's setup) behind it.

use std::time::Instant;

use async_trait::async_trait;
use tracing::{info_span, Instrument};

use super::audio::{decode_wav, Pcm};
use super::espeak;
use crate::inference::InferenceError;

/// Speaks text.
#[async_trait]
pub trait TextToSpeech: Send + Sync {
    /// Mono audio of `text` at the synthesizer's own rate.
    async fn synthesize(&self, text: &str) -> Result<Pcm, InferenceError>;
}

/// espeak-ng in a child process: fast (tens of milliseconds a sentence), robotic, and fully local.
#[derive(Debug, Clone)]
pub struct EspeakTts {
    program: String,
    voice: String,
    words_per_minute: u32,
}

impl EspeakTts {
    /// `voice` such as `en-us`, speed in words per minute (espeak's default is 175).
    pub fn new(voice: impl Into<String>, words_per_minute: u32) -> Self {
        Self { program: "espeak-ng".into(), voice: voice.into(), words_per_minute }
    }

    /// Checks that the program runs, so a server fails at start-up rather than on the first call.
    pub async fn check(&self) -> Result<(), InferenceError> {
        let out = tokio::process::Command::new(&self.program).arg("--version").output().await;
        match out {
            Ok(o) if o.status.success() => Ok(()),
            _ => Err(InferenceError::Invalid(format!(
                "cannot run {} for text-to-speech: install it with `just setup` (Debian package espeak-ng)",
                self.program
            ))),
        }
    }
}

#[async_trait]
impl TextToSpeech for EspeakTts {
    async fn synthesize(&self, text: &str) -> Result<Pcm, InferenceError> {
        let started = Instant::now();
        async {
            let dir = tempfile::tempdir().map_err(|e| InferenceError::Invalid(format!("no temporary folder: {e}")))?;
            let wav = dir.path().join("speech.wav");
            let (voice, speed) = (self.voice.as_str(), self.words_per_minute.to_string());
            espeak::run(&self.program, &["-v", voice, "-s", &speed], Some(&wav), text).await?;
            let bytes = tokio::fs::read(&wav)
                .await
                .map_err(|e| InferenceError::Invalid(format!("{} wrote no audio: {e}", self.program)))?;
            let pcm = decode_wav(&bytes)?;
            tracing::debug!(ms = started.elapsed().as_secs_f64() * 1000.0, samples = pcm.samples.len(), "tts");
            Ok(pcm)
        }
        .instrument(info_span!("tts", chars = text.len()))
        .await
    }
}
