//! mem0's official Python client (`mem0ai`'s `MemoryClient`, installed by `scripts/setup.sh`), unmodified, against
//! the real server on loopback: ping, add, search with 2.x filters, listings with pages and expiry, get, update,
//! history, delete, delete-all, entities and reset.

mod common;

use std::time::Duration;

use serde_json::Value;
use tourdesk::agent::MemoryService;
use tourdesk::app::{AppState, LoopbackServer};
use tourdesk::inference::ApiKey;

const KEY: &str = "sdk-test-key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mem0_python_client_works_unmodified() {
    let (memory, dir) = common::fresh_memory().await;
    let mut state = AppState::new(common::agent_in(&dir, MemoryService::new(memory)).await);
    state.api_key = Some(ApiKey(KEY.into()));
    let server = LoopbackServer::start(state, Duration::from_secs(5)).await.unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/mem0_sdk.py");
    let home = tempfile::tempdir().unwrap();
    let host = format!("http://{}", server.addr);
    let run = tokio::process::Command::new(common::test_python())
        .args([script, &host, KEY])
        // No telemetry from a test (it would try to reach PostHog), and the client's config file in a scratch home.
        .env("MEM0_TELEMETRY", "False")
        .env("MEM0_DIR", home.path())
        .output()
        .await
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "the mem0 client failed:\n{stderr}");
    let out: Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));

    assert_eq!((out["org_id"].as_str(), out["project_id"].as_str()), (Some("tourdesk"), Some("default")));
    assert_eq!(out["add"]["results"][0]["event"], "ADD");

    // 2.x search: the id inside filters, top_k, and a score breakdown.
    let hits = out["search"]["results"].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits[0]["memory"].as_str().unwrap().contains("golden retriever"), "{hits:?}");
    let details = &hits[0]["score_details"];
    for part in ["vector", "keyword", "time"] {
        assert!(details[part].is_number(), "{details}");
    }
    assert!(hits.iter().all(|h| h["user_id"] == "+15551230001"));
    // An AND of the id and a metadata condition.
    let and = out["search_and"]["results"].as_array().unwrap();
    assert_eq!(and.len(), 1);
    assert_eq!(and[0]["metadata"]["topic"], "pets");

    // Listings: the expired memory only when asked for; pages.
    assert_eq!(out["get_all"]["count"], 2);
    assert_eq!(out["get_all_expired"]["count"], 3);
    assert_eq!(out["page"]["results"].as_array().unwrap().len(), 1);
    assert!(out["page"]["previous"].is_string());

    assert!(out["get"]["memory"].as_str().unwrap().contains("Biscuit"));
    assert_eq!(out["update"]["result"]["event"], "UPDATE");
    let history = out["history"].as_array().unwrap();
    assert_eq!(history.iter().map(|h| h["event"].as_str().unwrap()).collect::<Vec<_>>(), ["ADD", "UPDATE"]);
    let users: Vec<&str> =
        out["users"]["results"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(users, ["+15551230001", "+15559990000"]);
    assert_eq!(out["missing"], "MemoryNotFoundError");

    assert!(out["delete"]["message"].is_string());
    assert_eq!(out["delete_all"]["deleted"], 2, "the two left of Dana's three (one deleted before)");
    assert_eq!(out["after"]["count"], 0);
    assert_eq!(out["after_reset"]["results"], Value::Array(vec![]));
    assert!(out["bad_key"].as_str().unwrap().contains("API key"), "{}", out["bad_key"]);
    server.stop().await.unwrap();
}
