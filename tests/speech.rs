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
