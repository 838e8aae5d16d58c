//! The memory engine end to end on the real MiniLM model and real LanceDB folders.

mod common;

use serde_json::{json, Map, Value};
use tourdesk::inference::{Embedder, EmbedderHandle, InferenceError, MiniLmEmbedder};
use tourdesk::memory::{
    AddInput, AddRequest, EventKind, Memory, MemoryConfig, MemoryError, Message, MetadataFilter, Scope, SearchRequest,
};

fn meta(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

async fn remember(memory: &Memory, scope: &Scope, text: &str) -> String {
    remember_with(memory, scope, text, Map::new()).await
}

async fn remember_with(memory: &Memory, scope: &Scope, text: &str, metadata: Map<String, Value>) -> String {
    let req = AddRequest { input: AddInput::Text(text.into()), scope: scope.clone(), metadata, actor: None };
    let events = memory.add(req).await.expect("add");
    assert_eq!(events.len(), 1);
    events[0].id.clone()
}

async fn search(memory: &Memory, scope: Scope, query: &str) -> Vec<(String, f32)> {
    memory
        .search(&SearchRequest::new(query, scope))
        .await
        .expect("search")
        .into_iter()
        .map(|h| (h.item.memory, h.score))
        .collect()
}

#[tokio::test]
async fn embeddings_match_the_sentence_transformers_reference() {
    // Reference from ../shared/MODELS.md: sentence-transformers 6.2 on PyTorch, checked against ONNX Runtime.
    let embedder = common::embedder().await;
    assert_eq!(embedder.dim(), 384);
    let v = embedder.embed_one("Does Hudson 360 allow cats?").await.unwrap();
    let expected = [0.093117, -0.009493, 0.009471, -0.007711, -0.069797, 0.01823, -0.052395, -0.133116];
    for (got, want) in v.iter().zip(expected) {
        assert!((got - want).abs() < 1e-4, "got {:?}, want {expected:?}", &v[..8]);
    }
    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    // Batching with longer neighbours (padding) must not change a text's vector.
    let batch = embedder
        .embed(vec![
            "Does Hudson 360 allow cats?".into(),
            "A much longer sentence about parking fees, deposits and the gym hours at Riverview Lofts.".into(),
        ])
        .await
        .unwrap();
    let cos: f32 = batch[0].iter().zip(&v).map(|(a, b)| a * b).sum();
    assert!(cos > 0.9999, "padding changed the embedding: cos {cos}");
}

#[tokio::test]
async fn paraphrases_score_higher_than_unrelated_text() {
    let (memory, _dir) = common::fresh_memory().await;
    let dana = Scope::user("+15550000001");
    remember(&memory, &dana, "I have a golden retriever named Max").await;
    remember(&memory, &dana, "My budget is three thousand dollars a month").await;
    remember(&memory, &dana, "I need to move in by the first of March").await;
    let hits = search(&memory, dana.clone(), "Does she own a dog?").await;
    assert_eq!(hits[0].0, "I have a golden retriever named Max", "{hits:?}");
    assert!(hits[0].1 > hits[1].1 + 0.1, "paraphrase should clearly win: {hits:?}");
    let hits = search(&memory, dana, "How much rent can they afford?").await;
    assert_eq!(hits[0].0, "My budget is three thousand dollars a month", "{hits:?}");
}

#[tokio::test]
async fn a_users_search_never_returns_another_users_memories() {
    let (memory, _dir) = common::fresh_memory().await;
    let (a, b) = (Scope::user("caller-a"), Scope::user("caller-b"));
    remember(&memory, &a, "Has a cat named Miso").await;
    remember(&memory, &b, "Has a cat named Pepper").await;
    remember(&memory, &b, "Allergic to cats").await;
    let hits = memory.search(&SearchRequest::new("cat", a.clone())).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].item.scope.user_id.as_deref(), Some("caller-a"));
    let all = memory.get_all(&b, &MetadataFilter::All, 100).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|i| i.scope.user_id.as_deref() == Some("caller-b")));
    // Narrower scopes: a session sees only its own memories.
    let call1 = a.clone().with_run("call-1");
    remember(&memory, &call1, "Asked about parking").await;
    assert_eq!(memory.get_all(&call1, &MetadataFilter::All, 100).await.unwrap().len(), 1);
    assert_eq!(memory.get_all(&a, &MetadataFilter::All, 100).await.unwrap().len(), 2);
}

#[tokio::test]
async fn memories_survive_closing_and_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let scope = Scope::user("returning-caller");
    let id = {
        let memory = common::open_at(&dir).await;
        remember(&memory, &scope, "Prefers a virtual tour on weekday mornings").await
    };
    let memory = common::open_at(&dir).await;
    assert_eq!(memory.get(&id).await.unwrap().memory, "Prefers a virtual tour on weekday mornings");
    let hits = search(&memory, scope, "what kind of tour do they want").await;
    assert_eq!(hits[0].0, "Prefers a virtual tour on weekday mornings");
    assert_eq!(memory.history(&id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn update_re_embeds_and_history_lists_events_in_order() {
    let (memory, _dir) = common::fresh_memory().await;
    let scope = Scope::user("updater");
    let id = remember(&memory, &scope, "Has a cat").await;
    remember(&memory, &scope, "Wants a two-bedroom apartment").await;
    let event = memory.update(&id, "Has a pet parrot that talks", None, Some("test")).await.unwrap();
    assert_eq!(event.previous_memory.as_deref(), Some("Has a cat"));
    let hits = search(&memory, scope.clone(), "bird").await;
    assert_eq!(hits[0].0, "Has a pet parrot that talks", "search must use the new vector: {hits:?}");
    assert!(hits.iter().all(|(text, _)| text != "Has a cat"));
    assert_eq!(memory.get(&id).await.unwrap().memory, "Has a pet parrot that talks");

    memory.update(&id, "Has a parrot and a cat", None, None).await.unwrap();
    memory.delete(&id, None).await.unwrap();
    let history = memory.history(&id).await.unwrap();
    let events: Vec<EventKind> = history.iter().map(|h| h.event).collect();
    assert_eq!(events, [EventKind::Add, EventKind::Update, EventKind::Update, EventKind::Delete]);
    assert_eq!(history[1].old_memory.as_deref(), Some("Has a cat"));
    assert_eq!(history[1].new_memory.as_deref(), Some("Has a pet parrot that talks"));
    assert_eq!(history[1].actor.as_deref(), Some("test"));
    assert!(history[3].is_deleted && history[3].new_memory.is_none());
    assert!(history.windows(2).all(|w| w[0].created_at <= w[1].created_at));
}

#[tokio::test]
async fn delete_and_forget_leave_nothing_searchable() {
    let (memory, _dir) = common::fresh_memory().await;
    let (gone, stays) = (Scope::user("forget-me"), Scope::user("keep-me"));
    let deleted = remember(&memory, &gone, "Has a golden retriever").await;
    let other = remember(&memory, &gone, "Budget is $2,500").await;
    remember(&memory, &stays, "Has a golden retriever too").await;

    memory.delete(&deleted, None).await.unwrap();
    assert!(matches!(memory.get(&deleted).await, Err(MemoryError::NotFound(_))));
    assert!(search(&memory, gone.clone(), "dog").await.iter().all(|(t, _)| t != "Has a golden retriever"));

    assert_eq!(memory.forget(&gone).await.unwrap(), 1);
    assert!(search(&memory, gone.clone(), "dog").await.is_empty());
    assert!(memory.get_all(&gone, &MetadataFilter::All, 100).await.unwrap().is_empty());
    assert!(memory.history(&deleted).await.unwrap().is_empty(), "forget removes history too");
    assert!(memory.history(&other).await.unwrap().is_empty());
    assert_eq!(search(&memory, stays, "dog").await.len(), 1, "another user's memories are untouched");

    let scope = Scope::user("bulk");
    for text in ["one fact", "another fact", "a third fact"] {
        remember(&memory, &scope, text).await;
    }
    assert_eq!(memory.delete_all(&scope, None).await.unwrap(), 3);
    assert!(search(&memory, scope, "fact").await.is_empty());
}

#[tokio::test]
async fn exact_duplicates_in_a_scope_are_stored_once() {
    let (memory, _dir) = common::fresh_memory().await;
    let scope = Scope::user("dup");
    let first = remember(&memory, &scope, "Has a cat").await;
    let again = memory
        .add(AddRequest {
            input: AddInput::Text("Has a cat".into()),
            scope: scope.clone(),
            metadata: Map::new(),
            actor: None,
        })
        .await
        .unwrap();
    assert_eq!(again[0].event, EventKind::None);
    assert_eq!(again[0].id, first);
    let elsewhere = remember(&memory, &Scope::user("dup-2"), "Has a cat").await;
    assert_ne!(elsewhere, first);
    // Duplicates inside one batch of messages too.
    let messages = vec![
        Message { role: "user".into(), content: "Hello".into() },
        Message { role: "system".into(), content: "You are a leasing agent".into() },
        Message { role: "user".into(), content: "Hello".into() },
    ];
    let events = memory
        .add(AddRequest {
            input: AddInput::Messages(messages),
            scope: scope.clone(),
            metadata: Map::new(),
            actor: None,
        })
        .await
        .unwrap();
    assert_eq!(events.iter().map(|e| e.event).collect::<Vec<_>>(), [EventKind::Add, EventKind::None]);
    assert_eq!(memory.get_all(&scope, &MetadataFilter::All, 100).await.unwrap().len(), 2);
}

#[tokio::test]
async fn exact_and_vector_index_search_paths_agree() {
    // Scopes up to `exact_search_rows` are scored in Rust; larger ones go to LanceDB's vector search.
    let dir = tempfile::tempdir().unwrap();
    let exact = common::open_at(&dir).await;
    let scope = Scope::user("both-paths");
    for (i, text) in
        ["Has a golden retriever", "Budget is $3,000", "Wants Hudson 360", "Moving in March"].iter().enumerate()
    {
        remember_with(&exact, &scope, text, meta(json!({"n": i}))).await;
    }
    let config = MemoryConfig { exact_search_rows: 1, ..MemoryConfig::new(dir.path().to_str().unwrap()) };
    let knn = common::open_with(config).await;
    for query in ["dog", "how much rent", "which building"] {
        let mut req = SearchRequest::new(query, scope.clone());
        req.limit = 3;
        req.filters = MetadataFilter::parse(&json!({"n": {"lt": 3}})).unwrap();
        let a = exact.search(&req).await.unwrap();
        let b = knn.search(&req).await.unwrap();
        assert_eq!(
            a.iter().map(|h| &h.item.id).collect::<Vec<_>>(),
            b.iter().map(|h| &h.item.id).collect::<Vec<_>>(),
            "{query}"
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x.score - y.score).abs() < 1e-4, "{query}: {} vs {}", x.score, y.score);
        }
        assert!(a.iter().all(|h| h.item.metadata["n"].as_i64().unwrap() < 3));
    }
}

#[tokio::test]
async fn metadata_filters_narrow_search_and_listing() {
    let (memory, _dir) = common::fresh_memory().await;
    let scope = Scope::user("filters");
    remember_with(&memory, &scope, "Wants Hudson 360", meta(json!({"slot": "property", "call": 1}))).await;
    remember_with(&memory, &scope, "Wants two bedrooms", meta(json!({"slot": "bedrooms", "call": 2}))).await;
    remember_with(&memory, &scope, "Has a cat", meta(json!({"slot": "pets", "call": 3}))).await;
    let mut req = SearchRequest::new("what apartment", scope.clone());
    req.filters = MetadataFilter::parse(&json!({"call": {"gte": 2}})).unwrap();
    let hits = memory.search(&req).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.item.metadata["call"].as_i64().unwrap() >= 2));
    let listed = memory.get_all(&scope, &MetadataFilter::parse(&json!({"slot": "pets"})).unwrap(), 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].memory, "Has a cat");
    req.threshold = Some(0.99);
    assert!(memory.search(&req).await.unwrap().is_empty(), "threshold drops weak matches");
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_touches_nothing() {
    let (memory, _dir) = common::fresh_memory().await;
    let victim = Scope::user("victim");
    let kept = remember(&memory, &victim, "Has a cat").await;
    let add = |text: String, scope: Scope| AddRequest {
        input: AddInput::Text(text),
        scope,
        metadata: Map::new(),
        actor: None,
    };

    let err = memory.add(add("   ".into(), victim.clone())).await.unwrap_err();
    assert!(matches!(err, MemoryError::Invalid(_)) && err.to_string().contains("empty"), "{err}");
    let err = memory.add(add("x".repeat(1 << 20), victim.clone())).await.unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    let err = memory.add(add("no owner".into(), Scope::default())).await.unwrap_err();
    assert!(err.to_string().contains("user_id"), "{err}");

    let unknown = uuid::Uuid::new_v4().to_string();
    assert!(matches!(memory.get(&unknown).await, Err(MemoryError::NotFound(_))));
    assert!(matches!(memory.delete(&unknown, None).await, Err(MemoryError::NotFound(_))));
    assert!(matches!(memory.update(&unknown, "x", None, None).await, Err(MemoryError::NotFound(_))));
    assert!(matches!(memory.get("1 OR 1=1").await, Err(MemoryError::Invalid(_))));
    assert!(matches!(memory.history("../../etc/passwd").await, Err(MemoryError::Invalid(_))));

    // SQL in a scope is just a user id nobody has.
    let hostile = Scope::user("x' OR '1'='1");
    assert!(memory.search(&SearchRequest::new("cat", hostile.clone())).await.unwrap().is_empty());
    assert_eq!(memory.delete_all(&hostile, None).await.unwrap(), 0);
    assert_eq!(memory.forget(&hostile).await.unwrap(), 0);
    let hostile_id = remember(&memory, &hostile, "Stored under a strange id").await;
    assert_eq!(memory.get(&hostile_id).await.unwrap().scope, hostile);

    // Hostile metadata keys are plain lookups.
    let mut req = SearchRequest::new("cat", victim.clone());
    req.filters = MetadataFilter::parse(&json!({"a' OR '1'='1": "x", "); DROP TABLE memories; --": 1})).unwrap();
    assert!(memory.search(&req).await.unwrap().is_empty());
    assert!(MetadataFilter::parse(&json!({"slot": {"$where": "1"}})).is_err());
    let mut bad_limit = SearchRequest::new("cat", victim.clone());
    bad_limit.limit = 0;
    assert!(matches!(memory.search(&bad_limit).await, Err(MemoryError::Invalid(_))));

    assert_eq!(memory.get(&kept).await.unwrap().memory, "Has a cat", "nothing else was touched");
    assert_eq!(memory.count().await.unwrap(), 2);
}

/// A second, real embedder: MiniLM cut to 128 dimensions (and renormalised).
struct Truncated(MiniLmEmbedder);

impl Embedder for Truncated {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, InferenceError> {
        Ok(self
            .0
            .embed(texts)?
            .into_iter()
            .map(|mut v| {
                v.truncate(128);
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter_mut().for_each(|x| *x /= n);
                v
            })
            .collect())
    }
    fn dim(&self) -> usize {
        128
    }
    fn model_id(&self) -> &str {
        "minilm-first-128"
    }
}

#[tokio::test]
async fn opening_a_table_with_another_embedder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = MemoryConfig { table: Some("memories".into()), ..MemoryConfig::new(dir.path().to_str().unwrap()) };
    let memory = Memory::open(&config, common::embedder().await).await.unwrap();
    remember(&memory, &Scope::user("u"), "Has a cat").await;
    let model = common::minilm_dir();
    let other = EmbedderHandle::spawn(move || MiniLmEmbedder::load(&model).map(Truncated)).await.unwrap();
    let err = Memory::open(&config, other.clone()).await.err().expect("mismatch is refused");
    assert!(matches!(err, MemoryError::EmbedderMismatch { .. }), "{err}");
    assert!(err.to_string().contains("minilm-first-128"), "{err}");
    // With its own table (the default), the other embedder works beside the first.
    let own = MemoryConfig { table: None, ..config };
    let second = Memory::open(&own, other).await.unwrap();
    assert!(second.search(&SearchRequest::new("cat", Scope::user("u"))).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_missing_model_folder_names_the_fix() {
    let empty = tempfile::tempdir().unwrap();
    let err = tourdesk::models::ModelStore::new(empty.path()).unwrap().resolve("minilm").unwrap_err();
    assert!(err.to_string().contains("tourdesk models fetch minilm"), "{err}");
    let settings = tourdesk::config::Settings { models: empty.path().into(), ..Default::default() };
    let err = tourdesk::engine::open_memory(&settings).await.err().expect("no model, no store");
    assert!(err.to_string().contains("tourdesk models fetch"), "{err}");
}

#[tokio::test]
async fn reset_empties_the_store() {
    let (memory, _dir) = common::fresh_memory().await;
    let id = remember(&memory, &Scope::user("r"), "Something").await;
    memory.reset().await.unwrap();
    assert_eq!(memory.count().await.unwrap(), 0);
    assert!(memory.history(&id).await.unwrap().is_empty());
    remember(&memory, &Scope::user("r"), "Something").await;
    assert_eq!(memory.count().await.unwrap(), 1, "the store works after a reset");
}
