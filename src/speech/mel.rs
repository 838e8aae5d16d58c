//! Whisper's log-mel features: the 80-bin mel filter bank it was trained with (Slaney mel scale and area
//! normalisation, as `librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)` computes it; candle-transformers does not
//! ship it, and it is a few lines, so it is computed rather than stored as a blob), and the log-mel spectrogram of
//! only the frames an utterance needs. candle's `pcm_to_mel` pads every input to at least 30 s and transforms all
//! 3000 frames (~150 ms here for a 3 s utterance); this computes the same values for the frames asked for. The FFT
//! is written here because candle's is private and the FFT crates (rustfft) would change features of numeric crates
//! the whole dependency tree shares, which costs a ~50-minute rebuild on this machine.

use std::f32::consts::PI;

/// Hz to Slaney mel: linear below 1 kHz, logarithmic above.
fn hz_to_mel(f: f64) -> f64 {
    let (f_sp, min_log_hz, min_log_mel, logstep) = (200.0 / 3.0, 1000.0, 15.0, (6.4f64).ln() / 27.0);
    if f < min_log_hz {
        f / f_sp
    } else {
        min_log_mel + (f / min_log_hz).ln() / logstep
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let (f_sp, min_log_hz, min_log_mel, logstep) = (200.0 / 3.0, 1000.0, 15.0, (6.4f64).ln() / 27.0);
    if m < min_log_mel {
        m * f_sp
    } else {
        min_log_hz * ((m - min_log_mel) * logstep).exp()
    }
}

/// Row-major `n_mels × (n_fft/2 + 1)` triangular filters.
pub fn mel_filters(sample_rate: usize, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins).map(|i| i as f64 * sample_rate as f64 / n_fft as f64).collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sample_rate as f64 / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64)).collect();
    let mut out = vec![0f32; n_mels * bins];
    for m in 0..n_mels {
        let enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
        for (k, f) in fft_freqs.iter().enumerate() {
            let lower = (f - mel_f[m]) / (mel_f[m + 1] - mel_f[m]);
            let upper = (mel_f[m + 2] - f) / (mel_f[m + 2] - mel_f[m + 1]);
            out[m * bins + k] = (lower.min(upper).max(0.0) * enorm) as f32;
        }
    }
    out
}

/// A complex number, as (re, im).
type Complex = (f32, f32);

/// Log-mel spectrogram for one model: the filters, the Hann window and the FFT's tables.
pub struct LogMel {
    filters: Vec<f32>,
    n_mel: usize,
    n_fft: usize,
    hop: usize,
    hann: Vec<f32>,
    /// `exp(-2πik/n_fft)` for k in 0..n_fft: every radix-2 level's twiddle factors are a stride of these.
    twiddles: Vec<Complex>,
}

impl LogMel {
    /// Features for `n_mel` bins at `sample_rate`, windows of `n_fft` samples every `hop` samples.
    pub fn new(sample_rate: usize, n_fft: usize, hop: usize, n_mel: usize) -> Self {
        let hann = (0..n_fft).map(|i| 0.5 * (1.0 - (2.0 * PI * i as f32 / n_fft as f32).cos())).collect();
        let twiddles = (0..n_fft)
            .map(|k| {
                let theta = -2.0 * std::f64::consts::PI * k as f64 / n_fft as f64;
                (theta.cos() as f32, theta.sin() as f32)
            })
            .collect();
        Self { filters: mel_filters(sample_rate, n_fft, n_mel), n_mel, n_fft, hop, hann, twiddles }
    }

    /// The first `frames` frames of the spectrogram of `samples` (zeros after the end), row-major
    /// `n_mel × frames`, scaled as Whisper expects: log10, floored 8 below the maximum, then `(x + 4) / 4`.
    pub fn compute(&self, samples: &[f32], frames: usize) -> Vec<f32> {
        self.spectrogram(samples, frames, true)
    }

    /// [`LogMel::compute`] with each bin's power `|X_k|²` as transformers' `WhisperFeatureExtractor` computes it
    /// (no mirror folding): the features Smart Turn was trained on.
    pub fn compute_unfolded(&self, samples: &[f32], frames: usize) -> Vec<f32> {
        self.spectrogram(samples, frames, false)
    }

    fn spectrogram(&self, samples: &[f32], frames: usize, fold: bool) -> Vec<f32> {
        let bins = self.n_fft / 2 + 1;
        let mut mel = vec![0f32; self.n_mel * frames];
        let mut window = vec![0f32; self.n_fft];
        let mut spectrum = vec![(0f32, 0f32); self.n_fft];
        let mut power = vec![0f32; bins];
        for frame in 0..frames {
            let offset = frame * self.hop;
            for (j, w) in window.iter_mut().enumerate() {
                *w = samples.get(offset + j).map_or(0.0, |s| s * self.hann[j]);
            }
            self.fft(&window, 1, &mut spectrum);
            // |X_k|² folded with its mirror |X_{n-k}|² (equal for real input), as whisper.cpp and candle do.
            for (k, p) in power.iter_mut().enumerate() {
                let (re, im) = spectrum[k];
                *p = re * re + im * im;
                if fold && k > 0 && k < self.n_fft / 2 {
                    let (re, im) = spectrum[self.n_fft - k];
                    *p += re * re + im * im;
                }
            }
            for m in 0..self.n_mel {
                let row = &self.filters[m * bins..(m + 1) * bins];
                let sum: f32 = row.iter().zip(&power).map(|(f, p)| f * p).sum();
                mel[m * frames + frame] = sum.max(1e-10).log10();
            }
        }
        // Frames past the input are silence (log10(1e-10)): they take part in the maximum as in a padded input.
        let max = mel.iter().copied().fold(-10f32, f32::max) - 8.0;
        mel.iter_mut().for_each(|v| *v = (v.max(max) + 4.0) / 4.0);
        mel
    }

    /// Discrete Fourier transform of the `out.len()` samples `input[0], input[stride], …`: radix-2 splits while
    /// the length is even, a direct transform of the odd remainder (25 points for Whisper's 400).
    fn fft(&self, input: &[f32], stride: usize, out: &mut [Complex]) {
        let n = out.len();
        if n % 2 == 1 {
            let step = self.n_fft / n;
            for (k, o) in out.iter_mut().enumerate() {
                *o = (0..n).fold((0.0, 0.0), |(re, im), j| {
                    let (c, s) = self.twiddles[(k * j % n) * step];
                    let x = input[j * stride];
                    (re + x * c, im + x * s)
                });
            }
            return;
        }
        let half = n / 2;
        let (even, odd) = out.split_at_mut(half);
        self.fft(input, stride * 2, even);
        self.fft(&input[stride..], stride * 2, odd);
        let step = self.n_fft / n;
        for k in 0..half {
            let (c, s) = self.twiddles[k * step];
            let (ore, oim) = odd[k];
            let t = (ore * c - oim * s, ore * s + oim * c);
            let e = even[k];
            even[k] = (e.0 + t.0, e.1 + t.1);
            odd[k] = (e.0 - t.0, e.1 - t.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_mel_equals_candles_padded_spectrogram_on_the_frames_asked_for() {
        let pcm: Vec<f32> = (0..24_000)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                0.3 * (2.0 * PI * 220.0 * t).sin() + 0.2 * (2.0 * PI * 1_750.0 * t).sin() * (3.0 * t).cos()
            })
            .collect();
        let config = candle_transformers::models::whisper::Config {
            num_mel_bins: 80,
            max_source_positions: 1500,
            d_model: 384,
            encoder_attention_heads: 6,
            encoder_layers: 4,
            vocab_size: 51864,
            max_target_positions: 448,
            decoder_attention_heads: 6,
            decoder_layers: 4,
            suppress_tokens: vec![],
        };
        let ours = LogMel::new(16_000, 400, 160, 80);
        let reference = candle_transformers::models::whisper::audio::pcm_to_mel(&config, &pcm, &ours.filters);
        let total = reference.len() / 80;
        let frames = 200;
        let mel = ours.compute(&pcm, frames);
        for m in 0..80 {
            for f in 0..frames {
                let (a, b) = (mel[m * frames + f], reference[m * total + f]);
                // candle evaluates its twiddles in f32 at each step, these are computed once in f64.
                assert!((a - b).abs() < 1e-3, "bin {m} frame {f}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn filters_are_area_normalised_triangles_covering_the_band() {
        let f = mel_filters(16000, 400, 80);
        assert_eq!(f.len(), 80 * 201);
        assert!(f.iter().all(|v| *v >= 0.0));
        for m in 0..80 {
            let row = &f[m * 201..(m + 1) * 201];
            let peak = row.iter().enumerate().fold((0, 0f32), |a, (i, v)| if *v > a.1 { (i, *v) } else { a }).0;
            // Rising to one peak, then falling: a triangle.
            assert!(row[..peak].windows(2).all(|w| w[0] <= w[1]) && row[peak..].windows(2).all(|w| w[0] >= w[1]));
        }
        // Slaney normalisation: narrow low filters are taller than wide high ones.
        let peak = |m: usize| f[m * 201..(m + 1) * 201].iter().cloned().fold(0f32, f32::max);
        assert!(peak(1) > peak(70));
    }
}
