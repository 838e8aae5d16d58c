//! The server: one axum router over both transports (the memory API and the realtime routes) and the web page, the
//! request limits, graceful shutdown, and a loopback server for benchmarks and tests.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use super::AppState;
use crate::{api, realtime};

/// The web page: talk to the agent, watch its state, inspect a caller's memories. Plain HTML and JavaScript,
/// compiled into the binary; no build step, nothing fetched from the network.
const WEB_PAGE: &str = include_str!("../../web/index.html");

/// Largest HTTP request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// The router with every route and limit.
pub fn router(state: AppState) -> Router {
    // The text websocket sits behind the API key like the memory API; Twilio's routes check Twilio's signature.
    let chat =
        realtime::chat_routes().route_layer(axum::middleware::from_fn_with_state(state.clone(), api::require_key));
    Router::new()
        .route("/", get(|| async { axum::response::Html(WEB_PAGE) }))
        .route("/healthz", get(|| async { "ok" }))
        .merge(chat)
        .merge(api::routes(state.clone()))
        .merge(realtime::phone_routes())
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(axum::middleware::map_response(close_after_refused_body))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A body refused for its size is answered before it is read, and the server then drops the connection rather than
/// read the rest. `Connection: close` tells the client so: without it, a client that had already written the whole
/// body kept the connection for its next request, which then failed with the connection closed under it.
async fn close_after_refused_body(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
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
