//! A small stand-in for Twilio's REST API on 127.0.0.1 (the far side of the network): it records each call-update
//! request and answers with the status the test sets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One call-update request as Twilio would receive it.
#[derive(Debug, Clone)]
pub struct Update {
    pub account_sid: String,
    pub call_sid: String,
    pub authorization: Option<String>,
    pub form: HashMap<String, String>,
}

#[derive(Default)]
struct Seen {
    status: u16,
    updates: Vec<Update>,
}

/// A running fake.
pub struct FakeTwilio {
    /// Base URL to configure (`http://127.0.0.1:PORT`).
    pub api_url: String,
    seen: Arc<Mutex<Seen>>,
}

async fn update_call(
    State(seen): State<Arc<Mutex<Seen>>>,
    Path((account_sid, call)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let mut seen = seen.lock().unwrap();
    let call_sid = call.trim_end_matches(".json").to_string();
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    seen.updates.push(Update { account_sid, call_sid: call_sid.clone(), authorization, form });
    let status = StatusCode::from_u16(seen.status).unwrap();
    let body = if status.is_success() {
        json!({"sid": call_sid, "status": "in-progress"})
    } else {
        json!({"code": 20404, "message": "The requested resource was not found", "status": seen.status})
    };
    (status, Json(body))
}

impl FakeTwilio {
    /// Starts the fake; every update is answered with `status`.
    pub async fn start(status: u16) -> Self {
        let seen = Arc::new(Mutex::new(Seen { status, updates: Vec::new() }));
        let app = Router::new()
            .route("/2010-04-01/Accounts/{account}/Calls/{call}", post(update_call))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { api_url: format!("http://{addr}"), seen }
    }

    /// Every update received so far.
    pub fn updates(&self) -> Vec<Update> {
        self.seen.lock().unwrap().updates.clone()
    }
}
