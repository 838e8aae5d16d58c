//! Pipecat's Smart Turn v3.2 (ONNX): given the caller's last eight seconds of speech, the probability that they
//! have finished their turn rather than paused mid-thought. The features are Whisper's log-mel spectrogram as
//! transformers computes it for an 8-second window (zero-mean unit-variance audio, left-padded with silence,
//! reflect-padded frames), on one model thread shared by every call.

use std::path::Path;

use ort::session::Session;
use ort::value::Tensor;

use super::audio::resample;
use super::mel::LogMel;
use crate::inference::onnx;
use crate::inference::worker::{Lane, Worker};
use crate::inference::InferenceError;

/// The model file in the `smart-turn` folder.
pub const MODEL_FILE: &str = "smart-turn.onnx";
/// Sample rate of the model's input.
pub const RATE: u32 = 16_000;
/// Audio the model sees: the last eight seconds.
pub const WINDOW_SECS: u32 = 8;
const WINDOW: usize = (WINDOW_SECS * RATE) as usize;
/// Mel bins and frames of the features.
const MELS: usize = 80;
const FRAMES: usize = 800;
/// Half a frame of reflection on each side (transformers' `center=True`).
const PAD: usize = 200;
/// Checks waiting before callers wait.
const QUEUE: usize = 64;

/// The loaded model.
#[derive(Clone)]
pub struct SmartTurn {
    worker: Worker<Vec<f32>, f32>,
}

impl std::fmt::Debug for SmartTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmartTurn")
    }
}

/// The model and its feature extractor, on the model thread.
struct Model {
    session: Session,
    mel: LogMel,
}

impl SmartTurn {
    /// Loads `dir/smart-turn.onnx` with the ONNX Runtime `library` on thread `tourdesk-turn`.
    pub async fn load(dir: &Path, library: &Path) -> Result<Self, InferenceError> {
        let model = onnx::ModelFile::new("smart-turn", dir.join(MODEL_FILE), library)?;
        let load = move || {
            let session = model.open(1)?;
            Ok((Model { session, mel: LogMel::new(RATE as usize, 400, 160, MELS) }, ()))
        };
        let (worker, ()) = Worker::spawn_serial("turn", QUEUE, load, run).await?;
        Ok(Self { worker })
    }

    /// The probability that the speaker of `audio` (16 kHz, the turn so far, silence after it included) has
    /// finished.
    pub async fn complete(&self, audio: Vec<f32>) -> Result<f32, InferenceError> {
        self.worker.call(audio, Lane::Now).await
    }

    /// [`SmartTurn::complete`] for the turn so far at `rate` Hz: only its last [`WINDOW_SECS`], all the model
    /// hears, are resampled.
    pub async fn complete_at(&self, audio: &[f32], rate: u32) -> Result<f32, InferenceError> {
        let keep = (WINDOW_SECS * rate) as usize;
        self.complete(resample(&audio[audio.len().saturating_sub(keep)..], rate, RATE)).await
    }
}

/// The model's input for `audio`: `80 × 800`, row-major.
pub fn features(mel: &LogMel, audio: &[f32]) -> Vec<f32> {
    let tail = &audio[audio.len().saturating_sub(WINDOW)..];
    let mut window = vec![0.0f32; WINDOW - tail.len()];
    window.extend_from_slice(tail);
    let n = window.len() as f64;
    let mean = window.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = window.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n;
    let scale = 1.0 / (var + 1e-7).sqrt();
    let normal: Vec<f32> = window.iter().map(|&x| ((f64::from(x) - mean) * scale) as f32).collect();
    // Reflection without repeating the edge sample (numpy's "reflect").
    let mut padded = Vec::with_capacity(normal.len() + 2 * PAD);
    padded.extend((1..=PAD).rev().map(|i| normal[i]));
    padded.extend_from_slice(&normal);
    padded.extend((1..=PAD).map(|i| normal[normal.len() - 1 - i]));
    mel.compute_unfolded(&padded, FRAMES)
}

fn run(model: &mut Model, audio: Vec<f32>) -> Result<f32, InferenceError> {
    let failed = |e: ort::Error| InferenceError::Invalid(format!("Smart Turn failed: {e}"));
    let input = features(&model.mel, &audio);
    let outputs = model
        .session
        .run(ort::inputs!["input_features" => Tensor::from_array(([1usize, MELS, FRAMES], input)).map_err(failed)?])
        .map_err(failed)?;
    let output = outputs.get("logits").ok_or_else(|| InferenceError::Invalid("Smart Turn gave no output".into()))?;
    let (_, p) = output.try_extract_tensor::<f32>().map_err(failed)?;
    // The graph ends in a sigmoid: already a probability.
    Ok(p.first().copied().unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test signal of the reference values: 0.5 s of silence, 1 s of a 220 + 440 Hz mix with a little
    /// pseudo-random noise, 0.5 s of silence, at 16 kHz.
    fn test_signal() -> Vec<f32> {
        let rate = RATE as usize;
        let (start, end) = (rate / 2, rate / 2 + rate);
        let mut seed: u32 = 12345;
        let tau = 2.0 * std::f64::consts::PI;
        (0..2 * rate)
            .map(|n| {
                if n < start || n >= end {
                    return 0.0;
                }
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = f64::from(seed >> 8) / 16_777_216.0 * 2.0 - 1.0;
                let t = n as f64 / rate as f64;
                (0.3 * (0.5 * (tau * 220.0 * t).sin() + 0.5 * (tau * 440.0 * t).sin()) + 0.02 * noise) as f32
            })
            .collect()
    }

    /// Values from pipecat's own feature extractor (equal to transformers' to 1.2e-7) on the same signal,
    /// computed once.
    #[test]
    fn features_match_pipecats_extractor() {
        let mel = LogMel::new(RATE as usize, 400, 160, MELS);
        let f = features(&mel, &test_signal());
        assert_eq!(f.len(), MELS * FRAMES);
        assert!((f[0] - -0.182610).abs() < 1e-4, "{}", f[0]);
        let frame_700 = [0.821833, 0.665751, 1.057647, 1.386409, 1.745191, 1.786678, 1.712412, 1.374742];
        for (m, want) in frame_700.iter().enumerate() {
            let got = f[m * FRAMES + 700];
            assert!((got - want).abs() < 1e-3, "mel {m} frame 700: {got} vs {want}");
        }
        assert!((f[10 * FRAMES + 700] - 1.726026).abs() < 1e-3);
        assert!(features(&mel, &[0.0; 1000]).iter().all(|&v| v == -1.5), "silence is -1.5 throughout");
    }
}
