//! A decoder-only transformer of the llama family (llama, qwen2) on quantized GGUF weights, with the KV cache owned
//! by the caller.
//!
//! candle-transformers' `quantized_llama` and `quantized_qwen2` compute the same thing, but each keeps its KV cache
//! inside the model (private, and `quantized_qwen2` is not `Clone`), so a prompt prefix evaluated once cannot be
//! reused by the next prompt. Here the cache is a plain value: evaluate the fixed instructions once, clone the cache,
//! and every later prompt starts after them. The integration tests check our logits against both candle modules.

use std::io::{Read, Seek};

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor, D};
use candle_transformers::quantized_nn::RmsNorm;

/// Longest prompt plus answer a [`Decoder`] accepts (the rotary tables are built for this many positions).
pub const MAX_CONTEXT: usize = 4096;

/// Attention keys and values of every layer for the tokens seen so far. Cheap to clone (tensors are shared).
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// Number of tokens held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token has been evaluated yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A projection. Single-token steps are memory-bound and read the quantized weights; prompts are compute-bound,
/// and with `dense` set they run as an f32 GEMM on a dequantized copy (stored transposed, `in × out`, so the GEMM
/// never repacks it), which is far faster than quantized dot products on a CPU.
struct Linear {
    quantized: QMatMul,
    dense: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.dense {
            Some(w) if x.dim(1)? > 1 => x.broadcast_matmul(w),
            _ => self.quantized.forward(x),
        }
    }
}

/// How to hold the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderOptions {
    /// Keep a dequantized f32 copy of every layer's weights for prompt evaluation (about 4 bytes per parameter
    /// more memory, several times faster prompts).
    pub dense_prompt: bool,
    /// Re-quantize weight types without a SIMD kernel in candle (Q4_1, Q5_0, Q5_1) to Q8_0 at load.
    pub requantize: bool,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        Self { dense_prompt: true, requantize: true }
    }
}

/// Self-attention of one layer. Qwen2 adds biases to Q, K and V; llama has none.
struct Attention {
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    bq: Option<Tensor>,
    bk: Option<Tensor>,
    bv: Option<Tensor>,
}

/// SwiGLU feed-forward.
struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

struct Layer {
    attn_norm: RmsNorm,
    attn: Attention,
    ffn_norm: RmsNorm,
    mlp: Mlp,
}

/// Shape of the network, read from the GGUF metadata.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    /// `general.architecture`: `llama` or `qwen2`.
    pub arch: String,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (grouped-query attention when fewer than `n_head`).
    pub n_kv_head: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Rotary embeddings pair dimension `i` with `i + d/2` (NEOX, qwen2) instead of `2i` with `2i+1` (llama GGUF).
    pub rope_neox: bool,
}

/// The network. Immutable once loaded; all per-sequence state lives in a [`KvCache`].
pub struct Decoder {
    config: DecoderConfig,
    embeddings: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
}

fn linear_bias<R: Read + Seek>(
    ct: &gguf_file::Content,
    r: &mut R,
    name: &str,
    device: &Device,
) -> Result<Option<Tensor>> {
    if ct.tensor_infos.contains_key(name) {
        Ok(Some(ct.tensor(r, name, device)?.dequantize(device)?))
    } else {
        Ok(None)
    }
}

impl Decoder {
    /// Loads the weights of a `llama` or `qwen2` GGUF file.
    pub fn from_gguf<R: Read + Seek>(
        ct: &gguf_file::Content,
        r: &mut R,
        device: &Device,
        options: DecoderOptions,
    ) -> Result<Self> {
        let arch =
            ct.metadata.get("general.architecture").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
        let rope_neox = match arch.as_str() {
            "qwen2" => true,
            "llama" => false,
            other => candle_core::bail!("unsupported GGUF architecture {other:?} (expected llama or qwen2)"),
        };
        let md = |key: &str| {
            ct.metadata
                .get(&format!("{arch}.{key}"))
                .ok_or_else(|| candle_core::Error::Msg(format!("GGUF metadata lacks {arch}.{key}")))
        };
        let n_head = md("attention.head_count")?.to_u32()? as usize;
        let n_kv_head = md("attention.head_count_kv")?.to_u32()? as usize;
        let n_embd = md("embedding_length")?.to_u32()? as usize;
        let n_layer = md("block_count")?.to_u32()? as usize;
        let eps = md("attention.layer_norm_rms_epsilon")?.to_f32()? as f64;
        let freq_base = md("rope.freq_base").and_then(|v| v.to_f32()).unwrap_or(10_000.0);
        let head_dim = n_embd / n_head;

        let embeddings = ct.tensor(r, "token_embd.weight", device)?;
        let output = if ct.tensor_infos.contains_key("output.weight") {
            QMatMul::from_qtensor(ct.tensor(r, "output.weight", device)?)?
        } else {
            // Tied embeddings: the output projection is the embedding table.
            QMatMul::from_qtensor(ct.tensor(r, "token_embd.weight", device)?)?
        };
        let embeddings = embeddings.dequantize(device)?;
        let norm = RmsNorm::from_qtensor(ct.tensor(r, "output_norm.weight", device)?, eps)?;

        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let p = format!("blk.{i}");
            let mut q = |name: &str| -> Result<Linear> {
                let w = ct.tensor(r, &format!("{p}.{name}"), device)?;
                let requantize = options.requantize && !has_simd_kernel(w.dtype());
                let f32 = if options.dense_prompt || requantize { Some(w.dequantize(device)?) } else { None };
                let quantized = match &f32 {
                    Some(f) if requantize => QTensor::quantize(f, GgmlDType::Q8_0)?,
                    _ => w,
                };
                let dense = match f32 {
                    Some(f) if options.dense_prompt => Some(f.t()?.contiguous()?),
                    _ => None,
                };
                Ok(Linear { quantized: QMatMul::from_qtensor(quantized)?, dense })
            };
            let (wq, wk, wv, wo) =
                (q("attn_q.weight")?, q("attn_k.weight")?, q("attn_v.weight")?, q("attn_output.weight")?);
            let mlp = Mlp { gate: q("ffn_gate.weight")?, up: q("ffn_up.weight")?, down: q("ffn_down.weight")? };
            let attn = Attention {
                wq,
                wk,
                wv,
                wo,
                bq: linear_bias(ct, r, &format!("{p}.attn_q.bias"), device)?,
                bk: linear_bias(ct, r, &format!("{p}.attn_k.bias"), device)?,
                bv: linear_bias(ct, r, &format!("{p}.attn_v.bias"), device)?,
            };
            layers.push(Layer {
                attn_norm: RmsNorm::from_qtensor(ct.tensor(r, &format!("{p}.attn_norm.weight"), device)?, eps)?,
                attn,
                ffn_norm: RmsNorm::from_qtensor(ct.tensor(r, &format!("{p}.ffn_norm.weight"), device)?, eps)?,
                mlp,
            });
        }

        let theta: Vec<f32> =
            (0..head_dim).step_by(2).map(|i| 1.0 / freq_base.powf(i as f32 / head_dim as f32)).collect();
        let theta = Tensor::new(theta.as_slice(), device)?;
        let positions =
            Tensor::arange(0, MAX_CONTEXT as u32, device)?.to_dtype(DType::F32)?.reshape((MAX_CONTEXT, 1))?;
        let freqs = positions.matmul(&theta.reshape((1, head_dim / 2))?)?;
        Ok(Self {
            config: DecoderConfig { arch, n_head, n_kv_head, head_dim, n_layer, rope_neox },
            embeddings,
            layers,
            norm,
            output,
            cos: freqs.cos()?,
            sin: freqs.sin()?,
        })
    }

    /// The network's shape.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// An empty cache for a new sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache { layers: vec![None; self.config.n_layer], len: 0 }
    }

    /// Runs `tokens` after the ones already in `cache`, appends them to it, and returns the logits (f32, one per
    /// vocabulary entry) for the next token.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let seq = tokens.len();
        if seq == 0 {
            candle_core::bail!("no tokens to evaluate");
        }
        let pos = cache.len;
        if pos + seq > MAX_CONTEXT {
            candle_core::bail!("sequence of {} tokens exceeds the {MAX_CONTEXT}-token context", pos + seq);
        }
        let device = self.embeddings.device();
        let ids = Tensor::new(tokens, device)?;
        let mut x = self.embeddings.index_select(&ids, 0)?.unsqueeze(0)?;
        let mask = if seq > 1 { Some(causal_mask(seq, pos, device)?) } else { None };
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        for (layer, kv) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let h = layer.attn_norm.forward(&x)?;
            let h = self.attention(&layer.attn, &h, kv, &cos, &sin, mask.as_ref())?;
            x = (x + h)?;
            let h = layer.ffn_norm.forward(&x)?;
            let m = &layer.mlp;
            let h = m.down.forward(&(candle_nn::ops::silu(&m.gate.forward(&h)?)? * m.up.forward(&h)?)?)?;
            x = (x + h)?;
        }
        cache.len += seq;
        let x = self.norm.forward(&x.i((.., seq - 1..seq, ..))?)?;
        self.output.forward(&x)?.flatten_all()?.to_dtype(DType::F32)
    }

    fn attention(
        &self,
        a: &Attention,
        x: &Tensor,
        kv: &mut Option<(Tensor, Tensor)>,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, seq, n_embd) = x.dims3()?;
        let project = |w: &Linear, bias: &Option<Tensor>, heads: usize| -> Result<Tensor> {
            let y = w.forward(x)?;
            let y = match bias {
                Some(bias) => y.broadcast_add(bias)?,
                None => y,
            };
            y.reshape((b, seq, heads, c.head_dim))?.transpose(1, 2)?.contiguous()
        };
        let rope = |t: Tensor| -> Result<Tensor> {
            if c.rope_neox {
                candle_nn::rotary_emb::rope(&t, cos, sin)
            } else {
                candle_nn::rotary_emb::rope_i(&t, cos, sin)
            }
        };
        let q = rope(project(&a.wq, &a.bq, c.n_head)?)?;
        let k = rope(project(&a.wk, &a.bk, c.n_kv_head)?)?;
        let v = project(&a.wv, &a.bv, c.n_kv_head)?;
        let (k, v) = match kv.take() {
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
            None => (k, v),
        };
        *kv = Some((k.clone(), v.clone()));
        let rep = c.n_head / c.n_kv_head;
        let k = candle_transformers::utils::repeat_kv(k, rep)?.contiguous()?;
        let v = candle_transformers::utils::repeat_kv(v, rep)?.contiguous()?;
        let att = (q.matmul(&k.t()?)? / (c.head_dim as f64).sqrt())?;
        let att = match mask {
            Some(m) => att.broadcast_add(m)?,
            None => att,
        };
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b, seq, n_embd))?;
        a.wo.forward(&y)
    }
}

/// Whether candle has a SIMD dot product for this weight type on x86. Q4_1, Q5_0 and Q5_1 fall back to scalar code
/// (≈ 6 tokens/s for Qwen2.5-0.5B on two cores), so such weights are re-quantized to Q8_0 at load: finer than the
/// original, so no precision is lost, at about 1.06 bytes per weight.
fn has_simd_kernel(dtype: GgmlDType) -> bool {
    !matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Additive mask (seq × pos+seq): 0 where query `i` (at position `pos + i`) may see key `j`, −∞ after it.
fn causal_mask(seq: usize, pos: usize, device: &Device) -> Result<Tensor> {
    let kv = pos + seq;
    let m: Vec<f32> =
        (0..seq).flat_map(|i| (0..kv).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 })).collect();
    Tensor::from_vec(m, (seq, kv), device)
}

/// Index of the largest logit.
pub fn argmax(logits: &Tensor) -> Result<u32> {
    logits.argmax(D::Minus1)?.to_scalar::<u32>()
}
