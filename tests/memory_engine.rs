//! The memory engine end to end on the real MiniLM model and real LanceDB folders.

mod common;

use serde_json::{json, Map, Value};
use tourdesk::inference::{Embedder, EmbedderHandle, InferenceError, MiniLmEmbedder, Precision};
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
    let req = AddRequest { input: AddInput::Text(text.into()), scope: scope.clone(), metadata, ..Default::default() };
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
    let dir = common::minilm_dir();
    let exact = EmbedderHandle::spawn(move || MiniLmEmbedder::load_with(&dir, Precision::F32)).await.unwrap();
    assert_eq!(exact.dim(), 384);
    let v = exact.embed_one("Does Hudson 360 allow cats?").await.unwrap();
    let expected = [0.093117, -0.009493, 0.009471, -0.007711, -0.069797, 0.01823, -0.052395, -0.133116];
    for (got, want) in v.iter().zip(expected) {
        assert!((got - want).abs() < 1e-4, "got {:?}, want {expected:?}", &v[..8]);
    }
    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    // Batching with longer neighbours (padding) must not change a text's vector.
    let texts = vec![
        "Does Hudson 360 allow cats?".to_string(),
        "A much longer sentence about parking fees, deposits and the gym hours at Riverview Lofts.".to_string(),
        "I have a golden retriever named Max and need a ground floor unit".to_string(),
    ];
    let batch = exact.embed(texts.clone()).await.unwrap();
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(cos(&batch[0], &v) > 0.9999, "padding changed the embedding: cos {}", cos(&batch[0], &v));
    // The int8 weights (held wherever the CPU multiplies them fastest) stay on the same vectors, alone and batched.
    let dir = common::minilm_dir();
    let fast = EmbedderHandle::spawn(move || MiniLmEmbedder::load_with(&dir, Precision::Int8)).await.unwrap();
    let fast_batch = fast.embed(texts.clone()).await.unwrap();
    for ((text, exact), fast) in texts.iter().zip(&batch).zip(&fast_batch) {
        assert!(cos(exact, fast) > 0.997, "int8 strays on {text:?}: cos {}", cos(exact, fast));
    }
    // Alone, the text's rows round to 8 bits a little differently than beside others (measured cos 0.9996).
    let alone = fast.embed_one(&texts[0]).await.unwrap();
    assert!(
        cos(&alone, &fast_batch[0]) > 0.999,
        "padding changed the int8 embedding: cos {}",
        cos(&alone, &fast_batch[0])
    );
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

    assert_eq!(memory.forget(&gone).await.unwrap().memories, 1);
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
            ..Default::default()
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
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.iter().map(|e| e.event).collect::<Vec<_>>(), [EventKind::Add, EventKind::None]);
    assert_eq!(memory.get_all(&scope, &MetadataFilter::All, 100).await.unwrap().len(), 2);
}

#[tokio::test]
async fn exact_and_vector_index_search_paths_agree() {
    // Scopes up to `exact_search_rows` are scored in Rust; larger ones go to LanceDB's vector and full-text search.
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
        req.explain = true;
        let a = exact.search(&req).await.unwrap();
        let b = knn.search(&req).await.unwrap();
        // The index path has no conversation context, so only the best match and the similarities must agree.
        assert_eq!(a[0].item.id, b[0].item.id, "{query}");
        for x in &a {
            let Some(y) = b.iter().find(|y| y.item.id == x.item.id) else { continue };
            let (sx, sy) = (x.score_details.unwrap().similarity, y.score_details.unwrap().similarity);
            assert!((sx - sy).abs() < 1e-4, "{query}: {sx} vs {sy}");
        }
        assert!(a.iter().chain(&b).all(|h| h.item.metadata["n"].as_i64().unwrap() < 3));
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
    let add = |text: String, scope: Scope| AddRequest { input: AddInput::Text(text), scope, ..Default::default() };

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
    assert_eq!(memory.forget(&hostile).await.unwrap().memories, 0);
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

#[tokio::test]
async fn keywords_find_what_vectors_miss_and_explain_shows_the_parts() {
    let (memory, _dir) = common::fresh_memory().await;
    let scope = Scope::user("hybrid");
    for text in [
        "Asked about the parking garage on Elm Street",
        "Wants a quiet unit facing the courtyard",
        "Her confirmation code is QX7-HARBOR",
        "Prefers a virtual tour on a weekday morning",
        "Has a golden retriever named Biscuit",
        "Lives in unit 4B and writes from dkowalski@example.org",
        "Asked whether the laundry room is open late",
    ] {
        remember(&memory, &scope, text).await;
    }
    let mut req = SearchRequest::new("QX7-HARBOR", scope.clone());
    req.explain = true;
    let hits = memory.search(&req).await.unwrap();
    assert_eq!(hits[0].item.memory, "Her confirmation code is QX7-HARBOR", "{hits:?}");
    let parts = hits[0].score_details.expect("explained");
    assert!((parts.keyword - 0.4).abs() < 1e-6 && parts.time == 0.0 && parts.speaker == 0.0, "{parts:?}");
    assert!((parts.total() - hits[0].score).abs() < 1e-6);
    let far = hits.iter().find(|h| h.item.memory.contains("Biscuit")).unwrap();
    assert_eq!(far.score_details.unwrap().keyword, 0.0, "neither it nor the memory before it has the code");
    // Without explain, no breakdown.
    req.explain = false;
    assert!(memory.search(&req).await.unwrap()[0].score_details.is_none());
    // A name, an email and a unit number: what only keywords can match.
    assert_eq!(search(&memory, scope.clone(), "Biscuit").await[0].0, "Has a golden retriever named Biscuit");
    let unit = "Lives in unit 4B and writes from dkowalski@example.org";
    assert_eq!(search(&memory, scope.clone(), "dkowalski@example.org").await[0].0, unit);
    assert_eq!(search(&memory, scope, "who is in 4B?").await[0].0, unit);
}

#[tokio::test]
async fn questions_about_a_period_prefer_memories_from_it() {
    let (memory, _dir) = common::fresh_memory().await;
    let scope = Scope::user("dates");
    remember_with(&memory, &scope, "Went to a pottery class", meta(json!({"date": "1:56 pm on 8 May, 2023"}))).await;
    remember_with(&memory, &scope, "Went to a painting class", meta(json!({"date": "10:00 am on 9 June, 2023"}))).await;
    let mut req = SearchRequest::new("What class did she go to in June 2023?", scope.clone());
    req.explain = true;
    let hits = memory.search(&req).await.unwrap();
    assert_eq!(hits[0].item.memory, "Went to a painting class", "{hits:?}");
    assert!(hits[0].score_details.unwrap().time > 0.0);
    assert_eq!(hits[1].score_details.unwrap().time, 0.0);
    // A timestamp given at add (mem0's `timestamp`) is when the memory happened.
    let may = chrono::DateTime::parse_from_rfc3339("2023-05-20T12:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let req = AddRequest {
        input: AddInput::Text("Went to a yoga class".into()),
        scope: scope.clone(),
        timestamp: Some(may),
        ..Default::default()
    };
    let id = memory.add(req).await.unwrap()[0].id.clone();
    assert_eq!(memory.get(&id).await.unwrap().created_at, may);
    let mut req = SearchRequest::new("Which class in May 2023?", scope);
    req.explain = true;
    let time = |hits: &[tourdesk::memory::SearchHit], text: &str| {
        hits.iter().find(|h| h.item.memory == text).unwrap().score_details.unwrap().time
    };
    let hits = memory.search(&req).await.unwrap();
    assert_eq!(time(&hits, "Went to a yoga class"), 0.5, "its timestamp is in May");
    assert_eq!(time(&hits, "Went to a pottery class"), 0.5, "its metadata date is in May");
    assert_eq!(time(&hits, "Went to a painting class"), 0.0, "June 9 is more than a week after May");
}

#[tokio::test]
async fn expired_memories_are_hidden_until_asked_for_and_cleaned_up() {
    let (memory, _dir) = common::fresh_memory().await;
    let scope = Scope::user("expiry");
    let past = tourdesk::memory::parse_expiration("2001-01-01").unwrap();
    let future = tourdesk::memory::parse_expiration("2999-12-31").unwrap();
    let add = |text: &str, expiration_date| AddRequest {
        input: AddInput::Text(text.into()),
        scope: scope.clone(),
        expiration_date,
        ..Default::default()
    };
    let old = memory.add(add("Looking for a summer sublet in 2000", Some(past))).await.unwrap()[0].id.clone();
    memory.add(add("Looking for a two-bedroom", Some(future))).await.unwrap();
    memory.add(add("Has a cat", None)).await.unwrap();

    let listed = memory.get_all(&scope, &MetadataFilter::All, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(memory.list(&scope, &MetadataFilter::All, 10, true).await.unwrap().len(), 3);
    let mut req = SearchRequest::new("sublet", scope.clone());
    assert!(memory.search(&req).await.unwrap().iter().all(|h| h.item.id != old));
    req.show_expired = true;
    assert_eq!(memory.search(&req).await.unwrap()[0].item.id, old);
    assert_eq!(memory.get(&old).await.unwrap().expiration_date, Some(past), "get by id still answers");

    let deleted = memory.cleanup_expired(Some("test")).await.unwrap();
    assert_eq!(deleted.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), [old.as_str()]);
    assert!(matches!(memory.get(&old).await, Err(MemoryError::NotFound(_))));
    let history = memory.history(&old).await.unwrap();
    assert_eq!(history.last().unwrap().event, EventKind::Delete);
    assert!(memory.cleanup_expired(None).await.unwrap().is_empty(), "nothing left to clean");
    assert_eq!(memory.list(&scope, &MetadataFilter::All, 10, true).await.unwrap().len(), 2);

    // An update can set and remove an expiration date.
    let cat = listed.iter().find(|i| i.memory == "Has a cat").unwrap().id.clone();
    let change = |expiration_date| tourdesk::memory::MemoryChange { expiration_date, ..Default::default() };
    memory.change(&cat, change(Some(Some(past))), None).await.unwrap();
    assert_eq!(memory.get_all(&scope, &MetadataFilter::All, 10).await.unwrap().len(), 1);
    memory.change(&cat, change(Some(None)), None).await.unwrap();
    assert_eq!(memory.get_all(&scope, &MetadataFilter::All, 10).await.unwrap().len(), 2);
    assert_eq!(memory.get(&cat).await.unwrap().memory, "Has a cat", "text unchanged");
}

/// Files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test]
async fn forget_leaves_no_byte_of_the_caller_on_disk() {
    let (memory, dir) = common::fresh_memory().await;
    let (gone, stays) = (Scope::user("+15550001111"), Scope::user("+15550002222"));
    // Distinctive words (lower case and unchanged by stemming, as the full-text index stores terms).
    let id = remember(&memory, &gone, "Secret zqxjvmarker lives at 12 qwvplace").await;
    memory.update(&id, "Secret zqxjvmarker moved to 14 qwvplace", None, None).await.unwrap();
    remember(&memory, &gone, "Also zqxjvmarker has a parrot").await;
    let kept = remember(&memory, &stays, "Has a golden retriever").await;
    memory.optimize().await.unwrap();
    assert!(!files_containing(dir.path(), b"zqxjvmarker").is_empty(), "the marker is on disk before forgetting");
    assert!(!files_containing(dir.path(), b"+15550001111").is_empty());

    let report = memory.forget(&gone).await.unwrap();
    assert_eq!((report.memories, report.history_entries), (2, 3));
    assert!(report.versions_removed > 0 && report.bytes_removed > 0, "{report:?}");
    for needle in [&b"zqxjvmarker"[..], b"qwvplace", b"+15550001111"] {
        let left = files_containing(dir.path(), needle);
        assert!(left.is_empty(), "{} still in {left:?}", String::from_utf8_lossy(needle));
    }
    assert_eq!(memory.get(&kept).await.unwrap().memory, "Has a golden retriever", "others are untouched");
    assert_eq!(search(&memory, stays, "dog").await.len(), 1);
    remember(&memory, &gone, "Called again").await;
    assert_eq!(memory.get_all(&gone, &MetadataFilter::All, 10).await.unwrap().len(), 1, "the store still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_writers_at_once_lose_nothing() {
    // Sixty callers' memories, their history and their message log written at the same moment: every write lands
    // (LanceDB's own commit retries ran out under this before the store queued its writes).
    let (memory, _dir) = common::fresh_memory().await;
    let writes: Vec<_> = (0..60)
        .map(|i| {
            let memory = memory.clone();
            tokio::spawn(async move {
                let scope = Scope {
                    user_id: Some(format!("+1555000{i:04}")),
                    agent_id: None,
                    run_id: Some(format!("call-{i}")),
                };
                let text = format!("Caller {i} has {} cats", i % 5);
                remember(&memory, &scope, &text).await;
                let said = [Message { role: "user".into(), content: text.clone() }];
                memory.messages().append(&scope, 1, &said).await.expect("log");
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap();
    }
    assert_eq!(memory.count().await.unwrap(), 60);
    let logged = memory
        .messages()
        .list(&Scope { agent_id: None, user_id: Some("+15550000042".into()), run_id: None }, None)
        .await
        .unwrap();
    assert_eq!(logged.len(), 1);
    for i in [0, 31, 59] {
        let id = &memory.get_all(&Scope::user(format!("+1555000{i:04}")), &MetadataFilter::All, 5).await.unwrap()[0].id;
        assert_eq!(memory.history(id).await.unwrap().len(), 1, "caller {i}'s ADD is in history");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_callers_read_at_once_each_get_exactly_their_own_memories() {
    // Forty first turns at the same moment: their reads are answered together, and each caller still gets only
    // their own memories (and a caller with none gets none).
    let (memory, _dir) = common::fresh_memory().await;
    let user = |i: usize| format!("+1555300{i:04}");
    for i in 0..40 {
        for fact in 0..i % 4 {
            remember(&memory, &Scope::user(user(i)), &format!("Caller {i} fact {fact}")).await;
        }
    }
    let reads: Vec<_> = (0..40)
        .map(|i| {
            let memory = memory.clone();
            tokio::spawn(async move { memory.get_all(&Scope::user(user(i)), &MetadataFilter::All, 100).await })
        })
        .collect();
    for (i, read) in reads.into_iter().enumerate() {
        let mut texts: Vec<String> = read.await.unwrap().unwrap().into_iter().map(|m| m.memory).collect();
        texts.sort();
        let expected: Vec<String> = (0..i % 4).map(|fact| format!("Caller {i} fact {fact}")).collect();
        assert_eq!(texts, expected, "caller {i}");
    }
}
