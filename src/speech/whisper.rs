//! Whisper speech-to-text on candle, from the weights `models fetch` converted out of CTranslate2. Only as much
//! audio as the utterance needs (plus a margin) goes through the encoder, not Whisper's fixed 30-second window.

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{self as w, model::AudioEncoder, model::Whisper, Config};
use serde::Serialize;
use tokenizers::Tokenizer;

use super::mel::LogMel;
use super::whisper_decoder::CachedDecoder;
use super::SpeechToText;
use crate::inference::{InferenceError, Precision};
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
    /// Mean log-probability of the decoded tokens and the end of text: how sure the model was. OpenAI's Whisper
    /// takes below -1 as a failed decode; noise and mumbles heard as words land there.
    pub avg_logprob: f64,
}

/// A loaded Whisper model.
pub struct WhisperStt {
    encoder: AudioEncoder,
    decoder: CachedDecoder,
    tokenizer: Tokenizer,
    mel: LogMel,
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
    /// The decoder's projections take the fastest precision this CPU runs ([`Precision::fastest`]).
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
        // candle's encoder; our decoder, which caches self-attention (the weights are shared, not copied).
        let Whisper { encoder, .. } = Whisper::load(&vb, config.clone())?;
        let decoder = CachedDecoder::load(&vb, &config, Precision::fastest())?;
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
            encoder,
            decoder,
            tokenizer,
            mel: LogMel::new(w::SAMPLE_RATE, w::N_FFT, w::HOP_LENGTH, config.num_mel_bins),
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
        // The utterance plus a margin, even (the second convolution has stride 2), within the model's window.
        let frames = (pcm.len() / w::HOP_LENGTH + MARGIN_FRAMES).next_multiple_of(2).min(max_frames);
        let n_mel = self.config.num_mel_bins;
        let mel = Tensor::from_vec(self.mel.compute(pcm, frames), (1, n_mel, frames), &Device::Cpu)?;
        let features = self.encoder.forward(&mel, true)?;
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
        let mut state = self.decoder.start(&features)?;
        let mut logits = self.decoder.step(&mut state, &tokens)?;
        // Speech runs at about 3 words (4 tokens) a second; far more text than that is a hallucination loop.
        let budget = (8.0 + audio_secs * 8.0).min(MAX_TOKENS as f64) as usize;
        let mut logprobs = Vec::new();
        for _ in 0..budget {
            let scores = logits.broadcast_add(&mask)?;
            let next = scores.argmax(D::Minus1)?.to_scalar::<u32>()?;
            let logprob = candle_nn::ops::log_softmax(&scores, D::Minus1)?.get(next as usize)?.to_scalar::<f32>()?;
            logprobs.push(f64::from(logprob));
            if next == self.eot || tokens.len() >= self.config.max_target_positions {
                break;
            }
            tokens.push(next);
            if let Some(repeat) = repeated_tail(&tokens[self.prompt.len()..]) {
                // Greedy decoding fell into a loop ("My name is Maria. My name is Maria. …"): keep one copy.
                tokens.truncate(tokens.len() - repeat);
                break;
            }
            logits = self.decoder.step(&mut state, &[next])?;
        }
        let text = self
            .tokenizer
            .decode(&tokens[self.prompt.len()..], true)
            .map_err(|e| InferenceError::Tokenizer(e.to_string()))?;
        let decode_ms = started.elapsed().as_secs_f64() * 1000.0 - encode_ms;
        let avg_logprob = logprobs.iter().sum::<f64>() / logprobs.len().max(1) as f64;
        Ok(Transcript { text: text.trim().to_string(), audio_secs, encode_ms, decode_ms, avg_logprob })
    }
}

/// Length of a run of tokens that ends `tokens` and is an exact copy of the run just before it (runs of 3 to 16
/// tokens), or `None`.
fn repeated_tail(tokens: &[u32]) -> Option<usize> {
    (3..=16.min(tokens.len() / 2))
        .find(|&n| tokens[tokens.len() - n..] == tokens[tokens.len() - 2 * n..tokens.len() - n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelStore;
    use candle_core::IndexOp;

    #[test]
    fn a_repeated_run_at_the_end_is_found() {
        assert_eq!(repeated_tail(&[1, 2, 3, 4, 5, 6, 4, 5, 6]), Some(3));
        assert_eq!(repeated_tail(&[9, 1, 2, 3, 4, 1, 2, 3, 4]), Some(4));
        // A word said twice ("no, no") is not a loop; nor is text without a repeat.
        assert_eq!(repeated_tail(&[7, 8, 8]), None);
        assert_eq!(repeated_tail(&[1, 2, 3, 4, 5, 6, 7]), None);
    }

    /// The cached decoder computes what candle's decoder computes (which recomputes every token each step): the
    /// same greedy token at every step and logits within Q8_0 rounding of the output projection.
    #[test]
    fn cached_decoder_matches_candles_decoder_step_by_step() {
        let models = std::env::var_os("TOURDESK_MODELS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(crate::config::default_models_dir);
        let dir = ModelStore::new(models).unwrap().resolve("whisper-tiny-en").expect("`just test` fetches Whisper");
        let stt = WhisperStt::load(&dir, "Tours at Hudson 360, a two bedroom.").unwrap();
        let vb = load_weights(&dir.path(CONVERTED_WEIGHTS)).unwrap();
        let mut reference = Whisper::load(&vb, stt.config.clone()).unwrap();
        let pcm: Vec<f32> = (0..32_000).map(|i| 0.2 * (i as f32 * 0.07).sin() * (i as f32 * 0.0011).cos()).collect();
        let frames = 250;
        let mel = Tensor::from_vec(stt.mel.compute(&pcm, frames), (1, 80, frames), &Device::Cpu).unwrap();
        let features = reference.encoder.forward(&mel, true).unwrap();
        // At f32, so only the caching differs (the int8 weights' accuracy is the transcription tests' to show).
        let decoder = CachedDecoder::load(&vb, &stt.config, Precision::F32).unwrap();
        let mut state = decoder.start(&features).unwrap();
        let mut tokens = stt.prompt.clone();
        let mut ours = decoder.step(&mut state, &tokens).unwrap();
        for step in 0..6 {
            let input = Tensor::new(tokens.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            let hidden = reference.decoder.forward(&input, &features, step == 0).unwrap();
            let last = hidden.i((.., tokens.len() - 1..)).unwrap();
            let theirs = reference.decoder.final_linear(&last).unwrap().i((0, 0)).unwrap();
            let diff = (&ours - &theirs).unwrap().abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
            let scale = theirs.abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 0.05 * scale, "step {step}: logits differ by {diff} (largest {scale})");
            let pick = |t: &Tensor| t.argmax(0).unwrap().to_scalar::<u32>().unwrap();
            assert_eq!(pick(&ours), pick(&theirs), "step {step}");
            tokens.push(pick(&theirs));
            ours = decoder.step(&mut state, &tokens[tokens.len() - 1..]).unwrap();
        }
    }
}
