//! ONNX Runtime running all-MiniLM-L6-v2 on the same queries as the candle embedder, so `bench memory` can print
//! both query-embedding latencies from one run on one machine. The export (`minilm-onnx-int8` in the manifest)
//! stores its weights as int8 and computes in f32; the tokenizer is the candle model's.

use ort::session::Session;
use ort::value::Tensor;
use tokenizers::{Tokenizer, TruncationParams};

use crate::inference::onnx::ModelFile;
use crate::inference::InferenceError;
use crate::models::ModelDir;

/// The manifest entry of the ONNX export.
pub const MODEL: &str = "minilm-onnx-int8";
/// Intra-op threads: both cores, as ONNX Runtime is usually run.
const THREADS: usize = 2;
/// sentence-transformers' truncation for this model, as the candle embedder uses.
const MAX_TOKENS: usize = 256;

/// One ONNX Runtime session on the export, with the MiniLM tokenizer.
pub struct OnnxMiniLm {
    session: Session,
    tokenizer: Tokenizer,
}

impl OnnxMiniLm {
    /// Opens `model` with the tokenizer of the candle model in `minilm`.
    pub fn load(model: &ModelFile, minilm: &ModelDir) -> Result<Self, InferenceError> {
        let mut tokenizer = Tokenizer::from_file(minilm.path("tokenizer.json"))
            .map_err(|e| InferenceError::Tokenizer(e.to_string()))?;
        // The shipped tokenizer pads every input to 128 tokens; one query needs no padding (as for candle).
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| InferenceError::Tokenizer(e.to_string()))?;
        Ok(Self { session: model.open(THREADS)?, tokenizer })
    }

    /// The mean-pooled, L2-normalised embedding of one text (tokenizing included, as for the candle embedder).
    pub fn embed_one(&mut self, text: &str) -> Result<Vec<f32>, InferenceError> {
        let failed = |e: ort::Error| InferenceError::Invalid(format!("ONNX Runtime failed on MiniLM: {e}"));
        let encoding = self.tokenizer.encode(text, true).map_err(|e| InferenceError::Tokenizer(e.to_string()))?;
        let ids: Vec<i64> = encoding.get_ids().iter().map(|&i| i64::from(i)).collect();
        let n = ids.len();
        let outputs = self
            .session
            .run(ort::inputs![
                "input_ids" => Tensor::from_array(([1usize, n], ids)).map_err(failed)?,
                "attention_mask" => Tensor::from_array(([1usize, n], vec![1i64; n])).map_err(failed)?,
                "token_type_ids" => Tensor::from_array(([1usize, n], vec![0i64; n])).map_err(failed)?,
            ])
            .map_err(failed)?;
        let hidden = outputs
            .get("last_hidden_state")
            .ok_or_else(|| InferenceError::Invalid("the MiniLM export gave no last_hidden_state".into()))?
            .try_extract_tensor::<f32>()
            .map_err(failed)?
            .1;
        let dim = hidden.len() / n.max(1);
        let mut mean = vec![0f32; dim];
        for token in hidden.chunks(dim) {
            for (m, v) in mean.iter_mut().zip(token) {
                *m += v / n as f32;
            }
        }
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(f32::EPSILON);
        Ok(mean.into_iter().map(|v| v / norm).collect())
    }
}
