//! The `tourdesk` command line: one typed tree of commands and options (clap), dispatched to the engine.

pub mod bookings;
pub mod chat;
pub mod memory;
pub mod models;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use tourdesk::config::Overrides;

use memory::MemoryCommand;
use models::ModelsCommand;

/// tourdesk: a local voice agent for a leasing office that books tours and remembers every caller.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// Settings file (TOML); missing is fine
    #[arg(long, global = true, env = "TOURDESK_CONFIG", default_value = "tourdesk.toml")]
    pub config: PathBuf,
    /// Settings that override the file.
    #[command(flatten)]
    pub overrides: Overrides,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch, list and verify model weights.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Store, search and manage memories.
    #[command(subcommand)]
    Memory(MemoryCommand),
    /// The office's view of tours: list, show, cancel.
    #[command(subcommand)]
    Bookings(bookings::BookingsCommand),
    /// Print speed and memory numbers.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Talk with the agent in the terminal; memories carry over between runs for the same --user.
    Chat {
        /// Caller id (a phone number such as +15551230001, or any name)
        #[arg(long, default_value = "+15550000000")]
        user: String,
        /// Session id [default: a new one]
        #[arg(long)]
        session: Option<String>,
        /// Run without caller memory
        #[arg(long)]
        no_memory: bool,
        /// Print the planner state after every reply (to stderr)
        #[arg(long)]
        state: bool,
    },
    /// Walk through a booking call, what memory keeps of it, and a second call that picks up where it left off.
    Demo,
    /// Run the server: the web page (/), the mem0-compatible memory API (/memories, /search, /reset,
    /// /openapi.json), Twilio phone calls (/incoming-call, /media-stream), /ws/chat and /healthz. SIGINT/SIGTERM
    /// finish live turns and flush memory before exiting.
    Serve {
        /// Address to listen on
        #[arg(long, env = "TOURDESK_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Run without caller memory
        #[arg(long)]
        no_memory: bool,
        /// Run without speech models (text chat only; /media-stream answers 503)
        #[arg(long)]
        no_voice: bool,
        /// Do not load the chat model: POST /memories stores messages as they are (infer falls back, and says so)
        #[arg(long)]
        no_infer: bool,
        /// Seconds to wait for live sessions on shutdown
        #[arg(long, default_value_t = 10)]
        grace_secs: u64,
    },
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ingest synthetic memories into a temporary store, then time query embedding and scoped search.
    Memory {
        /// Memories to ingest
        #[arg(long, default_value_t = 100_000)]
        memories: usize,
        /// Users to spread them over
        #[arg(long, default_value_t = 1_000)]
        users: usize,
        /// Timed queries
        #[arg(long, default_value_t = 300)]
        queries: usize,
        /// Memories per ingest batch
        #[arg(long, default_value_t = 512)]
        batch: usize,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Evidence recall on a LoCoMo-format file: every turn imported as a raw memory (one user per conversation),
    /// every question of categories 1–4 asked through `POST /search` of the server on loopback, in a temporary store.
    Recall {
        /// LoCoMo-format JSON (a list of {sample_id, conversation, qa})
        #[arg(long)]
        dataset: PathBuf,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Many callers at once: real /ws/chat clients on a loopback server (text only, a temporary store), each a
    /// seven-turn booking conversation; turn latency, errors, resident memory and memory-write lag per level.
    Load {
        /// Concurrent sessions per level, comma-separated
        #[arg(long, value_delimiter = ',', default_value = "50,100,200")]
        sessions: Vec<usize>,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// How well the agent reads renters speaking freely, on Schema-Guided Dialogue's Homes domain: per slot, on a
    /// call's first turn and in context, and every false fill (a slot set to a value the caller did not give).
    Understanding {
        /// SGD-format JSON (a list of dialogues with turns, frames and actions), e.g. ../shared/eval/sgd_homes_train.json
        #[arg(long)]
        dataset: PathBuf,
        /// Print this many wrong readings and false fills
        #[arg(long, default_value_t = 0)]
        misses: usize,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Time each local chat model: load, prompt and generation speed, and one inferred add of a two-message
    /// exchange (with and without the prompt-prefix cache), in a temporary store.
    Infer {
        /// Chat models from the manifest, comma-separated
        #[arg(long = "model", value_delimiter = ',', default_value = "qwen2.5-0.5b,smollm2-135m")]
        chat_models: Vec<String>,
        /// Timed adds per model and cache setting
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
        runs: u32,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Phone calls against the real server on loopback, caller audio from espeak-ng streamed in real time: the
    /// latency of each voice stage and of end of caller speech → first agent audio.
    Voice {
        /// Rounds of calls of the six-utterance script
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
        calls: u32,
        /// Calls at the same time in each round (how many calls the machine holds)
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        concurrent: u32,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Time agent turns over a scripted conversation, with and without memory, in a temporary store.
    Agent {
        /// Scripted sessions per variant
        #[arg(long, default_value_t = 30)]
        sessions: usize,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
}
