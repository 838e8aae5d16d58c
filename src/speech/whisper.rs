//! Whisper speech-to-text on candle, from the weights `models fetch` converted out of CTranslate2. Only as much
//! audio as the utterance needs (plus a margin) goes through the encoder, not Whisper's fixed 30-second window.

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, IndexOp, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{self as w, audio, model::Whisper, Config};
use serde::Serialize;
use tokenizers::Tokenizer;

use super::mel::mel_filters;
use super::SpeechToText;
use crate::inference::InferenceError;
use crate::models::{ModelDir, ModelError, CONVERTED_CONFIG, CONVERTED_WEIGHTS};

/// Mel frames added after the utterance before encoding (0.5 s): Whisper needs a little silence to end a sentence.
const MARGIN_FRAMES: usize = 50;
/// Most tokens decoded for one utterance.
const MAX_TOKENS: usize = 96;

/// A transcript and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    /// The words, trimmed.
    pub text: String,
    /// Seconds of audio.
    pub audio_secs: f64,
    /// Mel + encoder, milliseconds.
    pub encode_ms: f64,
    /// Token decoding, milliseconds.
    pub decode_ms: f64,
}

/// A loaded Whisper model.
pub struct WhisperStt {
    model: Whisper,
    tokenizer: Tokenizer,
    filters: Vec<f32>,
    config: Config,
    /// `<|startofprev|>` and the vocabulary hint (when set), `<|startoftranscript|>`, language and task tokens for
    /// multilingual models, then `<|notimestamps|>`.
    prompt: Vec<u32>,
    eot: u32,
    suppress: Vec<u32>,
}

fn token(t: &Tokenizer, s: &str) -> Result<u32, InferenceError> {
    t.token_to_id(s).ok_or_else(|| InferenceError::Tokenizer(format!("the Whisper tokenizer has no {s}")))
}

impl WhisperStt {
    /// Loads a Whisper model folder (the converted weights, their config, and `tokenizer.json`). `hint` is text in
    /// the domain's words (building names, "two bedroom") that biases recognition toward them; empty for none.
    pub fn load(dir: &ModelDir, hint: &str) -> Result<Self, InferenceError> {
        let path = |f: &str| dir.path(f);
        for f in [CONVERTED_WEIGHTS, CONVERTED_CONFIG] {
            if !path(f).exists() {
                return Err(ModelError::Missing { model: dir.spec.name.clone(), path: path(f) }.into());
            }
        }
        let config: Config =
            serde_json::from_slice(&std::fs::read(path(CONVERTED_CONFIG)).map_err(|e| {
                InferenceError::Invalid(format!("cannot read {}: {e}", path(CONVERTED_CONFIG).display()))
            })?)
            .map_err(|e| InferenceError::Invalid(format!("{}: {e}", path(CONVERTED_CONFIG).display())))?;
        let tokenizer =
            Tokenizer::from_file(path("tokenizer.json")).map_err(|e| InferenceError::Tokenizer(e.to_string()))?;
        let vb = load_weights(&path(CONVERTED_WEIGHTS))?;
        let model = Whisper::load(&vb, config.clone())?;
        let mut prompt = vec![token(&tokenizer, w::SOT_TOKEN)?];
        // Multilingual models take a language and a task; English-only ones (vocab 51864) take neither.
        if config.vocab_size >= 51865 {
            prompt.push(token(&tokenizer, "<|en|>")?);
            prompt.push(token(&tokenizer, w::TRANSCRIBE_TOKEN)?);
        }
        prompt.push(token(&tokenizer, w::NO_TIMESTAMPS_TOKEN)?);
        let eot = token(&tokenizer, w::EOT_TOKEN)?;
        let hint = hint.trim();
        if !hint.is_empty() {
            // Whisper's "previous text" conditioning: the domain's words make "bedroom" win over "madroom".
            let ids =
                tokenizer.encode(format!(" {hint}"), false).map_err(|e| InferenceError::Tokenizer(e.to_string()))?;
            let ids = ids.get_ids();
            let keep = ids.len().min(config.max_target_positions / 2 - 1);
            let mut with_hint = vec![token(&tokenizer, "<|startofprev|>")?];
            with_hint.extend_from_slice(&ids[ids.len() - keep..]);
            with_hint.extend(prompt);
            prompt = with_hint;
        }
        let suppress = config.suppress_tokens.clone();
        Ok(Self {
            model,
            tokenizer,
            filters: mel_filters(w::SAMPLE_RATE, w::N_FFT, config.num_mel_bins),
            config,
            prompt,
            eot,
            suppress,
        })
    }
}

fn load_weights(path: &Path) -> Result<VarBuilder<'static>, InferenceError> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)?;
    Ok(VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu))
}

impl SpeechToText for WhisperStt {
    fn transcribe(&mut self, pcm: &[f32]) -> Result<Transcript, InferenceError> {
        let started = Instant::now();
        let audio_secs = pcm.len() as f64 / w::SAMPLE_RATE as f64;
        let max_frames = self.config.max_source_positions * 2;
        let mel = audio::pcm_to_mel(&self.config, pcm, &self.filters);
        let n_mel = self.config.num_mel_bins;
        let total = mel.len() / n_mel;
        let mel = Tensor::from_vec(mel, (1, n_mel, total), &Device::Cpu)?;
        // The utterance plus a margin, even (the second convolution has stride 2), within the model's window.
        let frames = (pcm.len() / w::HOP_LENGTH + MARGIN_FRAMES).next_multiple_of(2).min(max_frames).min(total);
        let mel = mel.narrow(2, 0, frames)?;
        let features = self.model.encoder.forward(&mel, true)?;
        let encode_ms = started.elapsed().as_secs_f64() * 1000.0;

        let vocab = self.config.vocab_size;
        let mut mask = vec![0f32; vocab];
        for &t in &self.suppress {
            if (t as usize) < vocab {
                mask[t as usize] = f32::NEG_INFINITY;
            }
        }
        let mask = Tensor::new(mask.as_slice(), &Device::Cpu)?;
        let mut tokens = self.prompt.clone();
        for i in 0..MAX_TOKENS {
            let input = Tensor::new(tokens.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
            let hidden = self.model.decoder.forward(&input, &features, i == 0)?;
            let last = hidden.i((.., hidden.dim(1)? - 1..))?;
            let logits = self.model.decoder.final_linear(&last)?.i((0, 0))?.broadcast_add(&mask)?;
            let next = logits.argmax(D::Minus1)?.to_scalar::<u32>()?;
            if next == self.eot || tokens.len() >= self.config.max_target_positions {
                break;
            }
            tokens.push(next);
        }
        let text = self
            .tokenizer
            .decode(&tokens[self.prompt.len()..], true)
            .map_err(|e| InferenceError::Tokenizer(e.to_string()))?;
        let decode_ms = started.elapsed().as_secs_f64() * 1000.0 - encode_ms;
        Ok(Transcript { text: text.trim().to_string(), audio_secs, encode_ms, decode_ms })
    }
}
