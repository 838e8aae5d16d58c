//! The local sentence embedder: all-MiniLM-L6-v2 on candle's BERT, mean-pooled over the attention mask and
//! L2-normalised, as sentence-transformers computes it.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};
use tracing::debug_span;

use super::bert::BertEncoder;
use super::linear::Precision;
use super::{Embedder, InferenceError};
use crate::models::ModelDir;

/// sentence-transformers truncates this model at 256 tokens (the shipped tokenizer.json says 128, padded to 128).
const MAX_TOKENS: usize = 256;
/// Texts per forward pass: big enough to use both cores, small enough that one long text pads few others.
const BATCH: usize = 32;

/// all-MiniLM-L6-v2 on the CPU.
pub struct MiniLmEmbedder {
    model: BertEncoder,
    tokenizer: Tokenizer,
    model_id: String,
    dim: usize,
    device: Device,
}

impl MiniLmEmbedder {
    /// Loads the model from a verified model folder (`config.json`, `tokenizer.json`, `model.safetensors`) at the
    /// fastest precision for this CPU ([`Precision::fastest`]).
    pub fn load(dir: &ModelDir) -> Result<Self, InferenceError> {
        Self::load_with(dir, Precision::fastest())
    }

    /// Loads the model with its linear layers held at `precision`.
    pub fn load_with(dir: &ModelDir, precision: Precision) -> Result<Self, InferenceError> {
        let _span = debug_span!("embedder.load", model = %dir.spec.hf_repo, ?precision).entered();
        let device = Device::Cpu;
        let config_text = std::fs::read_to_string(dir.path("config.json"))
            .map_err(|e| InferenceError::Invalid(format!("config.json: {e}")))?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| InferenceError::Invalid(format!("config.json: {e}")))?;
        let mut tokenizer =
            Tokenizer::from_file(dir.path("tokenizer.json")).map_err(|e| InferenceError::Tokenizer(e.to_string()))?;
        // The shipped tokenizer pads every input to 128 tokens; padding to the longest in the batch gives the same
        // embeddings for a fraction of the work on short queries.
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| InferenceError::Tokenizer(e.to_string()))?;
        let weights = dir.path("model.safetensors");
        // The crate forbids unsafe code, so read the file rather than memory-map it (`from_mmaped_safetensors` is
        // unsafe); reading 90 MB once costs tens of milliseconds at start-up.
        let bytes =
            std::fs::read(&weights).map_err(|e| InferenceError::Invalid(format!("{}: {e}", weights.display())))?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)?;
        let model = BertEncoder::load(vb, &config, precision)?;
        Ok(Self { model, tokenizer, model_id: dir.spec.hf_repo.clone(), dim: config.hidden_size, device })
    }

    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, InferenceError> {
        let encodings =
            self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| InferenceError::Tokenizer(e.to_string()))?;
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let n = encodings.len();
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for enc in &encodings {
            ids.extend_from_slice(enc.get_ids());
            mask.extend_from_slice(enc.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device)?;
        let hidden = self.model.forward(&ids, &mask)?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let mean = summed.broadcast_div(&mask.sum(1)?)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}

impl Embedder for MiniLmEmbedder {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, InferenceError> {
        let _span = debug_span!("embedder.embed", n = texts.len()).entered();
        if let Some(i) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(InferenceError::Invalid(format!("text {i} is empty")));
        }
        // Batch texts of similar length together so short ones are not padded to a long neighbour.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<String> = chunk.iter().map(|&i| texts[i].clone()).collect();
            for (&i, vector) in chunk.iter().zip(self.embed_batch(&batch)?) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }
}
