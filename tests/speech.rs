//! Speech-to-text with the real Whisper weights (fetched and converted from CTranslate2 by `models fetch`) on a
//! sentence spoken by the real espeak-ng.

mod common;

use tourdesk::models::ModelStore;
use tourdesk::realtime::voice::STT_HINT;
use tourdesk::speech::audio::{decode_wav, resample};
use tourdesk::speech::{SpeechToText, WhisperStt};

/// espeak-ng speaks `text` into a WAV; returns 16 kHz samples.
fn spoken(text: &str) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("said.wav");
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng is installed by the README's setup");
    assert!(status.success());
    let pcm = decode_wav(&std::fs::read(&wav).unwrap()).unwrap();
    resample(&pcm.samples, pcm.rate, 16_000)
}

fn transcribe(model: &str, pcm: &[f32]) -> String {
    let dir = ModelStore::new(common::models_dir()).unwrap().resolve(model).unwrap();
    let mut stt = WhisperStt::load(&dir, STT_HINT).unwrap();
    let t = stt.transcribe(pcm).unwrap();
    assert!(t.audio_secs >= 1.0 && t.encode_ms > 0.0);
    t.text.to_lowercase()
}

#[test]
fn whisper_transcribes_an_espeak_request_for_a_tour() {
    let pcm = spoken("Hi, I'd like to tour Hudson 360, a two bedroom.");
    for model in ["whisper-base", "whisper-tiny-en"] {
        let text = transcribe(model, &pcm);
        assert!(text.contains("tour hudson 360") && text.contains("two bedroom"), "{model}: {text}");
    }
}

#[test]
fn silence_transcribes_to_little_or_nothing() {
    let text = transcribe("whisper-tiny-en", &vec![0.0; 16_000]);
    assert!(text.split_whitespace().count() <= 3, "{text}");
}

/// The Piper voice as the server loads it.
async fn piper() -> tourdesk::speech::PiperTts {
    let store = ModelStore::new(common::models_dir()).unwrap();
    tourdesk::engine::load_piper(&store, "piper-joe")
        .await
        .expect("piper-joe and onnxruntime are fetched by `just models`")
}

/// The ids Piper's own Python package (`piper-tts` 1.8, with its bundled espeak-ng) gives this sentence; computed
/// once and kept here. espeak-ng 1.51's phonemes for it are the same.
const HELLO_IDS: [i64; 101] = [
    1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 27, 0, 100, 0, 8, 0, 3, 0, 14, 0, 74, 0, 3, 0, 23, 0, 39, 0, 26, 0, 3, 0, 15, 0,
    120, 0, 100, 0, 23, 0, 3, 0, 50, 0, 3, 0, 32, 0, 120, 0, 100, 0, 88, 0, 3, 0, 19, 0, 54, 0, 122, 0, 88, 0, 3, 0,
    22, 0, 33, 0, 122, 0, 3, 0, 121, 0, 54, 0, 26, 0, 3, 0, 19, 0, 88, 0, 120, 0, 14, 0, 74, 0, 17, 0, 18, 0, 74, 0,
    10, 0, 2,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piper_phonemizes_as_piper_does_and_whisper_hears_its_speech_word_for_word() {
    use tourdesk::speech::TextToSpeech;
    let voice = piper().await;
    assert_eq!(voice.ids("Hello, I can book a tour for you on Friday.").await.unwrap(), [HELLO_IDS.to_vec()]);

    let said = "I can book a virtual tour of Hudson 360 on Friday at 11.";
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
    };
    // Piper draws noise each time it speaks, so each synthesis sounds a little different: this one came back word
    // for word in 42 of 43 runs (once as "Hudson's 360"). One of three tries must, so a broken voice fails and a
    // rare reading does not.
    let mut heard = Vec::new();
    for _ in 0..3 {
        let pcm = voice.synthesize(said).await.unwrap();
        assert_eq!(pcm.rate, 22_050);
        let secs = pcm.samples.len() as f64 / 22_050.0;
        assert!((2.0..8.0).contains(&secs), "{secs} s of speech");
        let peak = pcm.samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((0.99..=1.0).contains(&peak), "each sentence is scaled to full level, peak {peak}");
        heard.push(transcribe("whisper-base", &resample(&pcm.samples, pcm.rate, 16_000)));
        if words(heard.last().unwrap()) == words(said) {
            break;
        }
    }
    assert_eq!(words(heard.last().unwrap()), words(said), "heard {heard:?}");

    // Two sentences: both spoken, one after the other.
    let two = voice.synthesize("Thanks for calling. See you on Friday.").await.unwrap();
    let heard = transcribe("whisper-base", &resample(&two.samples, two.rate, 16_000));
    assert!(heard.contains("thanks for calling") && heard.contains("friday"), "{heard}");
}

/// Piper varies its voice each time it speaks; through the phrase cache a sentence is synthesized once and the same
/// audio comes back, while another sentence is still synthesized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phrase_cache_speaks_a_repeated_sentence_without_synthesizing_it_again() {
    use tourdesk::speech::{PhraseCache, TextToSpeech, DEFAULT_PHRASE_CACHE_BYTES};
    let piper = std::sync::Arc::new(piper().await);
    let question = "When are you hoping to move in?";
    let first = piper.synthesize(question).await.unwrap();
    assert_ne!(piper.synthesize(question).await.unwrap(), first, "Piper alone varies from one time to the next");

    let cached = PhraseCache::new(piper.clone(), DEFAULT_PHRASE_CACHE_BYTES);
    let once = cached.synthesize(question).await.unwrap();
    assert_eq!(cached.synthesize(question).await.unwrap(), once, "the second time is the kept audio");
    let other = cached.synthesize("Will any pets be moving in with you?").await.unwrap();
    assert_ne!(other, once);
    // One word in 40 syntheses of this sentence came back misheard ("move then"), so at most one error of seven.
    let heard = transcribe("whisper-base", &resample(&once.samples, once.rate, 16_000));
    let errors = tourdesk::speech::word_errors::word_error_rate(question, &heard);
    assert!(errors <= 0.15, "the kept audio is the sentence: heard {heard:?}");
}

#[tokio::test]
async fn a_missing_voice_says_how_to_fetch_it() {
    let empty = tempfile::tempdir().unwrap();
    let store = ModelStore::new(empty.path()).unwrap();
    let err = tourdesk::engine::load_piper(&store, "piper-joe").await.unwrap_err().to_string();
    assert!(err.contains("piper-joe") && err.contains("models fetch"), "{err}");
}

/// Silero's test signal (no file needed): 0.5 s of silence, 1 s of a 220 + 440 Hz mix with a little
/// pseudo-random noise, 0.5 s of silence.
fn silero_test_signal(rate: usize) -> Vec<f32> {
    let (start, end) = (rate / 2, rate / 2 + rate);
    let mut seed: u32 = 12345;
    let noise: Vec<f64> = (start..end)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            f64::from(seed >> 8) / 16_777_216.0 * 2.0 - 1.0
        })
        .collect();
    let tau = 2.0 * std::f64::consts::PI;
    (0..2 * rate)
        .map(|n| {
            if n < start || n >= end {
                return 0.0;
            }
            let t = n as f64 / rate as f64;
            let tone = 0.3 * (0.5 * (tau * 220.0 * t).sin() + 0.5 * (tau * 440.0 * t).sin());
            (tone + 0.02 * noise[n - start]) as f32
        })
        .collect()
}

/// Silero's probabilities match those its own Python package computes (silero-vad 6.2.3 with onnxruntime; the
/// numbers were computed once and are kept here), at both rates, fed in Twilio's 20 ms frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silero_matches_its_reference_outputs_and_hears_speech_not_a_tone() {
    let store = ModelStore::new(common::models_dir()).unwrap();
    let vad = tourdesk::engine::load_silero(&store).await.unwrap();
    let reference: [(u32, &[(usize, f32)]); 2] = [
        (
            16_000,
            &[
                (0, 0.001670),
                (1, 0.006884),
                (2, 0.008911),
                (9, 0.005199),
                (15, 0.019728),
                (16, 0.262985),
                (17, 0.092237),
                (31, 0.004779),
                (47, 0.001843),
                (62, 0.004625),
            ],
        ),
        (
            8_000,
            &[
                (0, 0.017367),
                (1, 0.017467),
                (2, 0.022407),
                (9, 0.006889),
                (16, 0.052151),
                (18, 0.088405),
                (19, 0.097034),
                (31, 0.021130),
                (47, 0.000615),
                (62, 0.001609),
            ],
        ),
    ];
    for (rate, expected) in reference {
        let signal = silero_test_signal(rate as usize);
        let mut stream = vad.stream(rate).unwrap();
        let mut probabilities = Vec::new();
        for frame in signal.chunks(rate as usize / 50) {
            probabilities.extend(stream.push(frame).await.unwrap());
        }
        assert_eq!(probabilities.len(), 62, "{rate} Hz: whole windows only");
        for &(i, p) in expected.iter().filter(|(i, _)| *i < 62) {
            assert!((probabilities[i] - p).abs() < 1e-4, "{rate} Hz window {i}: {} vs {p}", probabilities[i]);
        }
        assert!(probabilities.iter().all(|&p| p < 0.5), "a tone is not speech");
    }
    // espeak-ng's speech at the phone rate is speech, and the silence after it is not.
    let mut stream = vad.stream(8_000).unwrap();
    let said = resample(&spoken("I would like to book a tour on Friday."), 16_000, 8_000);
    let mut audio = said.clone();
    audio.extend(vec![0.0; 8_000]);
    let mut probabilities = Vec::new();
    for frame in audio.chunks(160) {
        probabilities.extend(stream.push(frame).await.unwrap());
    }
    let speech_windows = said.len() / 256;
    let heard = probabilities[..speech_windows].iter().filter(|&&p| p >= 0.5).count();
    assert!(heard * 10 >= speech_windows * 8, "speech heard in {heard} of {speech_windows} windows");
    assert!(probabilities[speech_windows + 6..].iter().all(|&p| p < 0.35), "silence after the speech");
}

/// Smart Turn: silence reads as a finished turn and a tone as none (the values Pipecat's package gives, computed
/// once: 0.987 and 0.007), and a whole spoken sentence followed by a pause as finished. (On espeak-ng's voice it
/// does not reliably tell a sentence cut off mid-way from a finished one, so that is not asserted here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_turn_matches_its_reference_outputs_and_hears_a_finished_sentence() {
    let store = ModelStore::new(common::models_dir()).unwrap();
    let turn = tourdesk::engine::load_smart_turn(&store).await.unwrap();
    let silence = turn.complete(vec![0.0; 128_000]).await.unwrap();
    assert!((silence - 0.987037).abs() < 0.002, "{silence}");
    let tone = turn.complete(silero_test_signal(16_000)).await.unwrap();
    assert!(tone < 0.05, "{tone}");
    let sentence = spoken("I would like to book a tour on Friday.");
    let end = sentence.iter().rposition(|s| s.abs() > 1e-3).unwrap();
    let mut whole = sentence[..end].to_vec();
    whole.extend(vec![0.0; 5_600]);
    let finished = turn.complete(whole).await.unwrap();
    assert!(finished > 0.5, "{finished}");
}

/// With Silero deciding what is speech, the silence that ends an utterance counts from when the voice stops, not
/// from when Silero's probability has fallen (on this voice up to 180 ms later), on a quiet line. On a noisy line,
/// or from a soft-spoken caller, where no frame is far quieter than the voice, the utterance is not cut short (an
/// absolute loudness gate cut the soft caller's question in two).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_utterance_ends_its_silence_after_the_voice_stops() {
    use tourdesk::realtime::voice::{phone_audio, PHONE_RATE};
    use tourdesk::speech::vad::{Vad, VadConfig, VadEvent};
    let store = ModelStore::new(common::models_dir()).unwrap();
    let silero = tourdesk::engine::load_silero(&store).await.unwrap();
    let caller = tourdesk::speech::EspeakTts::new("en-us", 165);
    let config = VadConfig::default();
    let mut seed = 7u32;
    for text in ["What is the pet policy?", "Hi, I'd like to tour Hudson 360, a two bedroom."] {
        let mut voice = phone_audio(&caller, text).await.unwrap();
        voice.extend(vec![0.0; PHONE_RATE as usize]);
        let voice_until_ms = (voice
            .chunks(160)
            .rposition(|f| f.iter().any(|s| s.abs() > tourdesk::bench::phone::VOICED_LEVEL))
            .unwrap()
            + 1)
            * 20;
        // White noise at -50 dBFS RMS (a quiet phone line), at -30 dBFS (a noisy one), and a caller 30 dB softer
        // than the rest on a line 10 dB quieter.
        for (gain, noise_rms) in [(1.0, 0.003_16), (1.0, 0.031_6), (0.031_6, 0.001)] {
            let mut audio: Vec<f32> = voice.iter().map(|s| s * gain).collect();
            for sample in &mut audio {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *sample += ((seed >> 8) as f32 / 16_777_216.0 * 2.0 - 1.0) * noise_rms * 3f32.sqrt();
            }
            let mut vad = Vad::new(config, PHONE_RATE, Some(silero.stream(PHONE_RATE).unwrap()));
            let mut ended = Vec::new();
            for (i, frame) in audio.chunks(160).enumerate() {
                if let Some(VadEvent::SpeechEnded { trailing_silence_ms, .. }) = vad.push(frame).await {
                    ended.push(((i + 1) * 20, trailing_silence_ms));
                }
            }
            let [(ended_ms, trailing)] = ended[..] else { panic!("{text}, {gain}, {noise_rms}: utterances {ended:?}") };
            assert_eq!(trailing, config.silence_ms, "{text}");
            let waited = ended_ms as i64 - voice_until_ms as i64;
            assert!(waited >= config.silence_ms as i64 - 40, "{text}, {gain}, {noise_rms}: cut {waited} ms after");
            // Where the line is 30 dB under the voice, silence starts when the voice stops.
            if gain == 1.0 && noise_rms < 0.01 {
                assert!(waited <= config.silence_ms as i64 + 40, "{text}: ended {waited} ms after the voice stopped");
            }
        }
    }
}
