//! `POST /incoming-call`: Twilio's voice webhook. Answers with TwiML that connects the call to `/media-stream` and
//! passes the caller's number as a stream parameter.

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;

use super::twilio::normalize_caller;
use super::{public_base, signature_ok, AppState};

/// Escapes text for an XML attribute.
fn xml_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&apos;".into(),
            c => c.to_string(),
        })
        .collect()
}

/// The webhook: checks the signature (when a Twilio auth token is set), then returns the TwiML.
pub async fn incoming_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    if !signature_ok(&state, &headers, &uri, &params, false) {
        return (StatusCode::FORBIDDEN, "invalid or missing X-Twilio-Signature").into_response();
    }
    let Some(base) = public_base(&state, &headers) else {
        return (StatusCode::BAD_REQUEST, "no Host header: cannot tell Twilio where the media stream is")
            .into_response();
    };
    let stream_url = format!("{}/media-stream", websocket_scheme(&base));
    let from = params.iter().find(|(k, _)| k == "From").map(|(_, v)| v.as_str()).unwrap_or_default();
    // A withheld number stays empty: the call gets an anonymous caller id and no one else's memories.
    let caller = normalize_caller(from).unwrap_or_default();
    let twiml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Connect><Stream url=\"{}\"><Parameter name=\"caller\" value=\"{}\"/></Stream></Connect></Response>\n",
        xml_escape(&stream_url),
        xml_escape(&caller)
    );
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], twiml).into_response()
}

/// `https://host` → `wss://host` (and `http` → `ws` for local testing).
pub fn websocket_scheme(base: &str) -> String {
    if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    }
}
