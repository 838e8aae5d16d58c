//! The realtime transports: `/ws/chat` (a JSON text protocol for laptop demos and tests), Twilio's `/incoming-call`
//! webhook and `/media-stream` phone calls. Sessions watch the application's shutdown so live turns finish and every
//! session's memory writes are flushed.

mod chat_ws;
mod incoming_call;
mod media_stream;
pub mod transfer;
pub mod twilio;
pub mod voice;
pub mod voice_session;

use axum::http::{HeaderMap, Uri};
use axum::routing::{get, post};
use axum::Router;

pub use chat_ws::{ClientMessage, ServerMessage};

use crate::app::AppState;
use twilio::SignatureCheck;

/// Largest websocket message accepted; a larger one closes the connection with "message too big".
pub const MAX_WS_MESSAGE: usize = 64 * 1024;

/// `/ws/chat`, the text websocket (the server puts it behind the API key).
pub fn chat_routes() -> Router<AppState> {
    Router::new().route("/ws/chat", get(chat_ws::upgrade))
}

/// Twilio's `/incoming-call` webhook and `/media-stream` calls (each checks Twilio's signature).
pub fn phone_routes() -> Router<AppState> {
    Router::new()
        .route("/incoming-call", post(incoming_call::incoming_call))
        .route("/media-stream", get(media_stream::upgrade))
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

/// Whether a Twilio request for `uri` (its path and query string) is signed right (always true when no auth token is
/// set). Twilio signs websocket upgrades with the `wss://` URL.
fn signature_ok(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    params: &[(String, String)],
    websocket: bool,
) -> bool {
    let Some(token) = &state.twilio_auth_token else {
        return true;
    };
    let check = SignatureCheck::new(token.clone());
    let (Some(base), Some(signature)) =
        (public_base(state, headers), headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()))
    else {
        return false;
    };
    let base = if websocket { incoming_call::websocket_scheme(&base) } else { base };
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    check.verify(&format!("{base}{path}"), params, signature)
}
