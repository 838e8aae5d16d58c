//! Speech: the speech-to-text seam and Whisper on candle.

pub mod audio;
mod mel;
mod whisper;

pub use whisper::{Transcript, WhisperStt};

use crate::inference::InferenceError;

/// Turns 16 kHz mono speech into text. Synchronous and CPU-bound: run it on a blocking thread.
pub trait SpeechToText: Send {
    /// Transcribes one utterance (samples in −1..1 at 16 kHz).
    fn transcribe(&mut self, pcm: &[f32]) -> Result<Transcript, InferenceError>;
}
