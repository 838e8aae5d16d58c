//! Shared set-up for the integration tests: the real MiniLM model (fetched by `just test`) and fresh LanceDB
//! folders.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::OnceCell;
use tourdesk::agent::{AgentConfig, BookingStore, Catalog, MemoryService, Tools};
use tourdesk::config::default_models_dir;
use tourdesk::inference::{EmbedderHandle, MiniLmEmbedder};
use tourdesk::memory::{Memory, MemoryConfig};
use tourdesk::models::{ModelDir, ModelStore};
use tourdesk::realtime::voice::STT_HINT;
use tourdesk::speech::vad::VadConfig;
use tourdesk::speech::Voice;
use tourdesk::speech::{PhraseCache, SttHandle, DEFAULT_PHRASE_CACHE_BYTES};

/// The models folder the tests read: `TOURDESK_MODELS`, else the default cache folder.
pub fn models_dir() -> PathBuf {
    std::env::var_os("TOURDESK_MODELS").map(PathBuf::from).unwrap_or_else(default_models_dir)
}

/// The verified MiniLM folder; panics with the command to run when it is missing.
pub fn minilm_dir() -> ModelDir {
    ModelStore::new(models_dir())
        .and_then(|s| s.resolve("minilm"))
        .unwrap_or_else(|e| panic!("{e} (the README's test command fetches models first)"))
}

static EMBEDDER: OnceCell<EmbedderHandle> = OnceCell::const_new();

/// One real MiniLM embedder thread shared by every test in a binary.
pub async fn embedder() -> EmbedderHandle {
    EMBEDDER
        .get_or_init(|| async {
            let dir = minilm_dir();
            EmbedderHandle::spawn(move || MiniLmEmbedder::load(&dir)).await.expect("MiniLM loads")
        })
        .await
        .clone()
}

/// A memory store in a fresh temporary folder (kept alive by the returned guard).
pub async fn fresh_memory() -> (Memory, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let memory = open_at(&dir).await;
    (memory, dir)
}

/// Opens the store in `dir` with the shared embedder.
pub async fn open_at(dir: &tempfile::TempDir) -> Memory {
    open_with(MemoryConfig::new(dir.path().to_str().unwrap())).await
}

/// Opens a store with explicit settings and the shared embedder.
pub async fn open_with(config: MemoryConfig) -> Memory {
    Memory::open(&config, embedder().await).await.expect("store opens")
}

/// Path of the GGUF file of a chat model from the manifest (`qwen2.5-0.5b`, `smollm2-135m`).
pub fn gguf_path(name: &str) -> PathBuf {
    let dir = ModelStore::new(models_dir())
        .and_then(|s| s.resolve(name))
        .unwrap_or_else(|e| panic!("{e} (the README's test command fetches models first)"));
    dir.gguf().unwrap_or_else(|| panic!("{name} is not a GGUF chat model"))
}

/// The office clock the server tests run on: Tuesday 2026-11-24, 09:00.
pub fn office_now() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 24).and_then(|d| d.and_hms_opt(9, 0, 0)).unwrap()
}

/// The agent a test server runs: the real catalog, bookings in `dir`, `memory`, flight recordings in
/// `dir/recordings`, and the fixed office clock.
pub async fn agent_in(dir: &tempfile::TempDir, memory: MemoryService) -> AgentConfig {
    let bookings = BookingStore::open(dir.path().to_str().unwrap()).await.unwrap();
    AgentConfig {
        tools: Tools::new(Arc::new(Catalog::builtin().unwrap()), bookings),
        memory: Some(memory),
        recordings: Some(dir.path().join("recordings")),
        now: Some(office_now()),
        wording: None,
        mailer: Some(outbox_mailer(dir)),
    }
}

/// Confirmations kept in `dir/outbox` only (no SMTP server), as a fresh install sends them.
pub fn outbox_mailer(dir: &tempfile::TempDir) -> tourdesk::notify::Mailer {
    tourdesk::notify::Mailer::new(
        "Harborline Leasing <tours@localhost>",
        &dir.path().join("outbox"),
        None,
        std::time::Duration::from_secs(5),
    )
    .unwrap()
}

/// Speech for phone calls as `serve` sets it up: whisper-tiny-en with the agent's vocabulary hint, the Piper voice
/// (the callers in the tests speak with espeak-ng: another voice), Silero VAD with the default settings.
pub async fn voice() -> Voice {
    let store = ModelStore::new(models_dir()).unwrap();
    let whisper = store.resolve("whisper-tiny-en").unwrap();
    // Loaded by itself, so that a missing voice fails here rather than falling back to espeak-ng as `serve` would;
    // then kept behind the phrase cache, as `serve` keeps it.
    let tts = tourdesk::engine::load_piper(&store, "piper-joe").await.expect("`just models` fetches the Piper voice");
    Voice {
        stt: SttHandle::spawn(whisper, STT_HINT.into()).await.unwrap(),
        tts: Arc::new(PhraseCache::new(Arc::new(tts), DEFAULT_PHRASE_CACHE_BYTES)),
        vad: VadConfig::default(),
        silero: Some(tourdesk::engine::load_silero(&store).await.expect("`just models` fetches Silero VAD")),
        turn: None,
        turn_check: Some(tourdesk::engine::load_smart_turn(&store).await.expect("`just models` fetches Smart Turn")),
    }
}

pub mod fake_openai;
pub mod fake_twilio;
pub mod s3;
pub mod serve;

/// The Python of the test clients' environment (`scripts/setup.sh` makes it): `TOURDESK_TEST_PYTHON`, else
/// `~/.cache/tourdesk/venv/bin/python`; panics with the command to run when it is missing.
pub fn test_python() -> PathBuf {
    let python = std::env::var_os("TOURDESK_TEST_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        dirs::cache_dir().unwrap_or_else(|| PathBuf::from(".cache")).join("tourdesk/venv/bin/python")
    });
    assert!(python.exists(), "{} is missing: run scripts/setup.sh (`just test` runs it)", python.display());
    python
}

/// A test client from `tests/clients/` running in the test clients' Python environment, with the lines it prints.
pub struct PythonClient {
    /// Killed when dropped.
    pub child: tokio::process::Child,
    /// What it prints after its first line.
    pub lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// Its first line (each client prints where it listens, as JSON, once it does).
    pub ready: serde_json::Value,
}

impl PythonClient {
    /// Starts `tests/clients/{script}` with `args` (its stdin held open: each client stops when it closes) and
    /// waits up to `wait` for its first line.
    pub async fn start(script: &str, args: &[&str], wait: std::time::Duration) -> Self {
        use tokio::io::AsyncBufReadExt;
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(script);
        let mut child = tokio::process::Command::new(test_python())
            .arg(path)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python runs");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(wait, lines.next_line()).await.unwrap().unwrap();
        let first = first.unwrap_or_else(|| panic!("{script} printed nothing"));
        let ready = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{script} printed {first:?}: {e}"));
        Self { child, lines, ready }
    }
}
