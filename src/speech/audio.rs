//! Audio plumbing: WAV decoding, sample-rate conversion and trimming silence.

use crate::inference::InferenceError;

/// Mono samples in −1..1 and their rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    /// Samples (the first channel of multi-channel audio).
    pub samples: Vec<f32>,
    /// Samples per second.
    pub rate: u32,
}

/// Decodes a 16-bit PCM WAV file's bytes.
pub fn decode_wav(bytes: &[u8]) -> Result<Pcm, InferenceError> {
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes))
        .map_err(|e| InferenceError::Invalid(format!("not a readable WAV file: {e}")))?;
    let spec = reader.spec();
    if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return Err(InferenceError::Invalid(format!("WAV must be 16-bit PCM, not {spec:?}")));
    }
    let channels = spec.channels.max(1) as usize;
    let samples = reader
        .into_samples::<i16>()
        .step_by(channels)
        .map(|s| s.map(|v| v as f32 / 32768.0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| InferenceError::Invalid(format!("WAV data: {e}")))?;
    Ok(Pcm { samples, rate: spec.sample_rate })
}

/// `samples` without the silence (samples no louder than `level`) before the first sound and after the last.
pub fn trim_silence(samples: &[f32], level: f32) -> &[f32] {
    let loud = |s: &f32| s.abs() > level;
    match (samples.iter().position(loud), samples.iter().rposition(loud)) {
        (Some(first), Some(last)) => &samples[first..=last],
        _ => &[],
    }
}

/// Taps on each side of the band-limited interpolation kernel.
const HALF_TAPS: usize = 24;

/// Converts `samples` from `from` Hz to `to` Hz by band-limited interpolation: a Hann-windowed sinc whose cutoff
/// sits just below the lower Nyquist frequency, evaluated at each output instant (so downsampling does not alias).
/// Written here because it is twenty lines and the per-call sizes are tiny (20 ms frames, short utterances).
pub fn resample(samples: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || samples.is_empty() {
        return samples.to_vec();
    }
    let ratio = from as f64 / to as f64;
    // Cutoff as a fraction of the input rate's Nyquist: below both Nyquists, with a little room for the window.
    let cutoff = 0.95 * (1.0 / ratio).min(1.0);
    let reach = HALF_TAPS as f64 / cutoff;
    let n = (samples.len() as f64 / ratio).round() as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 * ratio;
            let first = (t - reach).ceil().max(0.0) as usize;
            let last = ((t + reach).floor() as usize).min(samples.len() - 1);
            let mut acc = 0.0f64;
            for (k, s) in samples.iter().enumerate().take(last + 1).skip(first) {
                let u = t - k as f64;
                let x = std::f64::consts::PI * u * cutoff;
                let sinc = if x.abs() < 1e-9 { 1.0 } else { x.sin() / x };
                let window = 0.5 + 0.5 * (std::f64::consts::PI * u / reach).cos();
                acc += *s as f64 * cutoff * sinc * window;
            }
            acc as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_keeps_a_tone_and_the_duration() {
        let tone: Vec<f32> =
            (0..22050).map(|i| (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 22050.0).sin()).collect();
        let out = resample(&tone, 22050, 16000);
        assert_eq!(out.len(), 16000);
        // Zero crossings of a 440 Hz tone: ~880 per second at any rate.
        let crossings = out.windows(2).filter(|w| w[0].signum() != w[1].signum()).count();
        assert!((870..=890).contains(&crossings), "{crossings}");
        let up = resample(&out, 16000, 8000);
        assert_eq!(up.len(), 8000);
        assert_eq!(resample(&[], 8000, 16000), Vec::<f32>::new());
    }
}
