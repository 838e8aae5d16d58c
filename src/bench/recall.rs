//! `tourdesk bench recall`: evidence recall on a LoCoMo-format file, measured as a user would meet it. Every turn
//! is ingested as a raw memory through the JSONL import path, then every question of categories 1–4 is asked
//! through `POST /search` of the server on loopback, and the evidence turns found in the results are counted.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::percentile;
use crate::app::{AppState, LoopbackServer};
use crate::memory::{import_jsonl, ImportLine, MemoryError, Scope};

/// Cut-offs reported, and the number of results asked for (the largest).
const CUTOFFS: [usize; 4] = [1, 5, 10, 50];

/// LoCoMo's question categories (5, adversarial questions without evidence, is left out).
const CATEGORIES: [(u64, &str); 4] = [(1, "multi-hop"), (2, "temporal"), (3, "open-domain"), (4, "single-hop")];

/// Why the recall benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum RecallBenchError {
    /// The dataset could not be read or is not in LoCoMo's format.
    #[error("dataset {path}: {why}")]
    Dataset { path: String, why: String },
    /// Ingest failed.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// The server could not be started or answered wrongly.
    #[error("search server: {0}")]
    Server(String),
}

/// One LoCoMo sample: a conversation between two speakers over sessions, and questions about it.
#[derive(Debug, Deserialize)]
struct Sample {
    #[serde(default)]
    sample_id: Option<String>,
    conversation: Map<String, Value>,
    #[serde(default)]
    qa: Vec<Question>,
}

#[derive(Debug, Deserialize)]
struct Question {
    question: String,
    #[serde(default)]
    evidence: Vec<String>,
    category: u64,
}

#[derive(Debug, Deserialize)]
struct Turn {
    speaker: String,
    dia_id: String,
    text: String,
    #[serde(default)]
    blip_caption: Option<String>,
}

/// A conversation turned into import lines, and the questions to ask about it.
struct Conversation {
    user_id: String,
    lines: Vec<ImportLine>,
    /// Each turn's id → the id of the first turn with the same text (equal texts are stored once per caller).
    canonical: HashMap<String, String>,
    questions: Vec<Question>,
}

/// The memory text of a turn: `"<speaker>: <text>"`, plus `[shares <caption>]` for an image.
fn turn_text(turn: &Turn) -> String {
    match turn.blip_caption.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(caption) => format!("{}: {} [shares {caption}]", turn.speaker, turn.text),
        None => format!("{}: {}", turn.speaker, turn.text),
    }
}

impl Conversation {
    fn from_sample(n: usize, sample: Sample) -> Result<Self, String> {
        let user_id = sample.sample_id.clone().unwrap_or_else(|| format!("locomo-{}", n + 1));
        let mut sessions: Vec<(u64, &Vec<Value>)> = sample
            .conversation
            .iter()
            .filter_map(|(k, v)| {
                let n = k.strip_prefix("session_")?.parse::<u64>().ok()?;
                Some((n, v.as_array()?))
            })
            .collect();
        sessions.sort_by_key(|(n, _)| *n);
        let mut lines = Vec::new();
        let mut canonical = HashMap::new();
        let mut first_by_text: HashMap<String, String> = HashMap::new();
        for (session, turns) in sessions {
            let date = sample
                .conversation
                .get(&format!("session_{session}_date_time"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            for turn in turns {
                let turn: Turn = serde_json::from_value(turn.clone())
                    .map_err(|e| format!("{user_id} session {session}: a turn is malformed: {e}"))?;
                let text = turn_text(&turn);
                let first = first_by_text.entry(text.clone()).or_insert_with(|| turn.dia_id.clone()).clone();
                canonical.insert(turn.dia_id.clone(), first);
                let metadata = json!({"dia_id": turn.dia_id, "session": session, "date": date});
                lines.push(ImportLine {
                    text: Some(text),
                    messages: None,
                    scope: Scope::user(user_id.clone()),
                    role: None,
                    metadata: metadata.as_object().cloned().unwrap_or_default(),
                    timestamp: None,
                    expiration_date: None,
                });
            }
        }
        Ok(Self { user_id, lines, canonical, questions: sample.qa })
    }

    /// The distinct stored turns a question's evidence names (LoCoMo sometimes lists several ids in one string).
    fn evidence(&self, q: &Question) -> Vec<String> {
        let mut ids: Vec<String> = q
            .evidence
            .iter()
            .flat_map(|e| e.split([';', ',', ' ']))
            .filter_map(|id| self.canonical.get(id.trim()).cloned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// Recall numbers for one group of questions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecallScores {
    /// Questions in the group.
    pub questions: usize,
    /// Mean fraction of evidence turns in the top 1, 5, 10 and 50.
    pub recall_at: BTreeMap<usize, f64>,
    /// Mean reciprocal rank of the first evidence turn (0 when none is in the top 50).
    pub mrr: f64,
}

#[derive(Default)]
struct Tally {
    questions: usize,
    recall: [f64; CUTOFFS.len()],
    rr: f64,
}

impl Tally {
    fn add(&mut self, ranks: &[Option<usize>]) {
        self.questions += 1;
        for (i, k) in CUTOFFS.iter().enumerate() {
            let found = ranks.iter().filter(|r| r.is_some_and(|r| r < *k)).count();
            self.recall[i] += found as f64 / ranks.len() as f64;
        }
        if let Some(first) = ranks.iter().flatten().min() {
            self.rr += 1.0 / (*first as f64 + 1.0);
        }
    }

    fn scores(&self) -> RecallScores {
        let n = self.questions.max(1) as f64;
        RecallScores {
            questions: self.questions,
            recall_at: CUTOFFS.iter().zip(self.recall).map(|(k, r)| (*k, r / n)).collect(),
            mrr: self.rr / n,
        }
    }
}

/// What the recall benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct RecallBenchReport {
    /// Conversations ingested.
    pub conversations: usize,
    /// Memories stored.
    pub memories: usize,
    /// Ingest throughput through the import path, embedding included.
    pub ingest_per_sec: f64,
    /// Questions skipped because none of their evidence ids names a turn.
    pub skipped_questions: usize,
    /// Every question of categories 1–4.
    pub overall: RecallScores,
    /// Per category, by name.
    pub categories: BTreeMap<String, RecallScores>,
    /// `POST /search` latency seen by the client, milliseconds.
    pub search_p50_ms: f64,
    /// `POST /search` latency seen by the client, milliseconds.
    pub search_p95_ms: f64,
}

impl std::fmt::Display for RecallBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "ingested               {} memories of {} conversations ({:.0} memories/s)",
            self.memories, self.conversations, self.ingest_per_sec
        )?;
        writeln!(
            f,
            "{:<22} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "questions", "n", "R@1", "R@5", "R@10", "R@50", "MRR"
        )?;
        let row = |f: &mut std::fmt::Formatter<'_>, name: &str, s: &RecallScores| {
            let r = |k| s.recall_at.get(&k).copied().unwrap_or(0.0);
            writeln!(
                f,
                "{name:<22} {:>5} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>7.3}",
                s.questions,
                r(1),
                r(5),
                r(10),
                r(50),
                s.mrr
            )
        };
        row(f, "all", &self.overall)?;
        for (name, s) in &self.categories {
            row(f, &format!("  {name}"), s)?;
        }
        if self.skipped_questions > 0 {
            writeln!(f, "skipped                {} questions whose evidence names no turn", self.skipped_questions)?;
        }
        write!(f, "POST /search           p50 {:.2} ms   p95 {:.2} ms", self.search_p50_ms, self.search_p95_ms)
    }
}

#[derive(Deserialize)]
struct SearchAnswer {
    results: Vec<Value>,
}

/// Reads `dataset`, ingests it into the memory of `state` (which should be a fresh store), serves `state` on
/// loopback and asks every question through `POST /search`.
pub async fn recall_bench(
    state: AppState,
    dataset: &Path,
    progress: bool,
) -> Result<RecallBenchReport, RecallBenchError> {
    let bad = |why: String| RecallBenchError::Dataset { path: dataset.display().to_string(), why };
    let raw = std::fs::read(dataset).map_err(|e| bad(e.to_string()))?;
    let samples: Vec<Sample> =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("not a LoCoMo-format JSON list: {e}")))?;
    let conversations: Vec<Conversation> = samples
        .into_iter()
        .enumerate()
        .map(|(n, s)| Conversation::from_sample(n, s))
        .collect::<Result<_, _>>()
        .map_err(bad)?;

    let memory = state
        .agent
        .memory
        .as_ref()
        .map(|m| m.memory().clone())
        .ok_or_else(|| RecallBenchError::Server("the server has no memory".into()))?;
    let mut jsonl = Vec::new();
    for line in conversations.iter().flat_map(|c| &c.lines) {
        serde_json::to_writer(&mut jsonl, line).map_err(|e| bad(e.to_string()))?;
        jsonl.write_all(b"\n").map_err(|e| bad(e.to_string()))?;
    }
    let ingest_bar = progress_bar(progress, jsonl.len() as u64, "ingest");
    let started = Instant::now();
    let report =
        import_jsonl(&memory, BufReader::new(jsonl.as_slice()), 256, |bytes, _| ingest_bar.set_position(bytes)).await?;
    let ingest = started.elapsed();
    ingest_bar.finish_and_clear();
    if let Some((line, why)) = report.skipped.first() {
        return Err(bad(format!("turn {line} could not be imported: {why}")));
    }

    let api_key = state.api_key.clone();
    let server = LoopbackServer::start(state, Duration::from_secs(5))
        .await
        .map_err(|e| RecallBenchError::Server(format!("cannot listen on loopback: {e}")))?;
    let url = format!("http://{}/search", server.addr);
    let client = reqwest::Client::new();
    let total: usize = conversations.iter().map(|c| c.questions.len()).sum();
    let bar = progress_bar(progress, total as u64, "search");
    let mut overall = Tally::default();
    let mut by_category: BTreeMap<u64, Tally> = BTreeMap::new();
    let (mut times, mut skipped) = (Vec::new(), 0usize);
    for conv in &conversations {
        for q in &conv.questions {
            bar.inc(1);
            let Some(name) = CATEGORIES.iter().find(|(c, _)| *c == q.category).map(|(c, _)| *c) else { continue };
            let evidence = conv.evidence(q);
            if evidence.is_empty() {
                skipped += 1;
                continue;
            }
            let body = json!({"query": q.question, "user_id": conv.user_id, "limit": CUTOFFS[CUTOFFS.len() - 1]});
            let mut request = client.post(&url).json(&body);
            if let Some(key) = &api_key {
                request = request.bearer_auth(&key.0);
            }
            let t = Instant::now();
            let answer = request.send().await.map_err(|e| RecallBenchError::Server(e.to_string()))?;
            let status = answer.status();
            if !status.is_success() {
                let text = answer.text().await.unwrap_or_default();
                return Err(RecallBenchError::Server(format!("POST /search answered {status}: {text}")));
            }
            let answer: SearchAnswer = answer.json().await.map_err(|e| RecallBenchError::Server(e.to_string()))?;
            times.push(t.elapsed());
            let found: Vec<&str> = answer
                .results
                .iter()
                .map(|r| r.pointer("/metadata/dia_id").and_then(Value::as_str).unwrap_or_default())
                .collect();
            let ranks: Vec<Option<usize>> = evidence.iter().map(|id| found.iter().position(|f| f == id)).collect();
            overall.add(&ranks);
            by_category.entry(name).or_default().add(&ranks);
        }
    }
    bar.finish_and_clear();
    server.stop().await.map_err(|e| RecallBenchError::Server(e.to_string()))?;
    times.sort();
    let name = |c: u64| CATEGORIES.iter().find(|(n, _)| *n == c).map_or("other", |(_, name)| *name).to_string();
    Ok(RecallBenchReport {
        conversations: conversations.len(),
        memories: report.added,
        ingest_per_sec: report.added as f64 / ingest.as_secs_f64().max(1e-9),
        skipped_questions: skipped,
        overall: overall.scores(),
        categories: by_category.iter().map(|(c, t)| (format!("{c} {}", name(*c)), t.scores())).collect(),
        search_p50_ms: percentile(&times, 50),
        search_p95_ms: percentile(&times, 95),
    })
}

fn progress_bar(show: bool, len: u64, what: &str) -> ProgressBar {
    let bar = if show { ProgressBar::new(len) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(&format!("{what} [{{bar:40}}] {{pos}}/{{len}} eta {{eta}}"))
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}
