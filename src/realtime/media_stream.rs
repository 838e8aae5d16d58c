//! `/media-stream`: one phone call over Twilio Media Streams — the codec at the edge of a [`VoiceSession`].
//!
//! The socket reader decodes Twilio's messages and the caller's μ-law audio, runs voice-activity detection, and feeds
//! the session speech starts, ended utterances, echoed marks and key presses; the session's audio goes back as
//! Twilio `media`, `mark` and `clear` messages ([`TwilioAudio`]), and a transfer is a Twilio call update
//! ([`Line`]).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{info_span, warn};

use super::transfer::CallTransfer;
use super::twilio::{normalize_caller, Inbound, MarkName, Outbound, OutboundMedia};
use super::voice::{decode_payload, PHONE_RATE};
use super::voice_session::{CallAudio, CallControl, VoiceSession};
use super::{signature_ok, AppState, MAX_WS_MESSAGE};
use crate::agent::AgentPlanner;
use crate::speech::vad::{Vad, VadEvent};
use crate::speech::Voice;

/// Malformed messages tolerated on one call before it is closed.
const MAX_BAD_MESSAGES: u32 = 20;
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

/// The session's audio as Twilio messages on the socket.
struct TwilioAudio {
    out: mpsc::UnboundedSender<Out>,
    stream_sid: String,
}

impl CallAudio for TwilioAudio {
    fn play(&self, frames: Vec<String>, mark: &str) {
        for payload in frames {
            let media = Outbound::Media { stream_sid: self.stream_sid.clone(), media: OutboundMedia { payload } };
            let _ = self.out.send(Out::Twilio(media));
        }
        let mark = Outbound::Mark { stream_sid: self.stream_sid.clone(), mark: MarkName { name: mark.into() } };
        let _ = self.out.send(Out::Twilio(mark));
    }

    fn clear(&self) {
        let _ = self.out.send(Out::Twilio(Outbound::Clear { stream_sid: self.stream_sid.clone() }));
    }

    /// Closing the media stream ends a `<Connect><Stream>` call, as nothing follows it in the TwiML.
    fn hang_up(&self, reason: &str) {
        let _ = self.out.send(Out::Close(1000, reason.into()));
    }
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

impl CallControl for Line {
    fn office(&self) -> Result<&str, String> {
        self.transfer.as_ref().map(CallTransfer::office_phone).map_err(Clone::clone)
    }

    fn transfer(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let to = self.transfer.as_ref().map_err(Clone::clone)?;
            to.to_office(&self.account_sid, &self.call_sid).await.map_err(|e| e.to_string())
        })
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
    let mut started: Option<VoiceSession> = None;
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
                if let Some(session) = &started {
                    session.key_pressed(&dtmf.digit);
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
                let planner = AgentPlanner::start(state.agent.clone(), &user_id, &session_id);
                planner.record_event("call_start", None, json!({"stream_sid": start.stream_sid, "user_id": user_id}));
                let audio = Arc::new(TwilioAudio { out: out_tx.clone(), stream_sid: start.stream_sid.clone() });
                let line = Arc::new(Line::new(&state, start.account_sid.clone(), start.call_sid.clone()));
                let span = info_span!("call", session = %session_id);
                started = Some(VoiceSession::start(planner, voice.clone(), audio, line, span));
            }
            Inbound::Media { media } => {
                let Some(session) = &started else {
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
                    Some(VadEvent::SpeechStarted) => session.speech_started(),
                    Some(VadEvent::SpeechEnded { samples, trailing_silence_ms }) => {
                        session.utterance(samples, trailing_silence_ms)
                    }
                    Some(VadEvent::Paused { samples }) => session.paused(samples),
                    Some(VadEvent::Resumed) => session.resumed(),
                    None => {}
                }
            }
            Inbound::Mark { mark } => {
                if let Some(session) = &started {
                    session.played(&mark.name);
                }
            }
            Inbound::Stop => break Some((1000, "call ended".into())),
        }
    };
    // The session answers what is queued, then flushes memory and ends the recording.
    if let Some(session) = started {
        session.finish().await;
    }
    if let Some((code, reason)) = close {
        let _ = out_tx.send(Out::Close(code, reason));
    }
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}
