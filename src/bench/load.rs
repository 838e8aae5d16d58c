//! `tourdesk bench load`: many callers at once, as a user would load the server. For each level, that many real
//! websocket clients open `/ws/chat` on the loopback server at the same time and each holds a scripted seven-turn
//! booking conversation; the report gives turn latency as the clients see it (send → reply), errors, the server's
//! resident memory, and memory-write lag: how long after a turn what the caller said is found in their memories.

use std::fmt;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use super::{percentile, resident_mib};
use crate::app::{AppState, LoopbackServer};
use crate::memory::{MetadataFilter, Scope};
use crate::realtime::{ClientMessage, ServerMessage};

/// What each caller says, in order: a booking conversation up to the read-back of the first slot offered (no tour
/// is booked, so every level starts from the same open slots).
pub const SCRIPT: [&str; 7] = [
    "Hi, I'm looking for a two-bedroom at Hudson 360.",
    "I've got a cat.",
    "I'd like to move in on January 15th.",
    "Around four thousand a month.",
    "A virtual tour, please.",
    "The first one.",
    "My name is Sam and my email is sam at example dot com.",
];
/// The turn whose memory the write-lag probe looks for, and the text it looks for.
const PROBED: (usize, &str) = (1, "I've got a cat.");
/// How long one reply may take before the turn counts as an error.
const TURN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the end of a session may take: the server answers `stopped` once the session's memory writes are done.
const STOP_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the probe waits for a memory to appear.
const LAG_TIMEOUT: Duration = Duration::from_secs(120);
/// Every this many sessions one is probed for write lag (probing every session would itself load the store).
const PROBE_EVERY: usize = 10;
/// How often the probe looks.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// Results at one level of concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct LoadLevel {
    /// Sessions at once.
    pub sessions: usize,
    /// Turns answered.
    pub turns: usize,
    /// Turn latency as the client sees it, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 95th percentile of first turns alone: they read the caller's memories.
    pub first_turn_p95_ms: f64,
    /// Sessions that failed (connect, protocol, a turn past the timeout).
    pub errors: usize,
    /// Probed memories not found within the probe's two minutes.
    pub write_lag_timeouts: usize,
    /// Server resident memory after the level, MiB.
    pub rss_mib: f64,
    /// Time from the probed turn's reply until what the caller said is in their memories, p50 / p95, ms.
    pub write_lag_p50_ms: f64,
    /// 95th percentile of the write lag.
    pub write_lag_p95_ms: f64,
    /// Wall time of the level, seconds.
    pub wall_s: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// One row per level.
    pub levels: Vec<LoadLevel>,
}

/// One session's outcome: its turn latencies and the probed turn's write lag.
struct SessionResult {
    turns: Vec<Duration>,
    /// `Some(None)`: probed, and the memory did not appear in time.
    lag: Option<Option<Duration>>,
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, msg: &ClientMessage) -> Result<(), String> {
    let text = serde_json::to_string(msg).map_err(|e| e.to_string())?;
    ws.send(Message::Text(text.into())).await.map_err(|e| format!("send: {e}"))
}

async fn receive(ws: &mut Ws) -> Result<ServerMessage, String> {
    receive_within(ws, TURN_TIMEOUT).await
}

async fn receive_within(ws: &mut Ws, timeout: Duration) -> Result<ServerMessage, String> {
    loop {
        let msg = tokio::time::timeout(timeout, ws.next())
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))?
            .ok_or("the server closed the connection")?
            .map_err(|e| format!("receive: {e}"))?;
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).map_err(|e| format!("bad server message: {e}"));
        }
    }
}

/// One caller: connect, start, say the script, and (when `probe`) wait until the probed utterance is a memory.
async fn session(state: &AppState, url: &str, user: String, probe: bool) -> Result<SessionResult, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.map_err(|e| format!("connect: {e}"))?;
    send(&mut ws, &ClientMessage::Start { user_id: user.clone(), session_id: None }).await?;
    match receive(&mut ws).await? {
        ServerMessage::Started { .. } => {}
        other => return Err(format!("expected started, got {other:?}")),
    }
    let mut turns = Vec::with_capacity(SCRIPT.len());
    let mut probed_at = None;
    for (i, line) in SCRIPT.iter().enumerate() {
        let sent = Instant::now();
        send(&mut ws, &ClientMessage::Text { text: (*line).into() }).await?;
        match receive(&mut ws).await? {
            ServerMessage::Reply { .. } => turns.push(sent.elapsed()),
            other => return Err(format!("expected a reply, got {other:?}")),
        }
        if i == PROBED.0 {
            probed_at = Some(Instant::now());
        }
    }
    let lag = match (probed_at, state.agent.memory.as_ref()) {
        (Some(at), Some(memory)) if probe => {
            let scope = Scope::user(user.as_str());
            Some(loop {
                let items =
                    memory.memory().get_all(&scope, &MetadataFilter::All, 100).await.map_err(|e| e.to_string())?;
                if items.iter().any(|m| m.memory == PROBED.1) {
                    break Some(at.elapsed());
                }
                if at.elapsed() > LAG_TIMEOUT {
                    break None;
                }
                tokio::time::sleep(PROBE_INTERVAL).await;
            })
        }
        _ => None,
    };
    send(&mut ws, &ClientMessage::Stop).await?;
    loop {
        if let ServerMessage::Stopped { .. } = receive_within(&mut ws, STOP_TIMEOUT).await? {
            break;
        }
    }
    Ok(SessionResult { turns, lag })
}

/// Runs each level against a loopback server over `state` (which should hold a fresh store).
pub async fn load_bench(state: AppState, levels: &[usize]) -> std::io::Result<LoadReport> {
    let server = LoopbackServer::start(state.clone(), Duration::from_secs(30)).await?;
    let url = format!("ws://{}/ws/chat", server.addr);
    let mut report = LoadReport { levels: Vec::new() };
    for (round, &n) in levels.iter().enumerate() {
        let started = Instant::now();
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (state, url) = (state.clone(), url.clone());
                // Every session a new caller, so each is a first call with its own memory.
                let user = format!("+1555{round:02}{i:05}");
                tokio::spawn(async move { session(&state, &url, user, i % PROBE_EVERY == 0).await })
            })
            .collect();
        let mut turns = Vec::new();
        let mut first_turns = Vec::new();
        let mut lags = Vec::new();
        let mut errors = 0;
        let mut lag_timeouts = 0;
        for task in tasks {
            match task.await {
                Ok(Ok(r)) => {
                    first_turns.extend(r.turns.first().copied());
                    turns.extend(r.turns);
                    match r.lag {
                        Some(Some(lag)) => lags.push(lag),
                        Some(None) => lag_timeouts += 1,
                        None => {}
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "load session failed");
                    errors += 1;
                }
                Err(_) => errors += 1,
            }
        }
        turns.sort();
        first_turns.sort();
        lags.sort();
        report.levels.push(LoadLevel {
            sessions: n,
            turns: turns.len(),
            p50_ms: percentile(&turns, 50),
            p95_ms: percentile(&turns, 95),
            p99_ms: percentile(&turns, 99),
            first_turn_p95_ms: percentile(&first_turns, 95),
            errors,
            write_lag_timeouts: lag_timeouts,
            rss_mib: resident_mib().0,
            write_lag_p50_ms: percentile(&lags, 50),
            write_lag_p95_ms: percentile(&lags, 95),
            wall_s: started.elapsed().as_secs_f64(),
        });
    }
    server.stop().await?;
    Ok(report)
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "load: real /ws/chat clients on loopback, {} turns each", SCRIPT.len())?;
        writeln!(
            f,
            "{:>9} {:>7} {:>10} {:>10} {:>10} {:>15} {:>7} {:>9} {:>16} {:>7}",
            "sessions",
            "turns",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "1st turn p95",
            "errors",
            "RSS MiB",
            "write lag p95",
            "wall s"
        )?;
        for l in &self.levels {
            let lag = if l.write_lag_timeouts > 0 {
                format!("> {} s ({} late)", LAG_TIMEOUT.as_secs(), l.write_lag_timeouts)
            } else {
                format!("{:.0} ms", l.write_lag_p95_ms)
            };
            writeln!(
                f,
                "{:>9} {:>7} {:>10.1} {:>10.1} {:>10.1} {:>15.1} {:>7} {:>9.0} {:>16} {:>7.1}",
                l.sessions,
                l.turns,
                l.p50_ms,
                l.p95_ms,
                l.p99_ms,
                l.first_turn_p95_ms,
                l.errors,
                l.rss_mib,
                lag,
                l.wall_s
            )?;
        }
        Ok(())
    }
}
