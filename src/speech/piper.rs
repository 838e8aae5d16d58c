//! The Piper neural voice: espeak-ng phonemes, then the voice's VITS model through ONNX Runtime on a thread of its
//! own, one sentence per run, each sentence's audio scaled to full level as Piper does.

use std::path::Path;
use std::time::Instant;

use async_trait::async_trait;
use ort::session::Session;
use ort::value::Tensor;
use tracing::{info_span, Instrument};

use super::audio::Pcm;
use super::phonemes::{phoneme_ids, Phonemizer, VoiceConfig};
use super::tts::TextToSpeech;
use crate::inference::onnx;
use crate::inference::worker::{Lane, Worker};
use crate::inference::InferenceError;

/// Sentences waiting to be spoken before callers wait.
const QUEUE: usize = 32;
/// The model file in a Piper voice's folder.
pub const VOICE_MODEL: &str = "voice.onnx";
/// The voice's settings beside it.
pub const VOICE_CONFIG: &str = "voice.onnx.json";

/// One sentence to speak: phoneme ids and the scales.
struct Utterance {
    ids: Vec<i64>,
    scales: [f32; 3],
}

/// A Piper voice.
#[derive(Clone)]
pub struct PiperTts {
    worker: Worker<Utterance, Vec<f32>>,
    phonemizer: Phonemizer,
    rate: u32,
    config: std::sync::Arc<VoiceConfig>,
    name: String,
}

impl std::fmt::Debug for PiperTts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiperTts").field("voice", &self.name).field("rate", &self.rate).finish()
    }
}

impl PiperTts {
    /// Loads the voice in `dir` (`voice.onnx` and `voice.onnx.json`) with the ONNX Runtime `library`, on thread
    /// `tourdesk-tts`, and checks that espeak-ng phonemizes.
    pub async fn load(name: &str, dir: &Path, library: &Path) -> Result<Self, InferenceError> {
        let config_path = dir.join(VOICE_CONFIG);
        let config: VoiceConfig =
            std::fs::read(&config_path).map_err(|e| missing(name, &config_path, e)).and_then(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| {
                    InferenceError::Invalid(format!("{} is not a Piper voice config: {e}", config_path.display()))
                })
            })?;
        let model = onnx::ModelFile::new(name, dir.join(VOICE_MODEL), library)?;
        let load = move || {
            // Two threads: the first sentence of a reply is on the caller's critical path (`bench voice`: first-sentence
            // synthesis p50 173 -> 139 ms, p95 459 -> 324 ms against one thread).
            Ok((model.open(2)?, ()))
        };
        let (worker, ()) = Worker::spawn_serial("tts", QUEUE, load, synthesize).await?;
        let phonemizer = Phonemizer::new(config.espeak.voice.clone());
        phonemizer.sentences("ok").await?;
        Ok(Self { worker, phonemizer, rate: config.audio.sample_rate, config: config.into(), name: name.into() })
    }

    /// The voice's name in the manifest.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model's input ids for `text`, one list per sentence (what Piper itself would feed the voice).
    pub async fn ids(&self, text: &str) -> Result<Vec<Vec<i64>>, InferenceError> {
        let sentences = self.phonemizer.sentences(text).await?;
        Ok(sentences.iter().map(|s| phoneme_ids(s, &self.config.phoneme_id_map)).collect())
    }
}

fn missing(name: &str, path: &Path, e: impl std::fmt::Display) -> InferenceError {
    InferenceError::Invalid(format!(
        "the {name} voice file {} is missing ({e}): run `tourdesk models fetch {name} onnxruntime`",
        path.display()
    ))
}

/// Runs the voice on one sentence; the audio is scaled so its loudest sample is full level.
fn synthesize(session: &mut Session, utterance: Utterance) -> Result<Vec<f32>, InferenceError> {
    let failed = |e: ort::Error| InferenceError::Invalid(format!("the Piper voice failed: {e}"));
    let n = utterance.ids.len();
    let outputs = session
        .run(ort::inputs![
            "input" => Tensor::from_array(([1usize, n], utterance.ids)).map_err(failed)?,
            "input_lengths" => Tensor::from_array(([1usize], vec![n as i64])).map_err(failed)?,
            "scales" => Tensor::from_array(([3usize], utterance.scales.to_vec())).map_err(failed)?,
        ])
        .map_err(failed)?;
    let output =
        outputs.get("output").ok_or_else(|| InferenceError::Invalid("the Piper voice gave no output".into()))?;
    let (_, samples) = output.try_extract_tensor::<f32>().map_err(failed)?;
    let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs())).max(0.01);
    Ok(samples.iter().map(|s| (s / peak).clamp(-1.0, 1.0)).collect())
}

#[async_trait]
impl TextToSpeech for PiperTts {
    async fn synthesize(&self, text: &str) -> Result<Pcm, InferenceError> {
        let started = Instant::now();
        async {
            let inference = self.config.inference;
            let scales = [inference.noise_scale, inference.length_scale, inference.noise_w];
            let mut samples = Vec::new();
            for sentence in self.phonemizer.sentences(text).await? {
                let ids = phoneme_ids(&sentence, &self.config.phoneme_id_map);
                samples.extend(self.worker.call(Utterance { ids, scales }, Lane::Now).await?);
            }
            tracing::debug!(ms = started.elapsed().as_secs_f64() * 1000.0, samples = samples.len(), "tts");
            Ok(Pcm { samples, rate: self.rate })
        }
        .instrument(info_span!("tts", voice = %self.name, chars = text.len()))
        .await
    }
}
