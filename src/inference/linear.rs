//! A linear layer for the CPU, held for the fastest product there: the weight transposed once at load (f32), or
//! in 8-bit blocks that candle multiplies with int8 dot-product kernels.
//!
//! Short inputs (a query's ten tokens, one Whisper decoding step) are bound by reading the weights, not by arithmetic:
//! MiniLM's 42 MB of f32 weights took 9.1 ms per query against 5.1 ms for the same products on one layer's weights
//! kept in cache. On CPUs with AVX512-VNNI or AVX-VNNI the weights are held as GGML's Q8_0 (a scale per 32 values), a
//! quarter of the bytes, which candle multiplies with VNNI kernels: the same products took 2.3 ms on one thread, and
//! a batch of 320 rows 33 ms instead of 49. Those kernels need the inner dimension in whole 256-value blocks, so
//! narrower inputs are padded with zeros (zeros add nothing to a dot product).

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

/// How a linear layer holds its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// As trained (MiniLM's vectors match sentence-transformers to 1e-4).
    F32,
    /// 8-bit blocks multiplied by int8 kernels, where the CPU has VNNI. For MiniLM: a short query in 2.4 ms instead
    /// of 11.9, a batch at 1.7× the rate, vectors within a cosine of 0.997 of the f32 ones, and recall unchanged (on
    /// LoCoMo's development conversations R@5 0.730 against 0.735, MRR 0.630 for both).
    Int8,
}

impl Precision {
    /// Int8 where candle has int8 dot-product kernels for this CPU, f32 elsewhere (there, 8-bit weights are slower).
    pub fn fastest() -> Self {
        if int8_kernels() {
            Self::Int8
        } else {
            Self::F32
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn int8_kernels() -> bool {
    (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"))
        || (is_x86_feature_detected!("avxvnni") && is_x86_feature_detected!("avx2"))
}

#[cfg(not(target_arch = "x86_64"))]
fn int8_kernels() -> bool {
    false
}

/// Inner-dimension block of the int8 kernels (GGML's `QK_K`).
const INT8_BLOCK: usize = 256;

/// A linear layer's weight, held for the fastest product on this CPU.
enum Weight {
    /// Transposed (`in × out`, contiguous).
    F32(Tensor),
    /// `out × (in + pad)` in Q8_0 blocks; inputs get `pad` zero columns.
    Int8 { matmul: QMatMul, pad: usize },
}

/// `x · Wᵀ + b` for `x` of shape `(…, in)`.
pub struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

impl Linear {
    /// `vb`'s `weight` (`out × in`) and, when `bias`, its `bias`.
    pub fn load(
        vb: &VarBuilder,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
        precision: Precision,
    ) -> candle_core::Result<Self> {
        let weight = vb.get((out_dim, in_dim), "weight")?;
        let bias = if bias { Some(vb.get(out_dim, "bias")?) } else { None };
        Self::new(weight, bias, precision)
    }

    /// Several layers reading the same input as one, their outputs side by side (BERT's query, key and value).
    pub fn load_fused(
        vbs: &[VarBuilder],
        in_dim: usize,
        out_dim: usize,
        precision: Precision,
    ) -> candle_core::Result<Self> {
        let weights =
            vbs.iter().map(|vb| vb.get((out_dim, in_dim), "weight")).collect::<candle_core::Result<Vec<_>>>()?;
        let biases = vbs.iter().map(|vb| vb.get(out_dim, "bias")).collect::<candle_core::Result<Vec<_>>>()?;
        Self::new(Tensor::cat(&weights, 0)?, Some(Tensor::cat(&biases, 0)?), precision)
    }

    fn new(weight: Tensor, bias: Option<Tensor>, precision: Precision) -> candle_core::Result<Self> {
        let (_, in_dim) = weight.dims2()?;
        let weight = match precision {
            Precision::F32 => Weight::F32(weight.t()?.contiguous()?),
            Precision::Int8 => {
                let pad = in_dim.next_multiple_of(INT8_BLOCK) - in_dim;
                let padded = weight.pad_with_zeros(1, 0, pad)?;
                Weight::Int8 { matmul: QMatMul::from_qtensor(QTensor::quantize(&padded, GgmlDType::Q8_0)?)?, pad }
            }
        };
        Ok(Self { weight, bias })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let product = match &self.weight {
            Weight::F32(weight_t) => x.broadcast_matmul(weight_t)?,
            Weight::Int8 { matmul, pad: 0 } => matmul.forward(&x.contiguous()?)?,
            Weight::Int8 { matmul, pad } => matmul.forward(&x.pad_with_zeros(x.rank() - 1, 0, *pad)?)?,
        };
        match &self.bias {
            Some(bias) => product.broadcast_add(bias),
            None => Ok(product),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use std::collections::HashMap;

    /// Random weights for a layer of `in_dim` inputs and 48 outputs.
    fn weights(in_dim: usize) -> VarBuilder<'static> {
        let device = Device::Cpu;
        let mut tensors = HashMap::new();
        tensors.insert("weight".to_string(), Tensor::randn(0f32, 0.05, (48, in_dim), &device).unwrap());
        tensors.insert("bias".to_string(), Tensor::randn(0f32, 0.1, 48, &device).unwrap());
        VarBuilder::from_tensors(tensors, DType::F32, &device)
    }

    #[test]
    fn int8_weights_give_the_f32_product_padded_or_not_with_or_without_bias() {
        let device = Device::Cpu;
        // 384 is padded to 512; 512 is whole blocks.
        for in_dim in [384, 512] {
            for bias in [true, false] {
                let x = Tensor::randn(0f32, 1.0, (1, 5, in_dim), &device).unwrap();
                let vb = weights(in_dim);
                let exact = Linear::load(&vb, in_dim, 48, bias, Precision::F32).unwrap();
                let int8 = Linear::load(&vb, in_dim, 48, bias, Precision::Int8).unwrap();
                let want = exact.forward(&x).unwrap();
                let got = int8.forward(&x).unwrap();
                assert_eq!(got.dims(), [1, 5, 48]);
                let err = (&want - &got).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                let scale = want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(err < 0.03 * scale, "in {in_dim}, bias {bias}: off by {err} of {scale}");
            }
        }
    }
}
