//! Builds a `tokenizers` byte-level BPE tokenizer from the vocabulary stored in a GGUF file's metadata (GGUF
//! packages ship no `tokenizer.json`).

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::Split;
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::InferenceError;

/// Qwen2's pre-tokenizer split (from its `tokenizer.json`): letters, single digits, punctuation runs, newlines.
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF token types that are control or user-defined tokens (`<|im_start|>` and the like).
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

/// A tokenizer plus the ids the chat template needs.
pub struct GgufTokenizer {
    /// Encodes message text (control tokens in the text are *not* recognised: a caller cannot inject them).
    pub tokenizer: Tokenizer,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: u32,
    /// Id of every control token by its text.
    pub control: std::collections::HashMap<String, u32>,
}

fn strings(ct: &Content, key: &str) -> Result<Vec<String>, InferenceError> {
    let v = ct.metadata.get(key).ok_or_else(|| InferenceError::Tokenizer(format!("GGUF metadata lacks {key}")))?;
    let bad = |e: candle_core::Error| InferenceError::Tokenizer(format!("{key}: {e}"));
    v.to_vec().map_err(bad)?.iter().map(|s| s.to_string().cloned().map_err(bad)).collect()
}

fn u32_of(ct: &Content, key: &str) -> Result<u32, InferenceError> {
    ct.metadata
        .get(key)
        .and_then(|v| v.to_u32().ok())
        .ok_or_else(|| InferenceError::Tokenizer(format!("GGUF metadata lacks {key}")))
}

impl GgufTokenizer {
    /// Reads `tokenizer.ggml.*` from the metadata. Only byte-level BPE (`tokenizer.ggml.model = gpt2`) is supported.
    pub fn from_gguf(ct: &Content) -> Result<Self, InferenceError> {
        let model = ct.metadata.get("tokenizer.ggml.model").and_then(|v| v.to_string().ok()).cloned();
        if model.as_deref() != Some("gpt2") {
            return Err(InferenceError::Tokenizer(format!(
                "tokenizer {model:?} is not supported; only byte-level BPE (gpt2) GGUF models are"
            )));
        }
        let tokens = strings(ct, "tokenizer.ggml.tokens")?;
        let merges = strings(ct, "tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| match m.split_once(' ') {
                Some((a, b)) => Ok((a.to_string(), b.to_string())),
                None => Err(InferenceError::Tokenizer(format!("malformed merge {m:?}"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let types: Vec<i32> = match ct.metadata.get("tokenizer.ggml.token_type") {
            Some(Value::Array(v)) => v.iter().map(|t| t.to_i32().unwrap_or(1)).collect(),
            _ => vec![1; tokens.len()],
        };
        let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| InferenceError::Tokenizer(format!("cannot build BPE: {e}")))?;
        let mut tokenizer = Tokenizer::new(bpe);
        let pre = ct.metadata.get("tokenizer.ggml.pre").and_then(|v| v.to_string().ok()).map(String::as_str);
        let pre_tokenizer: PreTokenizerWrapper = match pre {
            Some("qwen2") => Sequence::new(vec![
                Split::new(
                    tokenizers::pre_tokenizers::split::SplitPattern::Regex(QWEN2_SPLIT.into()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map_err(|e| InferenceError::Tokenizer(e.to_string()))?
                .into(),
                ByteLevel::new(false, false, false).into(),
            ])
            .into(),
            Some("smollm") => {
                Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]).into()
            }
            _ => ByteLevel::new(false, true, true).into(),
        };
        tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
        let control: std::collections::HashMap<String, u32> = tokens
            .iter()
            .zip(&types)
            .enumerate()
            .filter(|(_, (_, t))| **t == CONTROL || **t == USER_DEFINED)
            .map(|(i, (s, _))| (s.clone(), i as u32))
            .collect();
        let specials: Vec<AddedToken> = control.keys().map(|t| AddedToken::from(t.clone(), true)).collect();
        tokenizer.add_special_tokens(specials).map_err(|e| InferenceError::Tokenizer(e.to_string()))?;
        tokenizer.set_encode_special_tokens(true);
        Ok(Self { tokenizer, eos: u32_of(ct, "tokenizer.ggml.eos_token_id")?, control })
    }

    /// Token ids of `text`, with no special tokens added or recognised.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, InferenceError> {
        Ok(self.tokenizer.encode(text, false).map_err(|e| InferenceError::Tokenizer(e.to_string()))?.get_ids().to_vec())
    }

    /// Text of `ids`, control tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, InferenceError> {
        self.tokenizer.decode(ids, true).map_err(|e| InferenceError::Tokenizer(e.to_string()))
    }

    /// The id of a control token such as `<|im_end|>`.
    pub fn control(&self, token: &str) -> Result<u32, InferenceError> {
        self.control
            .get(token)
            .copied()
            .ok_or_else(|| InferenceError::Tokenizer(format!("the model's vocabulary has no {token} token")))
    }
}
