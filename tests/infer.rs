//! Inferred adds with the real local chat models (Qwen2.5-0.5B where quality matters, SmolLM2-135M where speed
//! does), the real MiniLM embedder and a real LanceDB folder.

mod common;

use tokio::sync::OnceCell;
use tourdesk::inference::{LocalChatModel, LocalChatOptions};
use tourdesk::memory::{AddInput, AddRequest, EventKind, Memory, Message, MetadataFilter, Scope};

static QWEN: OnceCell<LocalChatModel> = OnceCell::const_new();

async fn qwen() -> &'static LocalChatModel {
    QWEN.get_or_init(|| async {
        let path = common::gguf_path("qwen2.5-0.5b");
        LocalChatModel::spawn(path, "qwen2.5-0.5b".into(), LocalChatOptions::default()).await.unwrap()
    })
    .await
}

fn said(text: &str, user: &str) -> AddRequest {
    AddRequest {
        input: AddInput::Text(text.into()),
        scope: Scope::user(user),
        actor: Some("test".into()),
        ..Default::default()
    }
}

async fn texts(memory: &Memory, user: &str) -> Vec<String> {
    let all = memory.get_all(&Scope::user(user), &MetadataFilter::All, 100).await.unwrap();
    all.into_iter().map(|m| m.memory.to_lowercase()).collect()
}

#[tokio::test]
async fn dana_rehomes_the_dog_and_her_memories_say_so() {
    let (memory, _dir) = common::fresh_memory().await;
    let chat = qwen().await;
    let first = memory.add_inferred(said("My name is Dana and I have a golden retriever", "dana"), chat).await.unwrap();
    assert!(first.fallback.is_none(), "{first:?}");
    assert!(first.results.iter().all(|e| e.event == EventKind::Add), "{first:?}");
    let stored = texts(&memory, "dana").await;
    assert!(stored.iter().any(|t| t.contains("dana")), "{stored:?}");
    let dog = first.results.iter().find(|e| e.memory.to_lowercase().contains("retriever")).expect("the dog is stored");

    let second = memory.add_inferred(said("We had to rehome the dog last month", "dana"), chat).await.unwrap();
    let changed = second
        .results
        .iter()
        .find(|e| e.id == dog.id && matches!(e.event, EventKind::Update | EventKind::Delete))
        .unwrap_or_else(|| panic!("the dog memory is updated or deleted: {second:?}"));
    // History shows the dog memory's ADD, then its UPDATE or DELETE.
    let history = memory.history(&dog.id).await.unwrap();
    let events: Vec<EventKind> = history.iter().map(|h| h.event).collect();
    assert_eq!(events, vec![EventKind::Add, changed.event]);
    // Nothing left says Dana has a dog.
    let stored = texts(&memory, "dana").await;
    assert!(
        !stored.iter().any(|t| (t.contains("has a") || t.contains("have a"))
            && (t.contains("dog") || t.contains("retriever"))
            && !t.contains("no longer")),
        "{stored:?}"
    );
    assert!(stored.iter().any(|t| t.contains("dana")), "the name survives: {stored:?}");
}

#[tokio::test]
async fn the_same_fact_twice_leaves_one_memory() {
    let (memory, _dir) = common::fresh_memory().await;
    let chat = qwen().await;
    for _ in 0..2 {
        memory.add_inferred(said("My name is Dana and I have a golden retriever", "dana2"), chat).await.unwrap();
    }
    let again = memory.add_inferred(said("Just so you know, I have a golden retriever.", "dana2"), chat).await.unwrap();
    assert!(again.results.iter().all(|e| e.event != EventKind::Delete), "{again:?}");
    let stored = texts(&memory, "dana2").await;
    assert_eq!(stored.iter().filter(|t| t.contains("retriever")).count(), 1, "{stored:?}");
    assert_eq!(stored.iter().filter(|t| t.contains("dana")).count(), 1, "{stored:?}");
}

#[tokio::test]
async fn smollm2_inferred_add_never_loses_what_the_caller_said() {
    let (memory, _dir) = common::fresh_memory().await;
    let path = common::gguf_path("smollm2-135m");
    let chat = LocalChatModel::spawn(path, "smollm2-135m".into(), LocalChatOptions::default()).await.unwrap();
    let exchange = AddInput::Messages(vec![
        Message { role: "user".into(), content: "I need a one-bedroom near the river, moving in March.".into() },
        Message { role: "assistant".into(), content: "Riverview Lofts has one-bedrooms from March.".into() },
    ]);
    let req = AddRequest { input: exchange, scope: Scope::user("sol"), ..Default::default() };
    let out = memory.add_inferred(req, &chat).await.unwrap();
    let stored = texts(&memory, "sol").await;
    assert!(!stored.is_empty());
    match &out.fallback {
        // The small model failed: the exchange itself is stored, word for word.
        Some(_) => assert!(stored.iter().any(|t| t.contains("one-bedroom near the river")), "{stored:?}"),
        // It succeeded: every fact it kept is grounded in what was said and was stored.
        None => assert_eq!(out.results.iter().filter(|e| e.event == EventKind::Add).count(), stored.len()),
    }
}
