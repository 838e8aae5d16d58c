//! The realtime server: an axum router with `/healthz` and `/ws/chat` (a JSON text protocol for laptop demos and
//! tests), and a graceful shutdown that lets live turns finish and flushes every session's memory writes.

mod chat_ws;
mod shutdown;

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub use chat_ws::{ClientMessage, ServerMessage};
pub use shutdown::Shutdown;

use crate::agent::AgentConfig;

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
}

/// The router with every route and limit.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/ws/chat", get(chat_ws::upgrade))
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
