//! Benchmarks that print numbers (`tourdesk bench memory|recall|understanding|load|agent|infer|voice`): speed and memory targets live here, not in timed
//! tests.

mod infer;
mod load;
pub mod onnx_reference;
pub mod phone;
mod recall;
mod understanding;
mod voice;

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::agent::{AgentConfig, AgentError, AgentPlanner};
use crate::inference::EmbedderHandle;
use crate::memory::{Memory, MemoryConfig, MemoryError, NewMemory, Scope, SearchRequest};
use onnx_reference::OnnxMiniLm;

pub use infer::{infer_bench, InferBenchReport, ModelInferReport};
pub use load::{load_bench, LoadLevel, LoadReport, SCRIPT as LOAD_SCRIPT};
pub use recall::{recall_bench, RecallBenchError, RecallBenchReport, RecallScores};
pub use understanding::{understanding_bench, Context, Rate, UnderstandingBenchError, UnderstandingReport};
pub use voice::{voice_bench, Stage, VoiceBenchError, VoiceBenchReport};

/// Knobs of the memory benchmark.
#[derive(Debug, Clone)]
pub struct MemoryBenchOptions {
    /// Memories to ingest.
    pub memories: usize,
    /// Users they are spread over.
    pub users: usize,
    /// Timed queries (each for embedding alone and for a full search).
    pub queries: usize,
    /// Memories per ingest batch.
    pub batch: usize,
    /// Show a progress bar.
    pub progress: bool,
}

/// What the memory benchmark measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemoryBenchReport {
    /// Memories stored after ingest.
    pub stored: usize,
    /// Users.
    pub users: usize,
    /// Ingest throughput, embedding included.
    pub ingest_per_sec: f64,
    /// Time to compact and index after ingest.
    pub optimize_secs: f64,
    /// Query embedding latency, milliseconds.
    pub embed_p50_ms: f64,
    /// Query embedding latency, milliseconds.
    pub embed_p95_ms: f64,
    /// Search latency with embedding, milliseconds.
    pub search_p50_ms: f64,
    /// Search latency with embedding, milliseconds.
    pub search_p95_ms: f64,
    /// Resident memory at the end, MiB.
    pub rss_mib: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
    /// The same queries embedded by ONNX Runtime, interleaved with the candle timings.
    pub onnx_runtime: Result<OnnxTimings, String>,
}

/// ONNX Runtime's query embedding in the same run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OnnxTimings {
    /// Latency, milliseconds.
    pub p50_ms: f64,
    /// Latency, milliseconds.
    pub p95_ms: f64,
    /// Lowest cosine similarity between its vector and candle's for the same query (its weights are int8).
    pub min_cosine: f32,
}

impl std::fmt::Display for MemoryBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "memories stored        {} over {} users", self.stored, self.users)?;
        writeln!(f, "ingest                 {:.0} memories/s (embedding included)", self.ingest_per_sec)?;
        writeln!(f, "compact + index        {:.1} s", self.optimize_secs)?;
        writeln!(f, "query embedding        p50 {:.2} ms   p95 {:.2} ms", self.embed_p50_ms, self.embed_p95_ms)?;
        match &self.onnx_runtime {
            Ok(o) => writeln!(
                f,
                "  ONNX Runtime, same run  p50 {:.2} ms   p95 {:.2} ms   (2 threads; vectors agree to cosine {:.4})",
                o.p50_ms, o.p95_ms, o.min_cosine
            )?,
            Err(why) => writeln!(f, "  ONNX Runtime          not timed: {why}")?,
        }
        writeln!(f, "search (with embed)    p50 {:.2} ms   p95 {:.2} ms", self.search_p50_ms, self.search_p95_ms)?;
        write!(f, "resident memory        {:.0} MiB now, {:.0} MiB peak", self.rss_mib, self.peak_rss_mib)
    }
}

const PROPERTIES: [&str; 3] = ["21 West End", "Hudson 360", "Riverview Lofts"];
const PETS: [&str; 5] = ["a cat", "two cats", "a golden retriever", "a small terrier", "no pets"];
const MONTHS: [&str; 6] = ["January", "February", "March", "April", "May", "June"];
const QUERIES: [&str; 8] = [
    "Does the caller have a pet?",
    "What is their budget?",
    "Which building do they want?",
    "When do they want to move in?",
    "How many bedrooms?",
    "Do they prefer a virtual tour?",
    "Do they need parking?",
    "What did they ask about the gym?",
];

/// The `n`-th synthetic memory: varied, caller-like facts, unique within each user (the call number differs).
fn synthetic_text(n: usize, users: usize) -> String {
    let k = n / users; // index of this memory within its user
    let p = PROPERTIES[n % 3];
    let fact = match k % 8 {
        0 => format!("Looking for a {}-bedroom apartment at {p}", 1 + n % 3),
        1 => format!("Has {} and asked about pet fees", PETS[n % 5]),
        2 => format!("Budget is about ${} a month", 2000 + (n * 37) % 2500),
        3 => format!("Wants to move in around {} {}", MONTHS[n % 6], 1 + (n * 7) % 28),
        4 => format!("Prefers a {} tour on a weekday morning", if n % 2 == 0 { "virtual" } else { "in-person" }),
        5 => format!("Asked about parking for {} cars at {p}", 1 + n % 2),
        6 => "Works from home and wants a quiet unit facing the courtyard".to_string(),
        _ => format!("Asked whether the gym at {p} opens before {} am", 5 + n % 3),
    };
    format!("{fact} (call {})", k + 1)
}

fn percentile(sorted: &[Duration], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Resident and peak resident memory of this process in MiB, from /proc (Linux); zeros elsewhere.
fn resident_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Ingests synthetic memories into a fresh store at `uri`, then times query embedding and scoped search.
pub async fn memory_bench(
    embedder: EmbedderHandle,
    uri: &str,
    opts: &MemoryBenchOptions,
    onnx: Result<OnnxMiniLm, String>,
) -> Result<MemoryBenchReport, MemoryError> {
    let memory = Memory::open(&MemoryConfig::new(uri), embedder.clone()).await?;
    let bar = if opts.progress { ProgressBar::new(opts.memories as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("ingest [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let users = opts.users.max(1);
    let started = Instant::now();
    for start in (0..opts.memories).step_by(opts.batch.max(1)) {
        let end = (start + opts.batch).min(opts.memories);
        let records = (start..end)
            .map(|n| NewMemory {
                text: synthetic_text(n, users),
                scope: Scope::user(format!("user-{:04}", n % users)),
                role: Some("user".into()),
                ..Default::default()
            })
            .collect();
        memory.add_many(records, Some("bench")).await?;
        bar.inc((end - start) as u64);
    }
    let ingest = started.elapsed();
    bar.finish_and_clear();
    let started = Instant::now();
    memory.optimize().await?;
    let optimize_secs = started.elapsed().as_secs_f64();

    let query = |i: usize| QUERIES[i % QUERIES.len()];
    for i in 0..5 {
        memory.search(&SearchRequest::new(query(i), Scope::user(format!("user-{:04}", i % users)))).await?;
    }
    let (embed_times, onnx_runtime) = time_query_embedding(&embedder, onnx, opts.queries, query).await?;
    let mut search_times = Vec::with_capacity(opts.queries);
    for i in 0..opts.queries {
        let user = format!("user-{:04}", (i * 7919) % users);
        let t = Instant::now();
        let mut req = SearchRequest::new(query(i), Scope::user(user));
        req.limit = 5;
        memory.search(&req).await?;
        search_times.push(t.elapsed());
    }
    search_times.sort();
    let (rss_mib, peak_rss_mib) = resident_mib();
    Ok(MemoryBenchReport {
        stored: memory.count().await?,
        users,
        ingest_per_sec: opts.memories as f64 / ingest.as_secs_f64(),
        optimize_secs,
        embed_p50_ms: percentile(&embed_times, 50),
        embed_p95_ms: percentile(&embed_times, 95),
        search_p50_ms: percentile(&search_times, 50),
        search_p95_ms: percentile(&search_times, 95),
        rss_mib,
        peak_rss_mib,
        onnx_runtime,
    })
}

/// Times `queries` query embeddings through the embedder and, in alternating rounds on the same queries, through
/// ONNX Runtime (on a blocking thread, as the embedder runs on its own). The embedder's sorted latencies, and
/// ONNX Runtime's timings or why there are none.
async fn time_query_embedding(
    embedder: &EmbedderHandle,
    mut onnx: Result<OnnxMiniLm, String>,
    queries: usize,
    query: impl Fn(usize) -> &'static str,
) -> Result<(Vec<Duration>, Result<OnnxTimings, String>), MemoryError> {
    const ROUNDS: usize = 4;
    let mut times = Vec::with_capacity(queries);
    let mut onnx_times = Vec::with_capacity(queries);
    let mut min_cosine = f32::MAX;
    for round in 0..ROUNDS {
        let texts: Vec<&'static str> = (round * queries / ROUNDS..(round + 1) * queries / ROUNDS).map(&query).collect();
        let mut ours = Vec::with_capacity(texts.len());
        for text in &texts {
            let t = Instant::now();
            ours.push(embedder.embed_one(text).await?);
            times.push(t.elapsed());
        }
        let Ok(model) = onnx else { continue };
        let run = tokio::task::spawn_blocking(move || {
            let mut model = model;
            let mut timed = Vec::with_capacity(texts.len());
            for text in &texts {
                let t = Instant::now();
                let vector = model.embed_one(text);
                timed.push(vector.map(|v| (t.elapsed(), v)));
            }
            (model, timed)
        });
        let (model, timed) = run.await.map_err(|e| MemoryError::Invalid(format!("ONNX Runtime thread failed: {e}")))?;
        onnx = Ok(model);
        for (timed, ours) in timed.into_iter().zip(&ours) {
            match timed {
                Ok((elapsed, theirs)) => {
                    onnx_times.push(elapsed);
                    min_cosine = min_cosine.min(theirs.iter().zip(ours).map(|(a, b)| a * b).sum());
                }
                Err(e) => onnx = Err(e.to_string()),
            }
        }
    }
    times.sort();
    onnx_times.sort();
    let onnx = onnx.map(|_| OnnxTimings {
        p50_ms: percentile(&onnx_times, 50),
        p95_ms: percentile(&onnx_times, 95),
        min_cosine,
    });
    Ok((times, onnx))
}

/// What the agent benchmark measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentBenchReport {
    /// Sessions run (each twice: with and without memory).
    pub sessions: usize,
    /// Turns timed per variant.
    pub turns: usize,
    /// Turn latency with memory, milliseconds.
    pub turn_p50_ms: f64,
    /// Turn latency with memory, milliseconds.
    pub turn_p95_ms: f64,
    /// Turn latency without memory, milliseconds.
    pub bare_p50_ms: f64,
    /// Turn latency without memory, milliseconds.
    pub bare_p95_ms: f64,
    /// First-turn memory read (retrieve the caller's context), milliseconds.
    pub memory_read_p50_ms: f64,
    /// First-turn memory read, milliseconds.
    pub memory_read_p95_ms: f64,
    /// Share of all turn time spent reading memory.
    pub memory_share: f64,
}

impl std::fmt::Display for AgentBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "sessions               {} ({} turns each variant)", self.sessions, self.turns)?;
        writeln!(f, "turn with memory       p50 {:.2} ms   p95 {:.2} ms", self.turn_p50_ms, self.turn_p95_ms)?;
        writeln!(f, "turn without memory    p50 {:.2} ms   p95 {:.2} ms", self.bare_p50_ms, self.bare_p95_ms)?;
        writeln!(f, "memory adds at p95     {:.2} ms", self.turn_p95_ms - self.bare_p95_ms)?;
        writeln!(
            f,
            "memory read (turn 1)   p50 {:.2} ms   p95 {:.2} ms",
            self.memory_read_p50_ms, self.memory_read_p95_ms
        )?;
        write!(f, "memory share of turns  {:.1} %", self.memory_share * 100.0)
    }
}

/// The scripted caller: qualifies, picks a slot and gives contact details (no booking, so slots never run out).
const SCRIPT: [&str; 7] = [
    "Hi, my name is Dana. I'm looking for a two-bedroom at Hudson 360.",
    "I've got a cat. What's the pet fee?",
    "I'd like to move in on January 15th.",
    "Around four thousand a month.",
    "A virtual tour, please.",
    "The first one.",
    "My email is dana at example dot com.",
];

async fn run_sessions(
    config: &AgentConfig,
    sessions: usize,
    prefix: &str,
) -> Result<(Vec<Duration>, Vec<Duration>, f64), AgentError> {
    let (mut turns, mut reads, mut memory_total, mut total) = (Vec::new(), Vec::new(), 0.0, 0.0);
    for i in 0..sessions {
        // Half the callers are returning ones (their second session), as on a real line.
        let user = format!("+1555{prefix}{:06}", i / 2);
        let mut planner = AgentPlanner::start(config.clone(), &user, &format!("bench-{prefix}-{i}"));
        for line in SCRIPT {
            let t = Instant::now();
            let reply = planner.process_transcript(line).await?;
            turns.push(t.elapsed());
            total += reply.latency_ms;
            memory_total += reply.memory_ms;
            if reply.memory_ms > 0.0 {
                reads.push(Duration::from_secs_f64(reply.memory_ms / 1000.0));
            }
        }
        planner.finish().await;
    }
    turns.sort();
    reads.sort();
    Ok((turns, reads, if total > 0.0 { memory_total / total } else { 0.0 }))
}

/// Runs the scripted conversation `sessions` times with memory and `sessions` times without.
pub async fn agent_bench(config: AgentConfig, sessions: usize) -> Result<AgentBenchReport, AgentError> {
    let bare = AgentConfig { memory: None, ..config.clone() };
    let (turns, reads, share) = run_sessions(&config, sessions, "1").await?;
    let (bare_turns, _, _) = run_sessions(&bare, sessions, "2").await?;
    Ok(AgentBenchReport {
        sessions,
        turns: turns.len(),
        turn_p50_ms: percentile(&turns, 50),
        turn_p95_ms: percentile(&turns, 95),
        bare_p50_ms: percentile(&bare_turns, 50),
        bare_p95_ms: percentile(&bare_turns, 95),
        memory_read_p50_ms: percentile(&reads, 50),
        memory_read_p95_ms: percentile(&reads, 95),
        memory_share: share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_memories_are_unique_per_user() {
        let users = 10;
        let mut seen = std::collections::HashSet::new();
        for n in 0..800 {
            assert!(seen.insert((n % users, synthetic_text(n, users))), "duplicate at {n}");
        }
    }

    #[test]
    fn percentiles_pick_from_sorted_samples() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50), 51.0);
        assert_eq!(percentile(&v, 95), 96.0);
        assert_eq!(percentile(&[], 95), 0.0);
    }
}
