//! Two `tourdesk serve` processes on one memory store, as a user deploys them: both write at once, one is killed
//! with SIGKILL in the middle of its writes, and every memory either server acknowledged is found through the one
//! left, which goes on writing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A server process and the address it listens on.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    /// Starts `tourdesk serve` on a free loopback port over the store in `data`.
    fn start(data: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tourdesk"))
            .args(["serve", "--listen", "127.0.0.1:0", "--no-voice", "--no-infer"])
            .env("TOURDESK_DATA", data)
            .env("TOURDESK_MODELS", common::models_dir())
            .env("TOURDESK_CONFIG", data.join("absent.toml"))
            .env_remove("TOURDESK_API_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tourdesk runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split(';').next().unwrap_or_default().trim().to_string());
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(120)).expect("the server says where it listens");
        Self { child, base: format!("http://{addr}") }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Adds `text` for `user` through `base`; the id the server acknowledged, if it did.
async fn add(http: &reqwest::Client, base: &str, user: &str, text: &str) -> Option<String> {
    let body = json!({"messages": [{"role": "user", "content": text}], "user_id": user, "infer": false});
    let resp = http.post(format!("{base}/memories")).json(&body).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let value: Value = resp.json().await.ok()?;
    value["results"][0]["id"].as_str().map(str::to_string)
}

/// Every memory text of `user`, read through `base`.
async fn texts(http: &reqwest::Client, base: &str, user: &str) -> Vec<String> {
    let value: Value = http
        .get(format!("{base}/memories"))
        .query(&[("user_id", user)])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    value["results"].as_array().unwrap().iter().map(|m| m["memory"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_write_loses_no_acknowledged_memory_and_the_other_goes_on() {
    let data = tempfile::tempdir().unwrap();
    let doomed = Serve::start(data.path());
    let survivor = Serve::start(data.path());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();

    // Eight writers per server, each adding its own numbered facts one after another, until told to stop.
    let stop_at = Instant::now() + Duration::from_secs(4);
    let mut writers = Vec::new();
    for (server, base) in [("a", doomed.base.clone()), ("b", survivor.base.clone())] {
        for w in 0..8 {
            let (http, base) = (http.clone(), base.clone());
            writers.push(tokio::spawn(async move {
                let user = format!("+1555777{w:04}");
                let mut acked = Vec::new();
                for i in 0.. {
                    if Instant::now() > stop_at {
                        break;
                    }
                    let text = format!("Fact {i} from writer {w} on server {server}");
                    match add(&http, &base, &user, &text).await {
                        Some(_) => acked.push((user.clone(), text)),
                        None if server == "a" => break,
                        None => panic!("the surviving server refused a write: {text}"),
                    }
                }
                acked
            }));
        }
    }
    // Mid-way, server A dies without a chance to finish anything.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut doomed = doomed;
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();

    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(writer.await.unwrap());
    }
    let from_a = acked.iter().filter(|(_, t)| t.ends_with("server a")).count();
    let from_b = acked.len() - from_a;
    assert!(from_a > 0 && from_b > 0, "both servers acknowledged writes ({from_a} + {from_b})");

    // The survivor sees the other process's commits within its read-consistency interval (1 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut users: Vec<&String> = acked.iter().map(|(u, _)| u).collect();
    users.sort();
    users.dedup();
    let mut found = std::collections::HashSet::new();
    for user in users {
        for text in texts(&http, &survivor.base, user).await {
            found.insert((user.clone(), text));
        }
    }
    let lost: Vec<_> = acked.iter().filter(|a| !found.contains(*a)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged memories lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );

    // And it goes on: a new memory is stored and found.
    assert!(add(&http, &survivor.base, "+15557770100", "Written after the crash").await.is_some());
    assert_eq!(texts(&http, &survivor.base, "+15557770100").await, ["Written after the crash"]);
}
