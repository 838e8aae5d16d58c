//! `/media-stream`: one phone call over Twilio Media Streams.
//!
//! The socket reader decodes caller audio and runs voice-activity detection; a call task owns the planner and runs
//! each utterance through Whisper, the agent and espeak-ng, sending the reply as 20 ms μ-law frames with a mark
//! after each sentence. Twilio echoes a mark when the audio before it has played; when the caller starts speaking
//! while sentences are still unplayed, the reader sends `clear`; if what the caller said turns out to be noise or a
//! backchannel ("mm-hm"), the reply resumes at the cut sentence, otherwise the planner keeps only what was heard. A caller
//! who presses 0 is transferred to the office's number through Twilio's call-update API.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{info_span, warn, Instrument};

use super::transfer::CallTransfer;
use super::twilio::{normalize_caller, Inbound, MarkName, Outbound, OutboundMedia};
use super::voice::{decode_payload, sentences, speak_frames, PHONE_RATE, STT_RATE};
use super::{signature_ok, AppState, MAX_WS_MESSAGE};
use crate::agent::{AgentPlanner, Reply};
use crate::speech::audio::resample;
use crate::speech::vad::{Vad, VadEvent};
use crate::speech::Voice;

/// Malformed messages tolerated on one call before it is closed.
const MAX_BAD_MESSAGES: u32 = 20;
/// Utterances waiting for the call task before new ones are dropped.
const UTTERANCE_QUEUE: usize = 4;
/// Close code for protocol violations (RFC 6455 "policy violation").
const POLICY: u16 = 1008;
/// Close code for an audio format we cannot use ("unsupported data").
const UNSUPPORTED: u16 = 1003;

/// Upgrades to a media stream once the request's signature checks out (when a Twilio auth token is set).
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    if !signature_ok(&state, &headers, &uri, &[], true) {
        return (StatusCode::FORBIDDEN, "invalid or missing X-Twilio-Signature").into_response();
    }
    let Some(voice) = state.voice.clone() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "voice calls are off: start `tourdesk serve` without --no-voice")
            .into_response();
    };
    ws.max_message_size(MAX_WS_MESSAGE)
        .max_frame_size(MAX_WS_MESSAGE)
        .on_upgrade(move |socket| call(socket, state, voice))
}

/// What goes out on the socket, in order.
enum Out {
    Twilio(Outbound),
    Close(u16, String),
}

/// Malformed messages seen on one call.
#[derive(Default)]
struct Malformed(u32);

impl Malformed {
    /// Counts one more; once there have been more than [`MAX_BAD_MESSAGES`], the close frame that ends the call.
    fn count(&mut self) -> Option<(u16, String)> {
        self.0 += 1;
        (self.0 > MAX_BAD_MESSAGES).then(|| (POLICY, "too many malformed messages".to_string()))
    }
}

/// A sentence sent to Twilio and whether it has played.
struct Sent {
    /// The reply it belongs to (0 is the greeting).
    turn: usize,
    mark: String,
    text: String,
    played: bool,
}

/// What the caller has been sent; shared by the reader (marks, barge-in) and the call task (sending). Sending and
/// clearing happen under its lock, so no frame of a cut-off reply can follow a `clear`.
struct Playback {
    /// Bumped by every barge-in: a reply being spoken under an older generation stops.
    generation: u64,
    sent: Vec<Sent>,
    out: mpsc::UnboundedSender<Out>,
    stream_sid: String,
}

impl Playback {
    /// Whether audio is still queued or playing at the caller's end.
    fn talking(&self) -> bool {
        self.sent.iter().any(|s| !s.played)
    }
}

/// Work for the call task.
enum Job {
    /// Greet the caller.
    Greet,
    /// Transcribe and answer an utterance (8 kHz samples); `ended` is when the VAD decided it ended,
    /// `trailing_silence_ms` how much silence that took.
    Utterance { samples: Vec<f32>, ended: Instant, trailing_silence_ms: u32 },
    /// The caller barged in having heard only `heard` of the last reply; `unheard` are its sentences not yet
    /// played, the cut one first.
    Heard { heard: String, unheard: Vec<String> },
    /// The caller pressed 0: put them through to the office.
    Transfer,
}

/// The call as Twilio knows it, and where it can be transferred.
struct Line {
    account_sid: String,
    call_sid: String,
    /// The office and how to reach Twilio, or why calls cannot be transferred.
    transfer: Result<CallTransfer, String>,
}

impl Line {
    fn new(state: &AppState, account_sid: String, call_sid: String) -> Self {
        let transfer = match (&state.office_phone, &state.twilio_auth_token) {
            (None, _) => Err("no office_phone is set".to_string()),
            (Some(_), None) => Err("no twilio_auth_token is set".to_string()),
            (Some(phone), Some(token)) => {
                CallTransfer::new(&state.twilio_api_url, token.clone(), phone).map_err(|e| e.to_string())
            }
        };
        Self { account_sid, call_sid, transfer }
    }
}

/// One call: the reader loop; the writer and the call task run beside it.
async fn call(socket: WebSocket, state: AppState, voice: Voice) {
    let _guard = state.shutdown.session();
    let mut stopping = state.shutdown.watch();
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Out>();
    let writer = tokio::spawn(async move {
        while let Some(out) = out_rx.recv().await {
            let msg = match out {
                Out::Twilio(o) => match serde_json::to_string(&o) {
                    Ok(t) => Message::Text(t.into()),
                    Err(_) => continue,
                },
                Out::Close(code, reason) => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                    break;
                }
            };
            if sink.send(msg).await.is_err() {
                break;
            }
        }
    });
    let mut bad = Malformed::default();
    let silero = match voice.silero.as_ref().map(|s| s.stream(PHONE_RATE)).transpose() {
        Ok(stream) => stream,
        Err(e) => {
            warn!(error = %e, "Silero VAD unavailable for this call; using the energy detector");
            None
        }
    };
    let mut vad = Vad::new(voice.vad, PHONE_RATE, silero);
    if let Some(turn) = &voice.turn {
        vad = vad.with_turn(turn.clone());
    }
    let mut started: Option<(Arc<Mutex<Playback>>, mpsc::Sender<Job>, tokio::task::JoinHandle<()>)> = None;
    let close = loop {
        let incoming = tokio::select! {
            _ = stopping.wait_for(|s| *s) => break Some((1001, "server shutting down".to_string())),
            m = stream.next() => m,
        };
        let text = match incoming {
            None | Some(Ok(Message::Close(_))) => break None,
            Some(Err(e)) => {
                warn!(error = %e, "media stream failed");
                break Some((1009, format!("{e}")));
            }
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Binary(_))) => {
                warn!("binary frame on a media stream ignored: Twilio sends JSON text");
                if let Some(close) = bad.count() {
                    break Some(close);
                }
                continue;
            }
            Some(Ok(_)) => continue,
        };
        let event = match serde_json::from_str::<Inbound>(&text) {
            Ok(e) => e,
            Err(e) => {
                let kind = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_string));
                match kind {
                    Some(k) => warn!(event = %k, error = %e, "media stream message ignored (unknown or malformed)"),
                    None => warn!(error = %e, "media stream message is not a Twilio event; ignored"),
                }
                if let Some(close) = bad.count() {
                    break Some(close);
                }
                continue;
            }
        };
        match event {
            Inbound::Connected { .. } => {}
            Inbound::Dtmf { dtmf } => {
                if let (Some((_, jobs, _)), "0") = (&started, dtmf.digit.as_str()) {
                    if jobs.try_send(Job::Transfer).is_err() {
                        warn!("transfer request dropped: the call's queue is full");
                    }
                }
            }
            Inbound::Start { start } => {
                if started.is_some() {
                    warn!("second start on one media stream ignored");
                    continue;
                }
                let f = &start.media_format;
                if f.encoding != "audio/x-mulaw" || f.sample_rate != PHONE_RATE || f.channels != 1 {
                    break Some((
                        UNSUPPORTED,
                        format!(
                            "unsupported media format {} {} Hz × {}: send audio/x-mulaw 8000 Hz mono",
                            f.encoding, f.sample_rate, f.channels
                        ),
                    ));
                }
                let caller = start.custom_parameters.get("caller").and_then(|c| normalize_caller(c));
                let session_id =
                    start.call_sid.chars().filter(|c| c.is_ascii_alphanumeric()).take(64).collect::<String>();
                if session_id.is_empty() {
                    break Some((POLICY, "start without a callSid".into()));
                }
                let user_id = caller.unwrap_or_else(|| format!("anonymous-{session_id}"));
                let mut planner = AgentPlanner::start(state.agent.clone(), &user_id, &session_id);
                planner.hold_exchanges();
                planner.record_event("call_start", None, json!({"stream_sid": start.stream_sid, "user_id": user_id}));
                let playback = Arc::new(Mutex::new(Playback {
                    generation: 0,
                    sent: Vec::new(),
                    out: out_tx.clone(),
                    stream_sid: start.stream_sid.clone(),
                }));
                let (jobs, rx) = mpsc::channel(UTTERANCE_QUEUE);
                let line = Line::new(&state, start.account_sid.clone(), start.call_sid.clone());
                let task = tokio::spawn(
                    call_task(planner, voice.clone(), playback.clone(), line, rx)
                        .instrument(info_span!("call", session = %session_id)),
                );
                let _ = jobs.try_send(Job::Greet);
                started = Some((playback, jobs, task));
            }
            Inbound::Media { media } => {
                let Some((playback, jobs, _)) = &started else {
                    break Some((POLICY, "media before start: send the start event first".into()));
                };
                let samples = match decode_payload(&media.payload) {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(error = %e, "media payload is not base64; frame skipped");
                        if let Some(close) = bad.count() {
                            break Some(close);
                        }
                        continue;
                    }
                };
                match vad.push(&samples).await {
                    Some(VadEvent::SpeechStarted) => barge_in(playback, jobs),
                    Some(VadEvent::SpeechEnded { samples, trailing_silence_ms }) => {
                        let job = Job::Utterance { samples, ended: Instant::now(), trailing_silence_ms };
                        if jobs.try_send(job).is_err() {
                            warn!("the caller is talking faster than the agent answers; utterance dropped");
                        }
                    }
                    None => {}
                }
            }
            Inbound::Mark { mark } => {
                if let Some((playback, _, _)) = &started {
                    let mut p = playback.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(s) = p.sent.iter_mut().find(|s| s.mark == mark.name) {
                        s.played = true;
                    }
                }
            }
            Inbound::Stop => break Some((1000, "call ended".into())),
        }
    };
    // The call task answers what is queued, then flushes memory and ends the recording.
    if let Some((_, jobs, task)) = started {
        drop(jobs);
        let _ = task.await;
    }
    if let Some((code, reason)) = close {
        let _ = out_tx.send(Out::Close(code, reason));
    }
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

/// The caller started speaking: if sentences are unplayed, clear them and tell the planner what was heard.
fn barge_in(playback: &Arc<Mutex<Playback>>, jobs: &mpsc::Sender<Job>) {
    let mut p = playback.lock().unwrap_or_else(|e| e.into_inner());
    if !p.talking() {
        return;
    }
    p.generation += 1;
    // What was heard of the reply being cut off (the latest one); earlier replies were heard whole.
    let latest = p.sent.iter().map(|s| s.turn).max().unwrap_or_default();
    let heard =
        p.sent.iter().filter(|s| s.turn == latest && s.played).map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
    let unheard = p.sent.iter().filter(|s| s.turn == latest && !s.played).map(|s| s.text.clone()).collect();
    p.sent.clear();
    let _ = p.out.send(Out::Twilio(Outbound::Clear { stream_sid: p.stream_sid.clone() }));
    drop(p);
    if jobs.try_send(Job::Heard { heard, unheard }).is_err() {
        warn!("barge-in not passed to the planner: its queue is full");
    }
}

/// Owns the planner: greets, answers utterances, applies barge-ins, and finishes the session when the reader
/// drops the queue.
async fn call_task(
    mut planner: AgentPlanner,
    voice: Voice,
    playback: Arc<Mutex<Playback>>,
    line: Line,
    mut jobs: mpsc::Receiver<Job>,
) {
    let mut turn = 0usize;
    // A reply the caller talked over, until what they said is known.
    let mut cut: Option<Cut> = None;
    // What was heard of the latest reply before it was resumed, while it is still the latest.
    let mut resumed: Option<String> = None;
    let mut resumes = 0usize;
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Greet => match planner.greet().await {
                Ok(reply) => {
                    let spoken = speak(&voice, &playback, &reply.text, turn).await;
                    planner.record_event("voice_greeting", None, json!({"text": reply.text, "tts_ms": spoken.tts_ms}));
                }
                Err(e) => warn!(error = %e, "greeting failed"),
            },
            Job::Transfer => {
                if let Some(c) = cut.take() {
                    planner.heard(&c.heard);
                }
                resumed = None;
                turn += 1;
                if transfer(&mut planner, &voice, &playback, &line, turn).await {
                    break;
                }
            }
            Job::Heard { heard, unheard } => {
                let heard = match resumed.take() {
                    Some(before) => format!("{before} {heard}").trim().to_string(),
                    None => heard,
                };
                planner.record_event("barge_in", None, json!({"heard": heard}));
                if let Some(earlier) = cut.replace(Cut { heard, unheard, turn }) {
                    planner.heard(&earlier.heard);
                }
            }
            Job::Utterance { samples, ended, trailing_silence_ms } => {
                let speech_ms = samples.len() as f64 * 1000.0 / PHONE_RATE as f64;
                let wide = resample(&samples, PHONE_RATE, STT_RATE);
                let t = Instant::now();
                let transcript = match voice.stt.transcribe(wide).await {
                    Ok(t) => t,
                    Err(e) => {
                        warn!(error = %e, "speech-to-text failed; utterance skipped");
                        planner.record_event("stt_error", None, json!({"error": e.to_string()}));
                        continue;
                    }
                };
                let stt_ms = t.elapsed().as_secs_f64() * 1000.0;
                let text = transcript.text.trim();
                if let Some(c) = cut.take() {
                    if is_noise(text) || is_backchannel(text) {
                        // A false interruption: the reply goes on from the sentence that was cut.
                        planner.record_event("resume", None, json!({"after": text, "sentences": c.unheard.len()}));
                        resumed = Some(c.heard);
                        resumes += 1;
                        speak_sentences(
                            &voice,
                            &playback,
                            c.unheard,
                            c.turn,
                            &format!("turn{}-resume{resumes}", c.turn),
                        )
                        .await;
                        continue;
                    }
                    planner.heard(&c.heard);
                }
                if is_noise(text) {
                    planner.record_event("stt_noise", None, json!({"text": text, "stt_ms": stt_ms}));
                    continue;
                }
                resumed = None;
                let t = Instant::now();
                let reply: Reply = match planner.process_transcript(text).await {
                    Ok(r) => r,
                    Err(e) => {
                        warn!(error = %e, "the agent could not answer");
                        continue;
                    }
                };
                let agent_ms = t.elapsed().as_secs_f64() * 1000.0;
                turn += 1;
                let spoken = speak(&voice, &playback, &reply.text, turn).await;
                let first_audio_ms = spoken.first_audio.map(|at| at.duration_since(ended).as_secs_f64() * 1000.0);
                planner.record_event(
                    "voice_turn",
                    None,
                    json!({
                        "transcript": text,
                        "speech_ms": speech_ms,
                        "vad_silence_ms": trailing_silence_ms,
                        "stt_ms": stt_ms,
                        "stt_encode_ms": transcript.encode_ms,
                        "stt_decode_ms": transcript.decode_ms,
                        "agent_ms": agent_ms,
                        "tts_first_ms": spoken.tts_ms,
                        "vad_end_to_first_audio_ms": first_audio_ms,
                        "speech_end_to_first_audio_ms": first_audio_ms.map(|ms| ms + trailing_silence_ms as f64),
                        "sentences": spoken.sentences,
                        "cut_off": spoken.cut_off,
                    }),
                );
                if planner.call_over() && !spoken.cut_off {
                    hang_up(&playback).await;
                    planner.record_event("hang_up", None, json!({"reason": "goodbye"}));
                    break;
                }
            }
        }
    }
    if let Some(c) = cut.take() {
        planner.heard(&c.heard);
    }
    planner.finish().await;
}

/// A reply the caller talked over: what they heard of it, and its sentences they did not hear (the cut one first).
struct Cut {
    heard: String,
    unheard: Vec<String>,
    turn: usize,
}

/// A backchannel: the caller is listening, not asking ("mm-hm", "uh-huh", "hmm").
fn is_backchannel(text: &str) -> bool {
    let letters: String = text.chars().filter(|c| c.is_alphabetic()).flat_map(char::to_lowercase).collect();
    matches!(
        letters.as_str(),
        "mmhmm" | "mhm" | "mmhm" | "mhmm" | "uhhuh" | "hmm" | "hm" | "mm" | "mmm" | "uh" | "um" | "umm" | "ah" | "oh"
    )
}

/// Longest wait for the goodbye to be played (its marks echoed) before the call is closed anyway.
const GOODBYE_PLAYED_WITHIN: Duration = Duration::from_secs(10);

/// Waits until everything sent has played at the caller's end (its marks echoed), or [`GOODBYE_PLAYED_WITHIN`].
async fn played(playback: &Arc<Mutex<Playback>>) {
    let until = Instant::now() + GOODBYE_PLAYED_WITHIN;
    while Instant::now() < until && playback.lock().unwrap_or_else(|e| e.into_inner()).talking() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Closes the media stream with `reason` once what was sent has played.
async fn close_after_playing(playback: &Arc<Mutex<Playback>>, reason: &str) {
    played(playback).await;
    let p = playback.lock().unwrap_or_else(|e| e.into_inner());
    let _ = p.out.send(Out::Close(1000, reason.into()));
}

/// Ends the call once the goodbye has been heard: closing the media stream ends a `<Connect><Stream>` call, as
/// nothing follows it in the TwiML.
async fn hang_up(playback: &Arc<Mutex<Playback>>) {
    close_after_playing(playback, "call ended: goodbye").await;
}

/// Puts the caller through to the office: says so, waits until that has played, then has Twilio dial the office
/// (which ends this stream). When transfers are not set up or Twilio refuses, the caller is told, the number given
/// where there is one, and the call goes on. Whether the call was handed over.
async fn transfer(
    planner: &mut AgentPlanner,
    voice: &Voice,
    playback: &Arc<Mutex<Playback>>,
    line: &Line,
    turn: usize,
) -> bool {
    let to = match &line.transfer {
        Ok(to) => to,
        Err(why) => {
            warn!(reason = %why, "a caller pressed 0 but transfers are not set up");
            planner.record_event("transfer", None, json!({"ok": false, "error": why}));
            let sorry = "I'm sorry, I can't transfer calls from this line. I'm happy to keep helping you here.";
            speak(voice, playback, sorry, turn).await;
            return false;
        }
    };
    speak(voice, playback, "One moment, I'll put you through to the office.", turn).await;
    played(playback).await;
    match to.to_office(&line.account_sid, &line.call_sid).await {
        Ok(()) => {
            planner.record_event("transfer", None, json!({"ok": true, "to": to.office_phone()}));
            let p = playback.lock().unwrap_or_else(|e| e.into_inner());
            let _ = p.out.send(Out::Close(1000, "call transferred to the office".into()));
            true
        }
        Err(e) => {
            warn!(error = %e, "the transfer to the office failed");
            planner.record_event(
                "transfer",
                None,
                json!({"ok": false, "to": to.office_phone(), "error": e.to_string()}),
            );
            let sorry = format!(
                "Sorry, I couldn't put you through just now. You can reach the office at {}, or I can keep helping \
                 you here.",
                spoken_number(to.office_phone())
            );
            speak(voice, playback, &sorry, turn).await;
            false
        }
    }
}

/// An E.164 number as it is read out: digit by digit, in groups (`+15551234567` → "5 5 5, 1 2 3, 4 5 6 7").
fn spoken_number(e164: &str) -> String {
    let digits: Vec<char> = e164.trim_start_matches("+1").trim_start_matches('+').chars().collect();
    let split = if digits.len() == 10 { vec![3, 6] } else { (4..digits.len()).step_by(4).collect() };
    let mut groups = Vec::new();
    let mut from = 0;
    for to in split.into_iter().chain([digits.len()]) {
        groups.push(digits[from..to].iter().map(char::to_string).collect::<Vec<_>>().join(" "));
        from = to;
    }
    groups.join(", ")
}

/// Whisper's output for breath, clicks and line noise.
fn is_noise(text: &str) -> bool {
    let words = text.trim_matches(|c: char| !c.is_alphanumeric());
    words.is_empty()
        || (text.starts_with('[') && text.ends_with(']'))
        || (text.starts_with('(') && text.ends_with(')'))
        || words.eq_ignore_ascii_case("you")
}

/// How a reply went out.
struct Spoken {
    first_audio: Option<Instant>,
    tts_ms: Option<f64>,
    sentences: usize,
    cut_off: bool,
}

/// Synthesizes `text` sentence by sentence and sends each as frames plus a mark, stopping at a barge-in.
async fn speak(voice: &Voice, playback: &Arc<Mutex<Playback>>, text: &str, turn: usize) -> Spoken {
    speak_sentences(voice, playback, sentences(text), turn, &format!("turn{turn}")).await
}

/// Speaks `sentences` of reply `turn`, each followed by a mark named `{marks}-{i}`, stopping at a barge-in.
async fn speak_sentences(
    voice: &Voice,
    playback: &Arc<Mutex<Playback>>,
    sentences: Vec<String>,
    turn: usize,
    marks: &str,
) -> Spoken {
    let generation = playback.lock().unwrap_or_else(|e| e.into_inner()).generation;
    let mut spoken = Spoken { first_audio: None, tts_ms: None, sentences: 0, cut_off: false };
    for (i, sentence) in sentences.into_iter().enumerate() {
        let t = Instant::now();
        let frames = match speak_frames(voice.tts.as_ref(), &sentence).await {
            Ok(f) => f,
            Err(e) => {
                warn!(error = %e, "text-to-speech failed; sentence skipped");
                continue;
            }
        };
        spoken.tts_ms.get_or_insert(t.elapsed().as_secs_f64() * 1000.0);
        let mut p = playback.lock().unwrap_or_else(|e| e.into_inner());
        if p.generation != generation {
            spoken.cut_off = true;
            break;
        }
        let mark = format!("{marks}-{i}");
        let stream_sid = p.stream_sid.clone();
        for payload in frames {
            let media = Outbound::Media { stream_sid: stream_sid.clone(), media: OutboundMedia { payload } };
            let _ = p.out.send(Out::Twilio(media));
        }
        let _ = p.out.send(Out::Twilio(Outbound::Mark { stream_sid, mark: MarkName { name: mark.clone() } }));
        // Replies heard in full are done with.
        p.sent.retain(|s| !s.played || s.turn == turn);
        p.sent.push(Sent { turn, mark, text: sentence, played: false });
        spoken.first_audio.get_or_insert_with(Instant::now);
        spoken.sentences += 1;
    }
    spoken
}

#[cfg(test)]
mod tests {
    use super::{is_backchannel, spoken_number};

    #[test]
    fn backchannels_are_told_from_requests() {
        for text in ["Mm-hmm.", "mhm", "Uh-huh.", "Hmm...", "Oh."] {
            assert!(is_backchannel(text), "{text}");
        }
        for text in ["Yes.", "No.", "Okay, what about parking?", "Um, how much is it?", ""] {
            assert!(!is_backchannel(text), "{text}");
        }
    }

    #[test]
    fn numbers_are_read_digit_by_digit_in_groups() {
        assert_eq!(spoken_number("+15551234567"), "5 5 5, 1 2 3, 4 5 6 7");
        assert_eq!(spoken_number("+442071234567"), "4 4 2 0, 7 1 2 3, 4 5 6 7");
    }
}
