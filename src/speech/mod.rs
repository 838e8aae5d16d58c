//! Speech: the speech-to-text and text-to-speech seams, Whisper on candle, espeak-ng, the μ-law codec,
//! voice-activity detection and the end of a caller's turn.

pub mod audio;
mod espeak;
mod mel;
pub mod mulaw;
mod phonemes;
mod phrase_cache;
mod piper;
pub mod silero;
pub mod smart_turn;
mod stt_worker;
mod tts;
pub mod unfinished;
pub mod vad;
mod whisper;
mod whisper_decoder;
pub mod word_errors;

pub use phrase_cache::{PhraseCache, DEFAULT_PHRASE_CACHE_BYTES};
pub use piper::PiperTts;
pub use stt_worker::SttHandle;
pub use tts::{EspeakTts, TextToSpeech};
pub use whisper::{Transcript, WhisperStt};

use crate::inference::InferenceError;

/// Speech in and out, shared by every call: Whisper, the voice, and when an utterance starts and ends.
#[derive(Clone)]
pub struct Voice {
    /// Speech-to-text.
    pub stt: SttHandle,
    /// Text-to-speech.
    pub tts: std::sync::Arc<dyn TextToSpeech>,
    /// When an utterance starts and ends.
    pub vad: vad::VadConfig,
    /// Silero VAD, when loaded (else the energy detector decides what is speech).
    pub silero: Option<silero::SileroVad>,
    /// Smart Turn, when it decides the end of a turn (else a fixed silence does).
    pub turn: Option<smart_turn::SmartTurn>,
    /// Smart Turn, when loaded, asked about an utterance whose last word may end it or go on ("I'd like to move
    /// in"): whether the caller sounded finished.
    pub turn_check: Option<smart_turn::SmartTurn>,
}

/// Turns 16 kHz mono speech into text. Synchronous and CPU-bound: run it on a blocking thread.
pub trait SpeechToText: Send {
    /// Transcribes one utterance (samples in −1..1 at 16 kHz).
    fn transcribe(&mut self, pcm: &[f32]) -> Result<Transcript, InferenceError>;
}
