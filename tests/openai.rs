//! The OpenAI backend over real HTTP against an OpenAI-compatible server started on 127.0.0.1: chat, embeddings,
//! retries, timeouts, bad answers, and an inferred add whose "model" lies about ids or answers garbage.

mod common;

use std::time::Duration;

use common::fake_openai::{FakeOpenAi, Reply};
use serde::Deserialize;
use serde_json::json;
use tourdesk::config::{Backend, Overrides, Settings};
use tourdesk::inference::{
    complete_json, ApiKey, ChatMessage, ChatModel, ChatRequest, Embedder, EmbedderHandle, OpenAiChat, OpenAiClient,
    OpenAiConfig, OpenAiEmbedder, Role,
};
use tourdesk::memory::{AddInput, AddRequest, EventKind, Memory, MemoryConfig, MetadataFilter, Scope};

fn config(base_url: &str) -> OpenAiConfig {
    OpenAiConfig {
        base_url: base_url.to_string(),
        api_key: Some(ApiKey("sk-test".into())),
        chat_model: "gpt-test".into(),
        embedding_model: "embed-test".into(),
        timeout: Duration::from_secs(5),
        retries: 2,
        backoff: Duration::from_millis(10),
    }
}

fn chat_model(server: &FakeOpenAi) -> OpenAiChat {
    OpenAiChat::new(OpenAiClient::new(config(&server.base_url)).unwrap())
}

fn hello() -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::new(Role::System, "Be brief."), ChatMessage::new(Role::User, "Hi")], 20)
}

#[tokio::test]
async fn chat_sends_model_messages_and_key_and_reads_the_answer() {
    let server = FakeOpenAi::start().await;
    server.chat([Reply::Chat("  Hello there.  ".into())]);
    let model = chat_model(&server);
    assert_eq!(model.model_id(), "openai:gpt-test");
    let answer = model.complete(hello()).await.unwrap();
    assert_eq!(answer.text, "Hello there.");
    assert_eq!((answer.prompt_tokens, answer.completion_tokens), (12, 5));
    let seen = server.seen("chat");
    assert_eq!(seen.len(), 1);
    let (auth, body) = &seen[0];
    assert_eq!(auth.as_deref(), Some("Bearer sk-test"));
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    );
    assert_eq!(body["max_tokens"], 20);
    assert!(body.get("response_format").is_none());

    #[derive(Deserialize)]
    struct Facts {
        facts: Vec<String>,
    }
    server.chat([Reply::Chat("```json\n{\"facts\": [\"Has a cat\"]}\n```".into())]);
    let (facts, _) = complete_json::<Facts>(&model, hello()).await.unwrap();
    assert_eq!(facts.facts, vec!["Has a cat"]);
    assert_eq!(server.seen("chat")[1].1["response_format"], json!({"type": "json_object"}));
}

#[tokio::test]
async fn embeddings_come_back_in_order_normalised_with_their_dimension() {
    let server = FakeOpenAi::start().await;
    let cfg = config(&server.base_url);
    let embedder = tokio::task::spawn_blocking(move || OpenAiEmbedder::connect(cfg)).await.unwrap().unwrap();
    assert_eq!(embedder.dim(), 8);
    assert_eq!(embedder.model_id(), "openai:embed-test");
    let texts = vec!["a".to_string(), "a much longer text".to_string(), "zz".to_string()];
    let (vectors, texts) = tokio::task::spawn_blocking(move || (embedder.embed(&texts).unwrap(), texts)).await.unwrap();
    assert_eq!(vectors.len(), 3);
    for v in &vectors {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    // The server answered in reverse order; the vectors follow the inputs.
    assert_ne!(vectors[0], vectors[1]);
    let (_, body) = server.seen("embeddings").pop().unwrap();
    assert_eq!(body["input"], json!(texts));
    assert_eq!(body["model"], "embed-test");
}

#[tokio::test]
async fn a_429_is_retried_and_then_succeeds() {
    let server = FakeOpenAi::start().await;
    server.chat([Reply::TooMany, Reply::Chat("ok".into())]);
    let answer = chat_model(&server).complete(hello()).await.unwrap();
    assert_eq!(answer.text, "ok");
    assert_eq!(server.seen("chat").len(), 2);
}

#[tokio::test]
async fn a_500_forever_gives_a_clear_error_after_the_retry_budget() {
    let server = FakeOpenAi::start().await;
    server.chat([Reply::Json(500, json!({"error": {"message": "The server had an error"}}))]);
    let err = chat_model(&server).complete(hello()).await.unwrap_err().to_string();
    assert!(err.contains("500") && err.contains("The server had an error"), "{err}");
    assert!(err.contains("gave up after 3 attempts"), "{err}");
    assert_eq!(server.seen("chat").len(), 3);
}

#[tokio::test]
async fn a_slow_server_times_out_with_a_clear_error() {
    let server = FakeOpenAi::start().await;
    server.chat([Reply::Slow(Duration::from_secs(3), Box::new(Reply::Chat("late".into())))]);
    let cfg = OpenAiConfig { timeout: Duration::from_millis(200), retries: 1, ..config(&server.base_url) };
    let started = std::time::Instant::now();
    let err = OpenAiChat::new(OpenAiClient::new(cfg).unwrap()).complete(hello()).await.unwrap_err().to_string();
    assert!(err.contains("did not answer within 200ms"), "{err}");
    assert!(err.contains("gave up after 2 attempts"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn garbage_answers_are_errors_not_panics() {
    let server = FakeOpenAi::start().await;
    let model = chat_model(&server);
    server.chat([Reply::Raw(200, "<html>not json</html>".into())]);
    let err = model.complete(hello()).await.unwrap_err().to_string();
    assert!(err.contains("not JSON"), "{err}");
    server.chat([Reply::Json(200, json!({"choices": []}))]);
    let err = model.complete(hello()).await.unwrap_err().to_string();
    assert!(err.contains("unexpected chat completion response"), "{err}");
    // JSON mode: one retry with the mistake shown, then a clear error.
    server.chat([Reply::Chat("{\"facts\": oops".into())]);
    #[derive(Deserialize, Debug)]
    struct Facts {
        #[allow(dead_code)]
        facts: Vec<String>,
    }
    let before = server.seen("chat").len();
    let err = complete_json::<Facts>(&model, hello()).await.unwrap_err().to_string();
    assert!(err.contains("malformed"), "{err}");
    assert_eq!(server.seen("chat").len() - before, 2);
    // A wrong key is not retried and says what to check.
    server.chat([Reply::Json(401, json!({"error": {"message": "Incorrect API key provided"}}))]);
    let before = server.seen("chat").len();
    let err = model.complete(hello()).await.unwrap_err().to_string();
    assert!(err.contains("401") && err.contains("OPENAI_API_KEY"), "{err}");
    assert_eq!(server.seen("chat").len() - before, 1);
}

#[tokio::test]
async fn a_dead_endpoint_fails_at_start_with_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = OpenAiConfig { retries: 1, ..config(&format!("http://127.0.0.1:{port}/v1")) };
    let err = EmbedderHandle::spawn(move || OpenAiEmbedder::connect(cfg)).await.unwrap_err().to_string();
    assert!(err.contains("cannot connect"), "{err}");
}

async fn memory_on(server: &FakeOpenAi, dir: &tempfile::TempDir) -> Memory {
    let cfg = config(&server.base_url);
    let embedder = EmbedderHandle::spawn(move || OpenAiEmbedder::connect(cfg)).await.unwrap();
    Memory::open(&MemoryConfig::new(dir.path().to_str().unwrap()), embedder).await.unwrap()
}

fn said(text: &str, user: &str) -> AddRequest {
    AddRequest { input: AddInput::Text(text.into()), scope: Scope::user(user), ..Default::default() }
}

#[tokio::test]
async fn inferred_add_rejects_ids_the_model_invents() {
    let server = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let memory = memory_on(&server, &dir).await;
    let dog = memory.add(said("Has a dog", "dana")).await.unwrap().remove(0);
    // Extraction, then a decision naming memory 7 when only memory 0 was shown.
    server.chat([
        Reply::Chat(r#"{"facts": ["Has a dog named Rex"]}"#.into()),
        Reply::Chat(r#"{"event": "DELETE", "id": 7, "text": ""}"#.into()),
    ]);
    let chat = chat_model(&server);
    let out = memory.add_inferred(said("My dog is called Rex", "dana"), &chat).await.unwrap();
    assert_eq!(out.rejected_ids, vec!["7"]);
    assert_eq!(out.results.len(), 1);
    assert_eq!(out.results[0].event, EventKind::Add);
    assert_eq!(out.results[0].memory, "Has a dog named Rex");
    // The memory the model could not name correctly is untouched.
    assert_eq!(memory.get(&dog.id).await.unwrap().memory, "Has a dog");
    let decision_prompt = &server.seen("chat")[1].1["messages"];
    let last = decision_prompt.as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    assert!(last.contains("0: Has a dog") && !last.contains(&dog.id), "ids are shown as small numbers: {last}");
}

#[tokio::test]
async fn inferred_add_keeps_everything_when_the_model_fails() {
    let server = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let memory = memory_on(&server, &dir).await;
    let chat = chat_model(&server);
    server.chat([Reply::Chat("I think the user likes dogs!".into())]);
    let out = memory.add_inferred(said("I'd like a ground-floor unit", "sam"), &chat).await.unwrap();
    assert!(out.fallback.as_deref().unwrap().contains("fact extraction failed"), "{out:?}");
    assert_eq!(out.results[0].event, EventKind::Add);
    assert_eq!(
        memory.get_all(&Scope::user("sam"), &MetadataFilter::All, 10).await.unwrap()[0].memory,
        "I'd like a ground-floor unit"
    );
    // A dead model: the exchange is still stored.
    server.chat([Reply::Json(503, json!({"error": {"message": "overloaded"}}))]);
    let out = memory.add_inferred(said("I work from home", "sam"), &chat).await.unwrap();
    assert!(out.fallback.as_deref().unwrap().contains("503"), "{out:?}");
    assert_eq!(memory.get_all(&Scope::user("sam"), &MetadataFilter::All, 10).await.unwrap().len(), 2);
}

#[test]
fn backend_selection_follows_settings_and_key() {
    let load = |o: Overrides| Settings::load(std::path::Path::new("/nonexistent/tourdesk.toml"), &o).unwrap();
    assert_eq!(load(Overrides::default()).resolved_backend().unwrap(), Backend::Local);
    let auto = Overrides { backend: Some(Backend::Auto), ..Default::default() };
    assert_eq!(load(auto.clone()).resolved_backend().unwrap(), Backend::Local);
    let keyed = Overrides { openai_api_key: Some("sk-x".into()), ..auto };
    assert_eq!(load(keyed).resolved_backend().unwrap(), Backend::Openai);
    let keyless = Overrides { backend: Some(Backend::Openai), ..Default::default() };
    assert!(load(keyless.clone()).resolved_backend().unwrap_err().to_string().contains("OPENAI_API_KEY"));
    let ollama = Overrides { openai_base_url: Some("http://127.0.0.1:11434/v1".into()), ..keyless };
    let settings = load(ollama);
    assert_eq!(settings.resolved_backend().unwrap(), Backend::Openai);
    assert!(settings.openai_config().unwrap().api_key.is_none());
    assert!(!format!("{:?}", load(Overrides { openai_api_key: Some("sk-secret".into()), ..Default::default() }))
        .contains("sk-secret"));
}

#[tokio::test]
async fn local_embeddings_beside_a_remote_chat_model_through_the_composition_root() {
    // The case mem0 users configure as `embedder` + `llm`: a chat-only server (llama.cpp's serves per-token vectors
    // for a chat model) for chat, MiniLM on this machine for embeddings.
    let server = FakeOpenAi::start().await;
    server.chat([Reply::Chat("Hi from the server.".into())]);
    let over = Overrides {
        backend: Some(Backend::Openai),
        openai_base_url: Some(server.base_url.clone()),
        models: Some(common::models_dir()),
        embedder: tourdesk::config::EmbedderOverrides { backend: Some(Backend::Local), ..Default::default() },
        ..Default::default()
    };
    let settings = Settings::load(std::path::Path::new("/nonexistent/tourdesk.toml"), &over).unwrap();
    let embedder = tourdesk::engine::start_embedder(&settings).await.unwrap();
    assert_eq!((embedder.model_id(), embedder.dim()), (common::embedder().await.model_id(), 384));
    let chat = tourdesk::engine::start_chat(&settings).await.unwrap();
    assert_eq!(chat.complete(hello()).await.unwrap().text, "Hi from the server.");
    assert!(server.seen("embeddings").is_empty(), "no embedding went to the chat server");
}
