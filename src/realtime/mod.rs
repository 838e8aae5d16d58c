//! The realtime server: an axum router with `/healthz`, `/ws/chat` (a JSON text protocol for laptop demos and
//! tests), Twilio's `/incoming-call` webhook and `/media-stream` phone calls, and a graceful shutdown that lets live
//! turns finish and flushes every session's memory writes.

mod chat_ws;
mod incoming_call;
mod media_stream;
mod shutdown;
pub mod twilio;
pub mod voice;

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub use chat_ws::{ClientMessage, ServerMessage};
pub use shutdown::Shutdown;
pub use voice::Voice;

use crate::agent::AgentConfig;
use twilio::SignatureCheck;

/// The web page: talk to the agent, watch its state, inspect a caller's memories. Plain HTML and JavaScript,
/// compiled into the binary; no build step, nothing fetched from the network.
const WEB_PAGE: &str = include_str!("../../web/index.html");

/// Largest websocket message accepted; a larger one closes the connection with "message too big".
pub const MAX_WS_MESSAGE: usize = 64 * 1024;
/// Largest HTTP request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Everything a session's planner needs; each session gets its own planner.
    pub agent: AgentConfig,
    /// Tells sessions to wrap up, and counts them.
    pub shutdown: Shutdown,
    /// Speech for phone calls; `None` refuses `/media-stream`.
    pub voice: Option<Voice>,
    /// The server's public URL as Twilio reaches it (`https://…`); the Host header when `None`.
    pub public_url: Option<String>,
    /// Checks `X-Twilio-Signature` on `/incoming-call` and `/media-stream`; `None` accepts every request.
    pub twilio_signature: Option<SignatureCheck>,
    /// The chat model for inferred memory adds through the API; `None` stores messages as they are.
    pub chat: Option<std::sync::Arc<dyn crate::inference::ChatModel>>,
    /// Required on the memory API and `/ws/chat` when set.
    pub api_key: Option<crate::inference::ApiKey>,
}

impl AppState {
    /// A server for `agent` with no voice and no signature check.
    pub fn new(agent: AgentConfig) -> Self {
        Self {
            agent,
            shutdown: Shutdown::default(),
            voice: None,
            public_url: None,
            twilio_signature: None,
            chat: None,
            api_key: None,
        }
    }
}

/// `https://host` as Twilio reached this server: the configured public URL, else the Host header (behind a
/// proxy, `X-Forwarded-Proto` says whether it was https).
fn public_base(state: &AppState, headers: &HeaderMap) -> Option<String> {
    if let Some(url) = &state.public_url {
        return Some(url.trim_end_matches('/').to_string());
    }
    let host = headers.get(axum::http::header::HOST)?.to_str().ok()?;
    let proto = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("https");
    Some(format!("{proto}://{host}"))
}

/// Whether a Twilio request to `path` is signed right (always true when no auth token is set). Twilio signs
/// websocket upgrades with the `wss://` URL.
fn signature_ok(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    params: &[(String, String)],
    websocket: bool,
) -> bool {
    let Some(check) = &state.twilio_signature else {
        return true;
    };
    let (Some(base), Some(signature)) =
        (public_base(state, headers), headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()))
    else {
        return false;
    };
    let base = if websocket { incoming_call::websocket_scheme(&base) } else { base };
    check.verify(&format!("{base}{path}"), params, signature)
}
/// The router with every route and limit.
pub fn router(state: AppState) -> Router {
    let chat = Router::new()
        .route("/ws/chat", get(chat_ws::upgrade))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::api::require_key));
    Router::new()
        .route("/", get(|| async { axum::response::Html(WEB_PAGE) }))
        .route("/healthz", get(|| async { "ok" }))
        .merge(chat)
        .merge(crate::api::routes(state.clone()))
        .route("/incoming-call", post(incoming_call::incoming_call))
        .route("/media-stream", get(media_stream::upgrade))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `state` on `listener` until `stop` resolves, then stops accepting, tells live sessions to finish their
/// turn and flush memory, and waits up to `grace` for them.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let signal = {
        let shutdown = shutdown.clone();
        async move {
            stop.await;
            tracing::info!("shutting down: finishing live turns and flushing memory");
            shutdown.trigger();
        }
    };
    axum::serve(listener, app).with_graceful_shutdown(signal).await?;
    if !shutdown.wait_idle(grace).await {
        tracing::warn!(live = shutdown.live(), "sessions still open after the grace period");
    }
    Ok(())
}

/// A server on a free loopback port, running on this runtime: what the benchmarks and tests talk to. Dropping it
/// shuts it down as [`LoopbackServer::stop`] does, without waiting.
pub struct LoopbackServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LoopbackServer {
    /// Binds 127.0.0.1 on a free port and serves `state` (see [`serve`] for `grace`).
    pub async fn start(state: AppState, grace: Duration) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(serve(
            listener,
            state,
            async {
                let _ = stopped.await;
            },
            grace,
        ));
        Ok(Self { addr, stop: Some(stop), done })
    }

    /// Starts the graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down gracefully and waits until the server has stopped.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.begin_shutdown();
        (&mut self.done).await.map_err(std::io::Error::other)?
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn os_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
