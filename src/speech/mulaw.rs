//! G.711 μ-law, the telephone codec Twilio Media Streams carry: 8-bit samples at 8 kHz. Written here because it is
//! two small functions from the standard and no maintained crate is smaller than that.

/// Added before encoding so that the segment search works on the biased magnitude (G.711).
const BIAS: i32 = 0x84;
/// Largest magnitude that encodes without overflow.
const CLIP: i32 = 32635;

/// One 16-bit linear sample to μ-law.
pub fn encode_sample(sample: i16) -> u8 {
    let sign = if sample < 0 { 0x80 } else { 0 };
    let magnitude = (sample as i32).abs().min(CLIP) + BIAS;
    // Segment: position of the highest set bit above bit 7.
    let exponent = (31 - (magnitude as u32).leading_zeros()).saturating_sub(7).min(7) as i32;
    let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// One μ-law byte to a 16-bit linear sample.
pub fn decode_sample(byte: u8) -> i16 {
    let b = !byte;
    let exponent = ((b >> 4) & 0x07) as i32;
    let mantissa = (b & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if b & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// μ-law bytes to samples in −1..1.
pub fn decode(bytes: &[u8]) -> Vec<f32> {
    bytes.iter().map(|b| decode_sample(*b) as f32 / 32768.0).collect()
}

/// Samples in −1..1 to μ-law bytes (clipped to the range).
pub fn encode(samples: &[f32]) -> Vec<u8> {
    samples.iter().map(|s| encode_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_and_round_trip_within_a_quantisation_step() {
        // Reference points of G.711: silence is 0xFF, full scale is 0x80 / 0x00.
        assert_eq!(encode_sample(0), 0xFF);
        assert_eq!(decode_sample(0xFF), 0);
        assert_eq!(encode_sample(i16::MAX), 0x80);
        assert_eq!(encode_sample(i16::MIN), 0x00);
        assert_eq!(decode_sample(0x80), 32124);
        assert_eq!(decode_sample(0x00), -32124);
        for s in (-32000i32..32000).step_by(37) {
            let back = decode_sample(encode_sample(s as i16)) as i32;
            // μ-law keeps about 4 bits of mantissa: the error grows with the magnitude.
            assert!((back - s).abs() <= (s.abs() / 16).max(8), "{s} → {back}");
        }
        // Every code decodes and re-encodes to itself (0x7F is −0, which encodes as +0).
        for b in 0..=255u8 {
            let again = encode_sample(decode_sample(b));
            assert!(again == b || (b == 0x7F && again == 0xFF), "{b:#x} → {again:#x}");
        }
    }
}
