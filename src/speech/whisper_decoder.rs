//! Whisper's text decoder with a key/value cache for self-attention.
//!
//! candle's `TextDecoder` caches only the cross-attention keys and values and recomputes self-attention over every
//! token at every step, so each new token costs as much as the whole prompt (vocabulary hint included). This one
//! keeps each layer's self-attention keys and values, so a step computes one token. It reads the same weights
//! (`model.decoder.*`) and computes the same function; the speech tests check its logits against candle's.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Tensor, D};
use candle_nn::{embedding, Embedding, LayerNorm, VarBuilder};
use candle_transformers::models::whisper::Config;

use crate::inference::{Linear, Precision};

fn layer_norm(size: usize, vb: VarBuilder) -> candle_core::Result<LayerNorm> {
    Ok(LayerNorm::new(vb.get(size, "weight")?, vb.get(size, "bias")?, 1e-5))
}

/// One attention module's projections.
struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    fn load(dim: usize, heads: usize, vb: VarBuilder, precision: Precision) -> candle_core::Result<Self> {
        Ok(Self {
            query: Linear::load(&vb.pp("q_proj"), dim, dim, true, precision)?,
            key: Linear::load(&vb.pp("k_proj"), dim, dim, false, precision)?,
            value: Linear::load(&vb.pp("v_proj"), dim, dim, true, precision)?,
            out: Linear::load(&vb.pp("out_proj"), dim, dim, true, precision)?,
            heads,
        })
    }

    /// `(1, n, dim)` → `(1, heads, n, dim / heads)`.
    fn split(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, n, dim) = x.dims3()?;
        x.reshape((b, n, self.heads, dim / self.heads))?.transpose(1, 2)?.contiguous()
    }

    /// Keys and values of `x`, split into heads.
    fn keys_values(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        Ok((self.split(&self.key.forward(x)?)?, self.split(&self.value.forward(x)?)?))
    }

    /// Attends queries from `x` to `keys`/`values` (split), with an additive `mask` over (query, key).
    fn attend(&self, x: &Tensor, keys: &Tensor, values: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let head_dim = x.dim(D::Minus1)? / self.heads;
        let q = (self.split(&self.query.forward(x)?)? * (head_dim as f64).powf(-0.5))?;
        let mut scores = q.matmul(&keys.t()?)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        self.out.forward(&weights.matmul(values)?.transpose(1, 2)?.flatten_from(2)?)
    }
}

/// One decoder layer.
struct Block {
    self_attn: Attention,
    self_ln: LayerNorm,
    cross_attn: Attention,
    cross_ln: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    mlp_ln: LayerNorm,
}

/// The decoder's weights; shared by every utterance.
pub(super) struct CachedDecoder {
    embed: Embedding,
    positions: Tensor,
    blocks: Vec<Block>,
    ln: LayerNorm,
    /// The output projection (the token embeddings, tied) in Q8_0: reading the f32 matrix (vocab × dim, 80 MB for
    /// tiny) every step is memory-bound and took half of each step; Q8_0 reads a quarter of that.
    logits: QMatMul,
}

/// One utterance's decoding: the encoder's keys and values per layer, and the tokens' keys and values so far.
pub(super) struct DecodeState {
    cross: Vec<(Tensor, Tensor)>,
    cache: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl CachedDecoder {
    /// Loads from the model's root (`model.decoder.*` below it), with the layers' weights at `precision`: a step
    /// computes one token, so it is bound by reading them (see [`Linear`]).
    pub(super) fn load(vb: &VarBuilder, config: &Config, precision: Precision) -> candle_core::Result<Self> {
        let vb = vb.pp("model.decoder");
        let (dim, heads) = (config.d_model, config.decoder_attention_heads);
        let blocks = (0..config.decoder_layers)
            .map(|i| {
                let vb = vb.pp(format!("layers.{i}"));
                Ok(Block {
                    self_attn: Attention::load(dim, heads, vb.pp("self_attn"), precision)?,
                    self_ln: layer_norm(dim, vb.pp("self_attn_layer_norm"))?,
                    cross_attn: Attention::load(dim, heads, vb.pp("encoder_attn"), precision)?,
                    cross_ln: layer_norm(dim, vb.pp("encoder_attn_layer_norm"))?,
                    fc1: Linear::load(&vb.pp("fc1"), dim, dim * 4, true, precision)?,
                    fc2: Linear::load(&vb.pp("fc2"), dim * 4, dim, true, precision)?,
                    mlp_ln: layer_norm(dim, vb.pp("final_layer_norm"))?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let embed = embedding(config.vocab_size, dim, vb.pp("embed_tokens"))?;
        let logits = QMatMul::from_qtensor(QTensor::quantize(embed.embeddings(), GgmlDType::Q8_0)?)?;
        Ok(Self {
            embed,
            logits,
            positions: vb.get((config.max_target_positions, dim), "embed_positions.weight")?,
            blocks,
            ln: layer_norm(dim, vb.pp("layer_norm"))?,
        })
    }

    /// Starts decoding against the encoder's output `(1, frames, dim)`.
    pub(super) fn start(&self, features: &Tensor) -> candle_core::Result<DecodeState> {
        let cross = self.blocks.iter().map(|b| b.cross_attn.keys_values(features)).collect::<Result<Vec<_>, _>>()?;
        Ok(DecodeState { cross, cache: vec![None; self.blocks.len()], len: 0 })
    }

    /// Feeds `tokens` (the prompt, then one token per step) and returns the logits after the last one.
    pub(super) fn step(&self, state: &mut DecodeState, tokens: &[u32]) -> candle_core::Result<Tensor> {
        let device = self.positions.device();
        let (past, n) = (state.len, tokens.len());
        let ids = Tensor::new(tokens, device)?.unsqueeze(0)?;
        let mut x = self.embed.forward(&ids)?.broadcast_add(&self.positions.narrow(0, past, n)?)?;
        // New token i sees every cached token and the new ones up to itself.
        let mask = if n > 1 {
            let m: Vec<f32> = (0..n)
                .flat_map(|i| (0..past + n).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
                .collect();
            Some(Tensor::from_vec(m, (n, past + n), device)?)
        } else {
            None
        };
        for ((block, cache), (ck, cv)) in self.blocks.iter().zip(state.cache.iter_mut()).zip(&state.cross) {
            let h = block.self_ln.forward(&x)?;
            let (k, v) = block.self_attn.keys_values(&h)?;
            let (k, v) = match cache.take() {
                Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                None => (k, v),
            };
            x = (&x + block.self_attn.attend(&h, &k, &v, mask.as_ref())?)?;
            *cache = Some((k, v));
            x = (&x + block.cross_attn.attend(&block.cross_ln.forward(&x)?, ck, cv, None)?)?;
            let mlp = block.fc2.forward(&block.fc1.forward(&block.mlp_ln.forward(&x)?)?.gelu()?)?;
            x = (&x + mlp)?;
        }
        state.len += n;
        self.logits.forward(&self.ln.forward(&x.narrow(1, n - 1, 1)?)?.squeeze(0)?)?.squeeze(0)
    }
}
