//! `tourdesk bench voice`: phone calls against the real server on loopback, with caller audio from espeak-ng (a
//! voice other than the agent's, with line noise) streamed in real time (a frame every 20 ms, silence between
//! utterances, as Twilio sends it). It times end of caller speech → first agent audio at the caller's end, reads
//! each stage from the calls' flight recordings, and counts the utterances with a pause mid-sentence that were cut
//! there (answered before the caller had finished).

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::percentile;
use super::phone::{PhoneClient, VOICED_LEVEL};
use crate::app::{AppState, LoopbackServer};
use crate::realtime::voice::{phone_audio, PHONE_RATE};
use crate::speech::audio::trim_silence;
use crate::speech::word_errors::{edit_distance, words};
use crate::speech::EspeakTts;

/// What one caller says, in order: a booking call. Each utterance is one or two parts; between two parts the caller
/// pauses mid-sentence for the given milliseconds (the turn is not over).
const SCRIPT: [(&str, Option<(u32, &str)>); 6] = [
    ("Hi, I'd like to tour Hudson 360, a two bedroom.", None),
    ("My name is Maria.", None),
    ("I'd like to move in", Some((600, "on January fifteenth."))),
    ("I have one cat.", None),
    ("My budget is", Some((650, "about four thousand a month."))),
    ("What is the pet policy?", None),
];
/// Line noise under the caller's voice: white noise at -50 dBFS RMS, a quiet phone line.
const LINE_NOISE_RMS: f32 = 0.003_16;

/// Milliseconds at the median and the 95th percentile.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// What was timed.
    pub name: &'static str,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
}

/// What the voice benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct VoiceBenchReport {
    /// Speech-to-text model.
    pub stt_model: String,
    /// Calls at the same time.
    pub concurrent: usize,
    /// Silence that ends an utterance, milliseconds.
    pub vad_silence_ms: u32,
    /// Utterances answered.
    pub turns: usize,
    /// Stages, in pipeline order, then the end-to-end numbers.
    pub stages: Vec<Stage>,
    /// Word error rate of what the server heard against what the callers said, over all calls (words compared
    /// after lower-casing, dropping punctuation and writing numbers as digits).
    pub word_error_rate: f64,
    /// Utterances with a mid-sentence pause, over all calls.
    pub paused: usize,
    /// Of those, how many were answered at the pause.
    pub cut_off: usize,
    /// What the server heard, per utterance (first call).
    pub transcripts: Vec<String>,
}

impl std::fmt::Display for VoiceBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "voice turns: {} ({} call(s) at a time, stt {}, utterance ends after {} ms of silence)",
            self.turns, self.concurrent, self.stt_model, self.vad_silence_ms
        )?;
        writeln!(f, "{:<44} {:>9} {:>9}", "stage", "p50 ms", "p95 ms")?;
        for s in &self.stages {
            writeln!(f, "{:<44} {:>9.0} {:>9.0}", s.name, s.p50_ms, s.p95_ms)?;
        }
        writeln!(f, "word error rate of what was heard: {:.1} %", self.word_error_rate * 100.0)?;
        writeln!(f, "utterances cut off at a mid-sentence pause: {} of {}", self.cut_off, self.paused)?;
        writeln!(f, "heard:")?;
        for t in &self.transcripts {
            writeln!(f, "  {t}")?;
        }
        Ok(())
    }
}

/// Errors of the voice benchmark.
#[derive(Debug, thiserror::Error)]
pub enum VoiceBenchError {
    /// The server has no speech models.
    #[error("the server state has no voice; start it with speech models")]
    NoVoice,
    /// Something failed on the way.
    #[error("voice benchmark: {0}")]
    Failed(String),
}

/// Runs `calls` rounds of `concurrent` simultaneous calls of the script against a server built from `state`, whose
/// recordings go to `recordings`.
pub async fn voice_bench(
    state: AppState,
    recordings: &Path,
    calls: usize,
    concurrent: usize,
) -> Result<VoiceBenchReport, VoiceBenchError> {
    let concurrent = concurrent.max(1);
    let voice = state.voice.clone().ok_or(VoiceBenchError::NoVoice)?;
    let fail = |e: &dyn std::fmt::Display| VoiceBenchError::Failed(e.to_string());
    let caller = EspeakTts::new("en-us", 165);
    let mut utterances = Vec::new();
    let mut seed = 0x5eed_u32;
    for (first, rest) in SCRIPT {
        let mut audio = phone_audio(&caller, first).await.map_err(|e| fail(&e))?;
        if let Some((pause_ms, second)) = rest {
            // The pause is the silence between the two parts' voices, not added to espeak-ng's own.
            let second = phone_audio(&caller, second).await.map_err(|e| fail(&e))?;
            audio = trim_silence(&audio, VOICED_LEVEL).to_vec();
            audio.extend(std::iter::repeat_n(0.0, (PHONE_RATE * pause_ms / 1000) as usize));
            audio.extend_from_slice(trim_silence(&second, VOICED_LEVEL));
        }
        for sample in &mut audio {
            // A fixed pseudo-random sequence, so every run hears the same line.
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let uniform = (seed >> 8) as f32 / 16_777_216.0 * 2.0 - 1.0;
            *sample += uniform * LINE_NOISE_RMS * 3f32.sqrt();
        }
        utterances.push(audio);
    }
    let paused_per_call = SCRIPT.iter().filter(|(_, rest)| rest.is_some()).count();
    let server = LoopbackServer::start(state, Duration::from_secs(10)).await.map_err(|e| fail(&e))?;
    let url = format!("ws://{}/media-stream", server.addr);
    let utterances = std::sync::Arc::new(utterances);
    let mut client_ms = Vec::new();
    let mut call_ids = Vec::new();
    for round in 0..calls {
        let callers: Vec<_> = (0..concurrent)
            .map(|k| {
                let n = round * concurrent + k;
                let (url, utterances) = (url.clone(), utterances.clone());
                call_ids.push(format!("CAbench{n}"));
                tokio::spawn(async move { one_call(&url, n, &utterances).await })
            })
            .collect();
        for caller in callers {
            client_ms.extend(caller.await.map_err(|e| fail(&e))?.map_err(|e| fail(&e))?);
        }
    }
    server.stop().await.map_err(|e| fail(&e))?;

    let mut stages: Vec<(&'static str, &'static str, Vec<f64>)> = vec![
        ("utterance (speech + lead-in + silence)", "speech_ms", vec![]),
        ("silence until the utterance ends (VAD)", "vad_silence_ms", vec![]),
        ("speech-to-text", "stt_ms", vec![]),
        ("  of which encoder", "stt_encode_ms", vec![]),
        ("  of which decoder", "stt_decode_ms", vec![]),
        ("agent turn (memory, tools, reply)", "agent_ms", vec![]),
        ("text-to-speech, first sentence", "tts_first_ms", vec![]),
        ("VAD end → first audio sent (server)", "vad_end_to_first_audio_ms", vec![]),
    ];
    let mut transcripts = Vec::new();
    let mut cut_off = 0;
    let said: Vec<String> = SCRIPT
        .iter()
        .flat_map(|(first, rest)| std::iter::once(*first).chain(rest.map(|(_, second)| second)))
        .flat_map(words)
        .collect();
    let (mut errors, mut reference) = (0, 0);
    for (call, call_id) in call_ids.iter().enumerate() {
        let mut turns_in_call = 0usize;
        let mut heard = Vec::new();
        let file = recordings.join(format!("{call_id}.jsonl"));
        let text = std::fs::read_to_string(&file).map_err(|e| fail(&format!("{}: {e}", file.display())))?;
        for line in text.lines() {
            let event: serde_json::Value = serde_json::from_str(line).map_err(|e| fail(&e))?;
            if event["kind"] != "voice_turn" {
                continue;
            }
            let data = &event["data"];
            turns_in_call += 1;
            for (_, key, values) in stages.iter_mut() {
                if let Some(v) = data[*key].as_f64() {
                    values.push(v);
                }
            }
            let transcript = data["transcript"].as_str().unwrap_or_default();
            heard.extend(words(transcript));
            if call == 0 {
                transcripts.push(transcript.to_string());
            }
        }
        errors += edit_distance(&said, &heard);
        reference += said.len();
        // An utterance cut at its pause is answered twice: once at the pause, once at its end.
        cut_off += turns_in_call.saturating_sub(SCRIPT.len()).min(paused_per_call);
    }
    let turns = stages[2].2.len();
    let mut out: Vec<Stage> =
        stages.into_iter().map(|(name, _, v)| Stage { name, p50_ms: pct(&v, 50), p95_ms: pct(&v, 95) }).collect();
    out.push(Stage {
        name: "END OF SPEECH → FIRST AUDIO (caller's end)",
        p50_ms: pct(&client_ms, 50),
        p95_ms: pct(&client_ms, 95),
    });
    Ok(VoiceBenchReport {
        stt_model: voice.stt.model().to_string(),
        vad_silence_ms: voice.vad.silence_ms,
        turns,
        stages: out,
        word_error_rate: errors as f64 / reference.max(1) as f64,
        concurrent,
        paused: paused_per_call * call_ids.len(),
        cut_off,
        transcripts,
    })
}

/// One caller: the greeting, then each utterance in real time and its reply; returns end of speech → first
/// agent audio per utterance, in milliseconds.
async fn one_call(url: &str, n: usize, utterances: &[Vec<f32>]) -> Result<Vec<f64>, String> {
    let mut phone = PhoneClient::connect(url, None).await.map_err(|e| e.to_string())?;
    phone.start(&format!("CAbench{n}"), &format!("+1555019{n:04}")).await;
    phone.reply(Duration::from_secs(30), Duration::from_millis(800), true, true).await;
    let mut ms = Vec::new();
    for audio in utterances {
        let spoke_until = phone.send_audio(audio, true).await.unwrap_or_else(Instant::now);
        let reply = phone.reply(Duration::from_secs(30), Duration::from_millis(800), true, true).await;
        // A reply that began before the caller had finished answers a part of the utterance (a cut-off, counted
        // apart), not its end.
        if let Some(first) = reply.first_frame_at.filter(|&first| first >= spoke_until) {
            ms.push(first.duration_since(spoke_until).as_secs_f64() * 1000.0);
        }
    }
    phone.stop().await;
    while phone.next_event(Duration::from_secs(10)).await.is_some() {}
    Ok(ms)
}

/// Percentile of milliseconds.
fn pct(ms: &[f64], p: usize) -> f64 {
    let mut d: Vec<Duration> = ms.iter().map(|m| Duration::from_secs_f64(m.max(0.0) / 1000.0)).collect();
    d.sort();
    percentile(&d, p)
}
