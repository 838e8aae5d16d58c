//! `/ws/chat`: talk to the agent over a websocket with JSON text messages.
//!
//! Client → server: `{"type":"start","user_id":"+15551230001"}` (optionally `"session_id"`), then
//! `{"type":"text","text":"…"}` per utterance, then `{"type":"stop"}` (or just close).
//! Server → client: `started`, one `reply` (text, planner state, changed slots, tool calls, latency) per text,
//! `error` for anything it cannot use (the session goes on), and `stopped` when the session ends.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tracing::{info_span, warn, Instrument};

use super::{AppState, MAX_WS_MESSAGE};
use crate::agent::{AgentPlanner, PlannerState, Slot, ToolEvent};
use crate::memory::Scope;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Opens the session for a caller.
    Start {
        /// The caller (a phone number or any stable id); memories are kept per user id.
        user_id: String,
        /// Session id; a new one when absent.
        #[serde(default)]
        session_id: Option<String>,
    },
    /// What the caller said.
    Text {
        /// The utterance.
        text: String,
    },
    /// Ends the session (memory is flushed first).
    Stop,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The session is open.
    Started {
        /// Its id.
        session_id: String,
        /// The caller.
        user_id: String,
    },
    /// The agent's answer to one `text`.
    Reply {
        /// What the agent says.
        text: String,
        /// Planner state after the turn.
        state: PlannerState,
        /// Slots the turn changed.
        changed: Vec<Slot>,
        /// Tools called.
        tools: Vec<ToolEvent>,
        /// Turn latency, milliseconds.
        latency_ms: f64,
    },
    /// A message could not be used; the session goes on.
    Error {
        /// What was wrong and what to send instead.
        message: String,
    },
    /// The session ended and its memory writes are flushed.
    Stopped {
        /// Why: `stop`, `shutdown` or `closed`.
        reason: String,
    },
}

/// Upgrades to the chat protocol, with the message size limit.
pub async fn upgrade(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    ws.max_message_size(MAX_WS_MESSAGE).max_frame_size(MAX_WS_MESSAGE).on_upgrade(move |socket| session(socket, state))
}

async fn send(socket: &mut WebSocket, msg: &ServerMessage) -> bool {
    match serde_json::to_string(msg) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn error(socket: &mut WebSocket, message: impl Into<String>) -> bool {
    send(socket, &ServerMessage::Error { message: message.into() }).await
}

/// One websocket connection: at most one session, turns in order.
async fn session(mut socket: WebSocket, state: AppState) {
    let _guard = state.shutdown.session();
    let mut stopping = state.shutdown.watch();
    let mut planner: Option<AgentPlanner> = None;
    let reason = loop {
        let incoming = tokio::select! {
            _ = stopping.wait_for(|s| *s) => break "shutdown",
            m = socket.recv() => m,
        };
        let text = match incoming {
            None => break "closed",
            Some(Err(e)) => {
                warn!(error = %e, "chat websocket failed");
                break "closed";
            }
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) => break "closed",
            Some(Ok(Message::Binary(_))) => {
                if !error(&mut socket, "binary frames are not part of this protocol; send JSON text").await {
                    break "closed";
                }
                continue;
            }
            Some(Ok(_)) => continue,
        };
        let msg = match serde_json::from_str::<ClientMessage>(&text) {
            Ok(m) => m,
            Err(e) => {
                let hint = format!("invalid message ({e}); expected {{\"type\": \"start\" | \"text\" | \"stop\", …}}");
                if !error(&mut socket, hint).await {
                    break "closed";
                }
                continue;
            }
        };
        let ok = match (msg, planner.as_mut()) {
            (ClientMessage::Start { .. }, Some(_)) => error(&mut socket, "the session has already started").await,
            (ClientMessage::Start { user_id, session_id }, None) => {
                let user_id = user_id.trim().to_string();
                if let Err(e) = Scope::user(user_id.clone()).validate() {
                    error(&mut socket, format!("invalid user_id: {e}")).await
                } else {
                    let session_id = session_id
                        .filter(|s| Scope { run_id: Some(s.clone()), ..Scope::default() }.validate().is_ok())
                        .unwrap_or_else(|| format!("ws-{}", uuid::Uuid::new_v4().simple()));
                    let p = AgentPlanner::start(state.agent.clone(), &user_id, &session_id);
                    planner = Some(p);
                    send(&mut socket, &ServerMessage::Started { session_id, user_id }).await
                }
            }
            (ClientMessage::Text { .. }, None) => {
                error(&mut socket, "send {\"type\": \"start\", \"user_id\": …} first").await
            }
            (ClientMessage::Text { text }, Some(_)) if text.trim().is_empty() => error(&mut socket, "empty text").await,
            (ClientMessage::Text { text }, Some(p)) => {
                match p.process_transcript(&text).instrument(info_span!("ws.turn")).await {
                    Ok(r) => {
                        let reply = ServerMessage::Reply {
                            text: r.text,
                            state: r.state,
                            changed: r.changed,
                            tools: r.tools,
                            latency_ms: r.latency_ms,
                        };
                        send(&mut socket, &reply).await
                    }
                    Err(e) => error(&mut socket, format!("the agent could not answer: {e}")).await,
                }
            }
            (ClientMessage::Stop, _) => break "stop",
        };
        if !ok {
            break "closed";
        }
    };
    if let Some(mut p) = planner {
        p.finish().await;
    }
    if reason != "closed" {
        let _ = send(&mut socket, &ServerMessage::Stopped { reason: reason.into() }).await;
        let _ = socket.send(Message::Close(None)).await;
    }
}
