//! The 80-bin mel filter bank Whisper was trained with (Slaney mel scale and area normalisation, as
//! `librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)` computes it). candle-transformers does not ship it, and
//! computing it is a few lines, so it is computed here rather than stored as a binary blob.

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

#[cfg(test)]
mod tests {
    use super::*;

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
