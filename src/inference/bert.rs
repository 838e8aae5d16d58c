//! A BERT encoder forward pass tuned for short inputs on the CPU.
//!
//! Why not `candle_transformers::models::bert`: it multiplies by a transposed *view* of each weight, which the gemm
//! crate repacks on every call, and runs Q, K and V as three products. Measured on a 9-token query, a product against
//! a weight transposed once at load is ~30 % faster (177 µs vs 250 µs for 9×384·384×1536), and fusing Q, K and V cuts
//! two products per layer. The numbers are checked against sentence-transformers by the embedding test.
//!
//! Its linear layers are [`Linear`]s, held at the [`Precision`] the caller picks (int8 where the CPU has VNNI).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, VarBuilder};
use candle_transformers::models::bert::Config;

use super::linear::{Linear, Precision};

struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    fn load(vb: VarBuilder, dim: usize, eps: f64) -> candle_core::Result<Self> {
        Ok(Self { weight: vb.get(dim, "weight")?, bias: vb.get(dim, "bias")?, eps: eps as f32 })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_norm: Norm,
    intermediate: Linear,
    output: Linear,
    out_norm: Norm,
}

/// The encoder: embeddings and transformer layers, returning the last hidden states.
pub struct BertEncoder {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    embed_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
}

impl BertEncoder {
    /// Loads the weights of a `BertModel` checkpoint (with or without the `bert.` prefix), holding the linear layers
    /// at `precision`.
    pub fn load(vb: VarBuilder, c: &Config, precision: Precision) -> candle_core::Result<Self> {
        let vb = if vb.contains_tensor("embeddings.word_embeddings.weight") { vb } else { vb.pp("bert") };
        let h = c.hidden_size;
        let e = vb.pp("embeddings");
        let embedding = |name: &str, n: usize| e.pp(name).get((n, h), "weight").map(|w| Embedding::new(w, h));
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let s = l.pp("attention.self");
                Ok(Layer {
                    qkv: Linear::load_fused(&[s.pp("query"), s.pp("key"), s.pp("value")], h, h, precision)?,
                    attn_out: Linear::load(&l.pp("attention.output.dense"), h, h, true, precision)?,
                    attn_norm: Norm::load(l.pp("attention.output.LayerNorm"), h, c.layer_norm_eps)?,
                    intermediate: Linear::load(&l.pp("intermediate.dense"), h, c.intermediate_size, true, precision)?,
                    output: Linear::load(&l.pp("output.dense"), c.intermediate_size, h, true, precision)?,
                    out_norm: Norm::load(l.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            word: embedding("word_embeddings", c.vocab_size)?,
            position: embedding("position_embeddings", c.max_position_embeddings)?,
            token_type: embedding("token_type_embeddings", c.type_vocab_size)?,
            embed_norm: Norm::load(e.pp("LayerNorm"), h, c.layer_norm_eps)?,
            layers,
            heads: c.num_attention_heads,
            hidden: h,
        })
    }

    /// Hidden states `batch × len × hidden` for token ids and a 0/1 attention mask, both `batch × len` (u32).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, l) = ids.dims2()?;
        let (h, heads) = (self.hidden, self.heads);
        let head_dim = h / heads;
        let device: &Device = ids.device();
        let positions = Tensor::arange(0u32, l as u32, device)?;
        let x = self
            .word
            .forward(ids)?
            .broadcast_add(&self.position.forward(&positions)?)?
            .broadcast_add(&self.token_type.forward(&Tensor::zeros(1, DType::U32, device)?)?)?;
        let mut x = self.embed_norm.forward(&x)?.reshape((b * l, h))?;
        // Padding positions get the most negative score, as transformers does, so softmax gives them no weight.
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * f64::from(f32::MAX))?.reshape((b, 1, 1, l))?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x)?.reshape((b, l, 3, heads, head_dim))?;
            let part = |i: usize| qkv.narrow(2, i, 1)?.squeeze(2)?.transpose(1, 2)?.contiguous();
            let (q, k, v) = (part(0)?, part(1)?, part(2)?);
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b * l, h))?;
            let x1 = layer.attn_norm.forward(&(layer.attn_out.forward(&context)? + &x)?)?;
            let inner = super::gelu::gelu(&layer.intermediate.forward(&x1)?)?;
            x = layer.out_norm.forward(&(layer.output.forward(&inner)? + &x1)?)?;
        }
        x.reshape((b, l, h))
    }
}
