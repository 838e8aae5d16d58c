//! The memory REST API over real HTTP on loopback: the real server, the real embedder, real LanceDB.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake_openai::{FakeOpenAi, Reply};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tourdesk::agent::MemoryService;
use tourdesk::app::{AppState, LoopbackServer};
use tourdesk::inference::{ApiKey, ChatModel, OpenAiChat, OpenAiClient, OpenAiConfig};

const KEY: &str = "test-api-key-123";

struct Api {
    base: String,
    http: reqwest::Client,
    _running: LoopbackServer,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start(key: Option<&str>) -> Self {
        Self::start_with(key, None).await
    }

    /// With `chat` as the chat model for inferred adds.
    async fn start_with(key: Option<&str>, chat: Option<Arc<dyn ChatModel>>) -> Self {
        let (memory, dir) = common::fresh_memory().await;
        let mut state = AppState::new(common::agent_in(&dir, MemoryService::new(memory)).await);
        state.api_key = key.map(|k| ApiKey(k.into()));
        state.chat = chat;
        let running = LoopbackServer::start(state, Duration::from_secs(5)).await.unwrap();
        Self { base: format!("http://{}", running.addr), http: reqwest::Client::new(), _running: running, _dir: dir }
    }

    /// A request with the key as a bearer token.
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(KEY)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

use reqwest::Method as M;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_with_a_mem0_shaped_body() {
    let api = Api::start(Some(KEY)).await;
    // Exactly what mem0's Python client sends to a self-hosted server (infer omitted: mem0 infers by default; this
    // server has no chat model loaded, so it stores the messages and says so).
    let (status, added) = api
        .call(
            M::POST,
            "/memories",
            Some(json!({
                "messages": [
                    {"role": "user", "content": "I'm Dana and I have a golden retriever named Biscuit."},
                    {"role": "assistant", "content": "Biscuit is welcome at Hudson 360."}
                ],
                "user_id": "+15551230001",
                "metadata": {"source": "phone", "turn": 3}
            })),
        )
        .await;
    assert_eq!(status, 200, "{added}");
    let results = added["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r["event"] == "ADD" && r["id"].is_string()));
    assert!(added["fallback"].as_str().unwrap().contains("--no-infer"));
    let dog_id = results[0]["id"].as_str().unwrap().to_string();

    let (status, listed) = api.call(M::GET, "/memories?user_id=%2B15551230001", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["results"].as_array().unwrap().len(), 2);

    let (status, one) = api.call(M::GET, &format!("/memories/{dog_id}"), None).await;
    assert_eq!(status, 200);
    assert!(one["memory"].as_str().unwrap().contains("golden retriever"));
    assert_eq!(one["user_id"], "+15551230001");
    assert_eq!(one["metadata"]["source"], "phone");

    let (status, found) = api
        .call(
            M::POST,
            "/search",
            Some(json!({"query": "what pet does she have?", "user_id": "+15551230001", "limit": 1,
                        "filters": {"source": "phone"}})),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["results"][0]["id"], dog_id.as_str());
    assert!(found["results"][0]["score"].as_f64().unwrap() > 0.2);

    let (status, updated) = api
        .call(M::PUT, &format!("/memories/{dog_id}"), Some(json!({"text": "Had a golden retriever; rehomed it."})))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["result"]["event"], "UPDATE");
    let (status, history) = api.call(M::GET, &format!("/memories/{dog_id}/history"), None).await;
    assert_eq!(status, 200);
    let events: Vec<&str> = history.as_array().unwrap().iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["ADD", "UPDATE"]);

    let (status, _) = api.call(M::DELETE, &format!("/memories/{dog_id}"), None).await;
    assert_eq!(status, 200);
    let (status, gone) = api.call(M::GET, &format!("/memories/{dog_id}"), None).await;
    assert_eq!(status, 404);
    assert!(gone["detail"].as_str().unwrap().contains(&dog_id));

    let (status, deleted) = api.call(M::DELETE, "/memories?user_id=%2B15551230001", None).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["deleted"], 1);
    api.call(M::POST, "/memories", Some(json!({"messages": [{"role": "user", "content": "x"}], "agent_id": "a"})))
        .await;
    let (status, _) = api.call(M::POST, "/reset", None).await;
    assert_eq!(status, 200);
    let (_, after) = api.call(M::GET, "/memories?agent_id=a", None).await;
    assert_eq!(after["results"], json!([]));

    // The OpenAPI document describes every endpoint, with schemas generated from the code.
    let doc: Value = reqwest::get(format!("{}/openapi.json", api.base)).await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, method) in [
        ("/memories", "post"),
        ("/memories", "get"),
        ("/memories", "delete"),
        ("/memories/{memory_id}", "get"),
        ("/memories/{memory_id}", "put"),
        ("/memories/{memory_id}", "delete"),
        ("/memories/{memory_id}/history", "get"),
        ("/search", "post"),
        ("/reset", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} documented");
    }
    assert!(doc["components"]["schemas"]["CreateMemory"]["properties"]["messages"].is_object());
    assert!(doc["components"]["schemas"]["MemoryItem"]["properties"]["memory"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_required_in_any_of_its_forms() {
    let api = Api::start(Some(KEY)).await;
    let url = format!("{}/memories?user_id=u1", api.base);
    let none = api.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let body: Value = none.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("API key"));
    assert_eq!(api.http.get(&url).bearer_auth("wrong").send().await.unwrap().status(), 401);
    assert_eq!(api.http.get(&url).bearer_auth(KEY).send().await.unwrap().status(), 200);
    assert_eq!(api.http.get(&url).header("X-API-Key", KEY).send().await.unwrap().status(), 200);
    let token = api.http.get(&url).header("Authorization", format!("Token {KEY}")).send().await.unwrap();
    assert_eq!(token.status(), 200, "mem0 clients send `Token <key>`");
    for (method, path) in [(M::POST, "/search"), (M::POST, "/reset"), (M::DELETE, "/memories?user_id=u1")] {
        let r = api.http.request(method, format!("{}{path}", api.base)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    // The chat websocket too (browsers pass the key as a query parameter).
    let ws = format!("{}/ws/chat", api.base.replace("http", "ws"));
    assert!(tokio_tungstenite::connect_async(&ws).await.is_err());
    assert!(tokio_tungstenite::connect_async(format!("{ws}?api_key={KEY}")).await.is_ok());
    // Health and the API description stay open.
    assert_eq!(reqwest::get(format!("{}/healthz", api.base)).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(format!("{}/openapi.json", api.base)).await.unwrap().status(), 200);

    // Without a configured key every request is served (the CLI then refuses non-loopback addresses).
    let open = Api::start(None).await;
    assert_eq!(reqwest::get(format!("{}/memories?user_id=u1", open.base)).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bodies_get_clear_4xx_errors_and_change_nothing() {
    let api = Api::start(Some(KEY)).await;
    let cases = [
        (M::POST, "/memories", Some("{not json"), 400, "invalid request body"),
        (M::POST, "/memories", Some(r#"{"messages": 7, "user_id": "u"}"#), 422, "invalid request body"),
        (
            M::POST,
            "/memories",
            Some(r#"{"messages": "hi", "user_id": "u", "expiration_date": "soon"}"#),
            400,
            "expiration_date",
        ),
        (
            M::POST,
            "/search",
            Some(r#"{"query": "x", "filters": {"OR": [{"user_id": "u"}, {"user_id": "v"}]}}"#),
            400,
            "OR",
        ),
        (M::POST, "/search", Some(r#"{"query": "x", "user_id": "u", "filters": {"user_id": "v"}}"#), 400, "differs"),
        (M::POST, "/search", Some(r#"{"query": "x", "user_id": "u", "top_k": 3, "limit": 4}"#), 400, "top_k"),
        (M::POST, "/memories", Some(r#"{"messages": [{"role": "user", "content": "hi"}]}"#), 400, "user_id"),
        (M::POST, "/memories", Some(r#"{"messages": [], "user_id": "u"}"#), 400, "messages is empty"),
        (M::POST, "/search", Some(r#"{"query": "x"}"#), 400, "user_id"),
        (M::POST, "/search", Some(r#"{"query": "x", "user_id": "u", "limit": 0}"#), 400, "limit"),
        (
            M::POST,
            "/search",
            Some(r#"{"query": "x", "user_id": "u", "filters": {"k": {"regex": ".*"}}}"#),
            400,
            "regex",
        ),
        (M::PUT, "/memories/nope", Some(r#"{"text": "x"}"#), 400, "nope"),
        (M::PUT, "/memories/00000000-0000-4000-8000-000000000000", Some(r#"{"text": "x"}"#), 404, "00000000"),
        (M::DELETE, "/memories", None, 400, "user_id"),
        (M::GET, "/memories/00000000-0000-4000-8000-000000000000/history", None, 404, "00000000"),
    ];
    for (method, path, body, status, needle) in cases {
        let mut r = api.req(method.clone(), path).header("content-type", "application/json");
        if let Some(b) = body {
            r = r.body(b);
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{method} {path} {body:?}");
        let body: Value = resp.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{method} {path}: {detail}");
        assert!(!detail.contains("panicked") && !detail.contains("src/"), "no internals: {detail}");
    }
    // A hostile filter value is data, never query text.
    let (status, found) = api
        .call(M::POST, "/search", Some(json!({"query": "x", "user_id": "u", "filters": {"k": "a' OR 1=1 --"}})))
        .await;
    assert_eq!((status, found["results"].clone()), (StatusCode::OK, json!([])));
    // Oversized bodies are refused before parsing.
    let big = json!({"messages": [{"role": "user", "content": "a".repeat(200_000)}], "user_id": "u"});
    let resp = api.req(M::POST, "/memories").json(&big).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    // The rest of the body is never read, so the connection is not kept for the client's next request.
    assert_eq!(resp.headers()["connection"], "close");
    let (_, listed) = api.call(M::GET, "/memories?user_id=u", None).await;
    assert_eq!(listed["results"], json!([]), "nothing was stored by the bad requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_access_across_scopes() {
    let api = Api::start(Some(KEY)).await;
    let (_, added) = api
        .call(M::POST, "/memories", Some(json!({"messages": [{"role": "user", "content": "Alice's secret: the cat is named Mochi"}], "user_id": "alice", "infer": false})))
        .await;
    let id = added["results"][0]["id"].as_str().unwrap().to_string();
    // Bob's scope sees nothing of Alice's, by list, search, id, history, update or delete.
    let (_, listed) = api.call(M::GET, "/memories?user_id=bob", None).await;
    assert_eq!(listed["results"], json!([]));
    let (_, found) = api.call(M::POST, "/search", Some(json!({"query": "cat name", "user_id": "bob"}))).await;
    assert_eq!(found["results"], json!([]));
    for (method, path, body) in [
        (M::GET, format!("/memories/{id}?user_id=bob"), None),
        (M::GET, format!("/memories/{id}/history?user_id=bob"), None),
        (M::PUT, format!("/memories/{id}?user_id=bob"), Some(json!({"text": "hacked"}))),
        (M::DELETE, format!("/memories/{id}?user_id=bob"), None),
    ] {
        let (status, _) = api.call(method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    // The same through mem0 2.x bodies and the platform's paths.
    let bob = json!({"user_id": "bob"});
    let (_, found) = api.call(M::POST, "/search", Some(json!({"query": "cat name", "filters": bob}))).await;
    assert_eq!(found["results"], json!([]));
    let (_, found) = api.call(M::POST, "/v3/memories/search/", Some(json!({"query": "Mochi", "filters": bob}))).await;
    assert_eq!(found["results"], json!([]));
    let (_, listed) = api.call(M::POST, "/v3/memories/", Some(json!({"filters": {"AND": [bob]}}))).await;
    assert_eq!((listed["count"].clone(), listed["results"].clone()), (json!(0), json!([])));
    for (method, path, body) in [
        (M::GET, format!("/v1/memories/{id}/?user_id=bob"), None),
        (M::GET, format!("/v1/memories/{id}/history/?user_id=bob"), None),
        (M::PUT, format!("/v1/memories/{id}/?user_id=bob"), Some(json!({"text": "hacked"}))),
        (M::DELETE, format!("/v1/memories/{id}/?user_id=bob"), None),
    ] {
        let (status, _) = api.call(method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    let (status, _) = api.call(M::DELETE, "/v1/memories/?user_id=bob", None).await;
    assert_eq!(status, 200);
    let (status, _) = api.call(M::DELETE, "/v2/entities/user/bob/", None).await;
    assert_eq!(status, 200);
    let (status, _) = api.call(M::DELETE, "/memories?user_id=bob", None).await;
    assert_eq!(status, 200);
    let (status, mine) = api.call(M::GET, &format!("/memories/{id}?user_id=alice"), None).await;
    assert_eq!(status, 200);
    assert!(mine["memory"].as_str().unwrap().contains("Mochi"), "untouched: {mine}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mem0_request_without_infer_extracts_facts_when_a_chat_model_is_loaded() {
    // The chat model is an OpenAI-compatible server on loopback, scripted with the extraction answer.
    let fake = FakeOpenAi::start().await;
    fake.chat([Reply::Chat(r#"{"facts": ["Has a golden retriever named Biscuit"]}"#.into())]);
    let config = OpenAiConfig {
        base_url: fake.base_url.clone(),
        api_key: Some(ApiKey("sk-test".into())),
        chat_model: "gpt-test".into(),
        embedding_model: "unused".into(),
        timeout: Duration::from_secs(5),
        retries: 0,
        backoff: Duration::from_millis(10),
    };
    let chat: Arc<dyn ChatModel> = Arc::new(OpenAiChat::new(OpenAiClient::new(config).unwrap()));
    let api = Api::start_with(Some(KEY), Some(chat)).await;
    let (status, added) = api
        .call(
            M::POST,
            "/memories",
            Some(json!({"messages": [{"role": "user", "content": "I have a golden retriever named Biscuit."}],
                        "user_id": "+15551230002"})),
        )
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["facts"], json!(["Has a golden retriever named Biscuit"]));
    assert_eq!(added["results"][0]["event"], "ADD");
    assert_eq!(added["results"][0]["memory"], "Has a golden retriever named Biscuit");
    assert!(added["fallback"].is_null(), "{added}");
    assert_eq!(
        fake.seen("chat").len(),
        1,
        "one extraction call; a fact with no related memory is added without asking"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mem0_2_shapes_ids_in_filters_top_k_explain_and_expiry() {
    let api = Api::start(Some(KEY)).await;
    for (text, expires) in [("I have a parrot named Kiwi", None), ("I am moving in 2001", Some("2001-01-01"))] {
        let mut body = json!({"messages": text, "filters": {"user_id": "u2"}, "infer": false});
        if let Some(date) = expires {
            body["expiration_date"] = json!(date);
        }
        let (status, added) = api.call(M::POST, "/memories", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{added}");
    }
    let body = json!({"query": "Kiwi", "filters": {"AND": [{"user_id": "u2"}]}, "top_k": 5, "explain": true});
    let (status, found) = api.call(M::POST, "/search", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let results = found["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "the expired memory is left out: {found}");
    assert_eq!(results[0]["memory"], "I have a parrot named Kiwi");
    let parts = &results[0]["score_details"];
    assert!(parts["keyword"].as_f64().unwrap() > 0.0 && parts["similarity"].is_number(), "{parts}");
    let body = json!({"query": "moving", "user_id": "u2", "show_expired": true});
    let (_, found) = api.call(M::POST, "/search", Some(body)).await;
    assert_eq!(found["results"].as_array().unwrap().len(), 2);
    assert!(found["results"].as_array().unwrap().iter().any(|r| r["expiration_date"].is_string()));
    let (_, listed) = api.call(M::GET, "/memories?user_id=u2", None).await;
    assert_eq!(listed["results"].as_array().unwrap().len(), 1);
    let (_, listed) = api.call(M::GET, "/memories?user_id=u2&show_expired=true", None).await;
    assert_eq!(listed["results"].as_array().unwrap().len(), 2);

    // An update may change only the expiration date; null removes it.
    let id = listed["results"].as_array().unwrap().iter().find(|r| r["expiration_date"].is_string()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = api.call(M::PUT, &format!("/memories/{id}"), Some(json!({"expiration_date": null}))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = api.call(M::GET, "/memories?user_id=u2", None).await;
    assert_eq!(listed["results"].as_array().unwrap().len(), 2);
    let (_, one) = api.call(M::GET, &format!("/memories/{id}"), None).await;
    assert_eq!(one["memory"], "I am moving in 2001", "the text is unchanged");

    // Deleting a scope forgets it, and says what went from disk.
    let (status, gone) = api.call(M::DELETE, "/memories?user_id=u2", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gone["deleted"], 2);
    assert_eq!(gone["report"]["history_entries"], 3);
    let (status, _) = api.call(M::GET, &format!("/memories/{id}/history"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "history went too");
}
