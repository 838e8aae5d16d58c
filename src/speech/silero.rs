//! Silero VAD (v6, ONNX): the probability that each 32 ms window of a call's audio is speech. One model on its own
//! thread serves every call; each call keeps its own recurrent state and the context carried between windows, as
//! Silero's own wrapper does (the last 32 samples at 8 kHz, 64 at 16 kHz, are fed again before the next window).

use std::path::Path;

use ort::session::Session;
use ort::value::Tensor;

use crate::inference::onnx;
use crate::inference::worker::{Lane, Worker};
use crate::inference::InferenceError;

/// Windows waiting before callers wait.
const QUEUE: usize = 256;
/// The model file in the `silero-vad` folder.
pub const MODEL_FILE: &str = "silero_vad.onnx";
/// Size of the recurrent state (2 × 1 × 128).
const STATE: usize = 256;

/// One window with its context, and the state before it.
struct Window {
    samples: Vec<f32>,
    state: Vec<f32>,
    rate: u32,
}

/// The loaded model, shared by every call.
#[derive(Clone)]
pub struct SileroVad {
    worker: Worker<Window, (f32, Vec<f32>)>,
}

impl std::fmt::Debug for SileroVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SileroVad")
    }
}

impl SileroVad {
    /// Loads `dir/silero_vad.onnx` with the ONNX Runtime `library` on thread `tourdesk-vad`.
    pub async fn load(dir: &Path, library: &Path) -> Result<Self, InferenceError> {
        let model = onnx::ModelFile::new("silero-vad", dir.join(MODEL_FILE), library)?;
        let load = move || Ok((model.open(1)?, ()));
        let (worker, ()) = Worker::spawn_serial("vad", QUEUE, load, run).await?;
        Ok(Self { worker })
    }

    /// A fresh detector state for one stream of audio at `rate` (8000 or 16000 Hz).
    pub fn stream(&self, rate: u32) -> Result<SileroStream, InferenceError> {
        let (window, context) = match rate {
            8_000 => (256, 32),
            16_000 => (512, 64),
            other => return Err(InferenceError::Invalid(format!("Silero VAD runs at 8 or 16 kHz, not {other} Hz"))),
        };
        Ok(SileroStream {
            vad: self.clone(),
            rate,
            window,
            context: vec![0.0; context],
            state: vec![0.0; STATE],
            pending: Vec::with_capacity(window),
        })
    }
}

fn run(session: &mut Session, window: Window) -> Result<(f32, Vec<f32>), InferenceError> {
    let failed = |e: ort::Error| InferenceError::Invalid(format!("Silero VAD failed: {e}"));
    let n = window.samples.len();
    let outputs = session
        .run(ort::inputs![
            "input" => Tensor::from_array(([1usize, n], window.samples)).map_err(failed)?,
            "state" => Tensor::from_array(([2usize, 1, 128], window.state)).map_err(failed)?,
            "sr" => Tensor::from_array(((), vec![i64::from(window.rate)])).map_err(failed)?,
        ])
        .map_err(failed)?;
    let value = |name: &str| {
        outputs
            .get(name)
            .ok_or_else(|| InferenceError::Invalid(format!("Silero VAD gave no {name}")))
            .and_then(|v| v.try_extract_tensor::<f32>().map(|(_, data)| data.to_vec()).map_err(failed))
    };
    let probability = value("output")?.first().copied().unwrap_or(0.0);
    Ok((probability, value("stateN")?))
}

/// One call's detector: feed it audio in any sizes, get a probability per completed window.
pub struct SileroStream {
    vad: SileroVad,
    rate: u32,
    window: usize,
    context: Vec<f32>,
    state: Vec<f32>,
    pending: Vec<f32>,
}

impl SileroStream {
    /// Samples per window (32 ms).
    pub fn window(&self) -> usize {
        self.window
    }

    /// Adds `samples` and returns the speech probability of each window they completed, in order.
    pub async fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, InferenceError> {
        let mut out = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.window - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == self.window {
                let mut input = Vec::with_capacity(self.context.len() + self.window);
                input.extend_from_slice(&self.context);
                input.append(&mut self.pending);
                let keep = self.context.len();
                self.context.copy_from_slice(&input[input.len() - keep..]);
                let window = Window { samples: input, state: std::mem::take(&mut self.state), rate: self.rate };
                match self.vad.worker.call(window, Lane::Now).await {
                    Ok((probability, state)) => {
                        self.state = state;
                        out.push(probability);
                    }
                    Err(e) => {
                        self.state = vec![0.0; STATE];
                        return Err(e);
                    }
                }
            }
        }
        Ok(out)
    }
}
