//! Converts a CTranslate2 Whisper model (`model.bin`, format v6, as faster-whisper ships it) into the Hugging Face
//! tensor names and `config` that candle's Whisper loads. Written by hand because no crate reads the CTranslate2
//! format; the layout is documented in `../shared/MODELS.md`.
//!
//! File layout: u32 version, u16-length-prefixed spec name, u32 revision, u32 variable count; per variable a name,
//! u8 rank, u32 dims, u8 dtype, u32 byte count, the data; then u32 alias count and (alias, target) name pairs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::json;

use super::ModelError;

/// The converted weights, next to `model.bin`.
pub const CONVERTED_WEIGHTS: &str = "model.safetensors";
/// The candle config derived from the weights, next to `model.bin`.
pub const CONVERTED_CONFIG: &str = "whisper-config.json";

/// One variable of the file.
struct Variable {
    dims: Vec<usize>,
    dtype: u8,
    data: Vec<u8>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("file ends early")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().map_err(|_| "short read")?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| "short read")?))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u16()? as usize;
        let raw = self.take(n)?;
        Ok(String::from_utf8_lossy(raw).trim_end_matches('\0').to_string())
    }
}

fn parse(bytes: &[u8]) -> Result<HashMap<String, Variable>, String> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.u32()?;
    if version != 6 {
        return Err(format!("CTranslate2 format version {version} (expected 6)"));
    }
    let spec = r.string()?;
    if spec != "WhisperSpec" {
        return Err(format!("model spec {spec:?} is not WhisperSpec"));
    }
    let _revision = r.u32()?;
    let count = r.u32()?;
    let mut vars = HashMap::new();
    for _ in 0..count {
        let name = r.string()?;
        let rank = r.u8()? as usize;
        let dims = (0..rank).map(|_| r.u32().map(|d| d as usize)).collect::<Result<Vec<_>, _>>()?;
        let dtype = r.u8()?;
        let n = r.u32()? as usize;
        let data = r.take(n)?.to_vec();
        vars.insert(name, Variable { dims, dtype, data });
    }
    Ok(vars)
}

/// CTranslate2 dtype codes used by Whisper files.
const F32: u8 = 0;
const I8: u8 = 1;
const I16: u8 = 2;
const F16: u8 = 4;

fn tensor(v: &Variable, name: &str) -> Result<Tensor, String> {
    let device = Device::Cpu;
    let dtype = match v.dtype {
        F16 => DType::F16,
        F32 => DType::F32,
        other => return Err(format!("{name}: unsupported dtype code {other}")),
    };
    let t = Tensor::from_raw_buffer(&v.data, dtype, &v.dims, &device);
    t.map_err(|e| format!("{name}: {e}"))
}

fn scalar(vars: &HashMap<String, Variable>, name: &str) -> Result<usize, String> {
    let v = vars.get(name).ok_or_else(|| format!("{name} missing"))?;
    match v.dtype {
        I8 => Ok(v.data[0] as usize),
        I16 => Ok(u16::from_le_bytes([v.data[0], v.data[1]]) as usize),
        _ => Err(format!("{name}: not an integer")),
    }
}

/// Maps one CTranslate2 variable to HF names; fused projections are split by rows.
fn map(name: &str, t: Tensor, out: &mut HashMap<String, Tensor>) -> Result<(), String> {
    let parts: Vec<&str> = name.split('/').collect();
    let e = |x: candle_core::Error| format!("{name}: {x}");
    let side = match parts[0] {
        "encoder" => "model.encoder",
        "decoder" => "model.decoder",
        _ => return Ok(()),
    };
    let leaf = |p: &str| match p {
        "gamma" | "weight" => "weight",
        _ => "bias",
    };
    match parts.as_slice() {
        [_, "conv1" | "conv2", w] => {
            out.insert(format!("{side}.{}.{w}", parts[1]), t);
        }
        [_, "embeddings", "weight"] => {
            out.insert(format!("{side}.embed_tokens.weight"), t);
        }
        [_, "position_encodings", "encodings"] => {
            out.insert(format!("{side}.embed_positions.weight"), t);
        }
        [_, "layer_norm", p] => {
            out.insert(format!("{side}.layer_norm.{}", leaf(p)), t);
        }
        [_, layer, block, rest @ ..] if layer.starts_with("layer_") => {
            let i = &layer["layer_".len()..];
            let base = format!("{side}.layers.{i}");
            let (attn, ln) = match *block {
                "self_attention" => ("self_attn", "self_attn_layer_norm"),
                "attention" => ("encoder_attn", "encoder_attn_layer_norm"),
                "ffn" => ("", "final_layer_norm"),
                _ => return Err(format!("unknown block {block}")),
            };
            match (rest, *block) {
                (["layer_norm", p], _) => {
                    out.insert(format!("{base}.{ln}.{}", leaf(p)), t);
                }
                (["linear_0", w], "ffn") => {
                    out.insert(format!("{base}.fc1.{w}"), t);
                }
                (["linear_1", w], "ffn") => {
                    out.insert(format!("{base}.fc2.{w}"), t);
                }
                (["linear_0", w], "self_attention") => {
                    let n = t.dim(0).map_err(e)? / 3;
                    for (k, proj) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
                        // The key projection has no bias in Whisper (CTranslate2 stores zeros).
                        if *w == "bias" && *proj == "k_proj" {
                            continue;
                        }
                        out.insert(format!("{base}.{attn}.{proj}.{w}"), t.narrow(0, k * n, n).map_err(e)?);
                    }
                }
                (["linear_1", w], "self_attention") | (["linear_2", w], "attention") => {
                    out.insert(format!("{base}.{attn}.out_proj.{w}"), t);
                }
                (["linear_0", w], "attention") => {
                    out.insert(format!("{base}.{attn}.q_proj.{w}"), t);
                }
                (["linear_1", w], "attention") => {
                    let n = t.dim(0).map_err(e)? / 2;
                    if *w == "weight" {
                        out.insert(format!("{base}.{attn}.k_proj.weight"), t.narrow(0, 0, n).map_err(e)?);
                    }
                    out.insert(format!("{base}.{attn}.v_proj.{w}"), t.narrow(0, n, n).map_err(e)?);
                }
                _ => return Err(format!("unmapped variable {name}")),
            }
        }
        _ => {}
    }
    Ok(())
}

/// Converts `dir/model.bin` (with `dir/config.json`, the CTranslate2 config) into `model.safetensors` and
/// `whisper-config.json` in `dir`. Returns the two paths.
pub fn convert_whisper(dir: &Path) -> Result<(PathBuf, PathBuf), ModelError> {
    let bin = dir.join("model.bin");
    let fail = |detail: String| ModelError::Corrupt { model: dir.display().to_string(), path: bin.clone(), detail };
    let bytes = std::fs::read(&bin).map_err(|e| ModelError::io(&bin, e))?;
    let vars = parse(&bytes).map_err(|e| fail(format!("cannot read CTranslate2 file: {e}")))?;
    drop(bytes);
    let mut out = HashMap::new();
    for (name, v) in &vars {
        if v.dims.is_empty() {
            continue;
        }
        map(name, tensor(v, name).map_err(&fail)?, &mut out).map_err(&fail)?;
    }
    let dim = |name: &str, i: usize| {
        vars.get(name).and_then(|v| v.dims.get(i).copied()).ok_or_else(|| fail(format!("{name} missing")))
    };
    let count_layers =
        |side: &str| (0..).take_while(|i| vars.contains_key(&format!("{side}/layer_{i}/ffn/linear_0/weight"))).count();
    let ct2: serde_json::Value = std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}));
    let config = json!({
        "num_mel_bins": dim("encoder/conv1/weight", 1)?,
        "max_source_positions": dim("encoder/position_encodings/encodings", 0)?,
        "d_model": dim("encoder/conv1/weight", 0)?,
        "encoder_attention_heads": scalar(&vars, "encoder/num_heads").map_err(&fail)?,
        "encoder_layers": count_layers("encoder"),
        "vocab_size": dim("decoder/embeddings/weight", 0)?,
        "max_target_positions": dim("decoder/position_encodings/encodings", 0)?,
        "decoder_attention_heads": scalar(&vars, "decoder/num_heads").map_err(&fail)?,
        "decoder_layers": count_layers("decoder"),
        "suppress_tokens": ct2.get("suppress_ids").cloned().unwrap_or_else(|| json!([])),
        "suppress_tokens_begin": ct2.get("suppress_ids_begin").cloned().unwrap_or_else(|| json!([])),
    });
    let weights = dir.join(CONVERTED_WEIGHTS);
    let config_path = dir.join(CONVERTED_CONFIG);
    // Written under temporary names and renamed, so an interrupted conversion never leaves a half file.
    let tmp = dir.join(format!("{CONVERTED_WEIGHTS}.partial"));
    let out: HashMap<String, Tensor> = out
        .into_iter()
        .map(|(k, t)| t.to_dtype(DType::F16).map(|t| (k, t)))
        .collect::<candle_core::Result<_>>()
        .map_err(|e| fail(e.to_string()))?;
    candle_core::safetensors::save(&out, &tmp).map_err(|e| fail(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &weights).map_err(|e| ModelError::io(&weights, e))?;
    let text = serde_json::to_string_pretty(&config).map_err(|e| fail(e.to_string()))?;
    std::fs::write(&config_path, text).map_err(|e| ModelError::io(&config_path, e))?;
    Ok((weights, config_path))
}
