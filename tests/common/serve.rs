//! Real `tourdesk serve` processes for the multi-server tests, and the REST calls those tests make.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// A server process and the address it listens on.
pub struct Serve {
    pub child: Child,
    pub base: String,
}

impl Serve {
    /// Starts `tourdesk serve` on a free loopback port over the memory store at `data` (a folder or an `s3://`
    /// URI), with its config, recordings and outbox under `scratch` and `env` added to its environment.
    pub fn start(data: &str, scratch: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tourdesk"))
            .args(["serve", "--listen", "127.0.0.1:0", "--no-voice", "--no-infer"])
            .env("TOURDESK_DATA", data)
            .env("TOURDESK_MODELS", super::models_dir())
            .env("TOURDESK_CONFIG", scratch.join("absent.toml"))
            .env("TOURDESK_RECORDINGS", scratch.join("recordings"))
            .env("TOURDESK_OUTBOX", scratch.join("outbox"))
            .env_remove("TOURDESK_API_KEY")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tourdesk runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut said = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(Ok(rest.split(';').next().unwrap_or_default().trim().to_string()));
                }
                said.push(line);
                said.drain(..said.len().saturating_sub(20));
            }
            // The process ended (before listening, if the address was not sent yet).
            let _ = tx.send(Err(said.join("\n")));
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the server says where it listens")
            .unwrap_or_else(|said| panic!("the server exited before listening:\n{said}"));
        Self { child, base: format!("http://{addr}") }
    }

    /// The `/ws/chat` URL of this server.
    pub fn chat_url(&self) -> String {
        format!("{}/ws/chat", self.base.replacen("http://", "ws://", 1))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Adds `text` for `user` through `base`; the id the server acknowledged, if it did.
pub async fn add(http: &reqwest::Client, base: &str, user: &str, text: &str) -> Option<String> {
    let body = json!({"messages": [{"role": "user", "content": text}], "user_id": user, "infer": false});
    let resp = http.post(format!("{base}/memories")).json(&body).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let value: Value = resp.json().await.ok()?;
    value["results"][0]["id"].as_str().map(str::to_string)
}

/// Every memory text of `user`, read through `base`.
pub async fn texts(http: &reqwest::Client, base: &str, user: &str) -> Vec<String> {
    let value = get_json(http.get(format!("{base}/memories")).query(&[("user_id", user)])).await;
    value["results"].as_array().unwrap().iter().map(|m| m["memory"].as_str().unwrap().to_string()).collect()
}

/// Sends `request`, which must succeed, and reads its JSON answer.
pub async fn get_json(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().error_for_status().unwrap().json().await.unwrap()
}
