//! `tourdesk memory …`: the memory engine from the shell, with `--json` on every read.

use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{Map, Value};

use tourdesk::inference::ChatModel;
use tourdesk::memory::{
    import_jsonl, parse_expiration, AddInput, AddRequest, ImportLine, InferredAdd, Memory, MemoryItem, MetadataFilter,
    Scope, SearchRequest, DEFAULT_LIMIT,
};

/// Whose memories: at least one id on writes; reads match every id given.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ScopeArgs {
    /// User id (for callers: the normalised phone number)
    #[arg(long = "user")]
    pub user: Option<String>,
    /// Agent id
    #[arg(long = "agent")]
    pub agent: Option<String>,
    /// Run (session) id
    #[arg(long = "run")]
    pub run: Option<String>,
}

impl From<ScopeArgs> for Scope {
    fn from(a: ScopeArgs) -> Self {
        Scope { user_id: a.user, agent_id: a.agent, run_id: a.run }
    }
}

/// Memory commands.
#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// Store a text, or the messages of an exchange (one memory per user/assistant message).
    Add {
        /// The text to remember (or use --messages)
        text: Option<String>,
        #[command(flatten)]
        scope: ScopeArgs,
        /// Metadata as a JSON object
        #[arg(long)]
        metadata: Option<String>,
        /// JSON file of messages `[{"role": "user", "content": "…"}]`, or - for standard input
        #[arg(long, conflicts_with = "text")]
        messages: Option<PathBuf>,
        /// Let the chat model extract facts and reconcile them with stored memories (ADD/UPDATE/DELETE/NONE)
        #[arg(long)]
        infer: bool,
        /// When the memory expires: YYYY-MM-DD (it lasts through that day, UTC) or an RFC 3339 time
        #[arg(long)]
        expires: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Find the memories most relevant to a query (vector similarity, keywords and dates).
    Search {
        /// What to look for
        query: String,
        #[command(flatten)]
        scope: ScopeArgs,
        /// Metadata filter as JSON, mem0 style: '{"slot": "budget"}', '{"n": {"gte": 2}}'
        #[arg(long)]
        filter: Option<String>,
        /// Most results
        #[arg(long, default_value_t = DEFAULT_LIMIT)]
        limit: usize,
        /// Least cosine similarity to the query (-1..1)
        #[arg(long)]
        threshold: Option<f32>,
        /// Show each result's score parts: vector, keyword, context, speaker, time, question
        #[arg(long)]
        explain: bool,
        /// Include expired memories
        #[arg(long)]
        show_expired: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List memories in a scope, most recently changed first.
    List {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Metadata filter as JSON
        #[arg(long)]
        filter: Option<String>,
        /// Most results
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one memory.
    Get {
        /// Memory id
        id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Replace a memory's text (it is re-embedded).
    Update {
        /// Memory id
        id: String,
        /// New text
        text: String,
        /// New metadata as a JSON object (kept when omitted)
        #[arg(long)]
        metadata: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete one memory (its history is kept).
    Delete {
        /// Memory id
        id: String,
    },
    /// Remove every memory in a scope and all their history, and the old table versions that still hold them, so
    /// no byte of them stays on disk.
    Forget {
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Delete every memory whose expiration date has passed (each one's history records the deletion).
    Cleanup,
    /// Show what happened to a memory, oldest first.
    History {
        /// Memory id
        id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Import memories from JSONL: {"text" | "messages", "user_id", "agent_id", "run_id", "metadata"} a line.
    Import {
        /// JSONL file, or - for standard input
        file: PathBuf,
        /// Memories per write
        #[arg(long, default_value_t = 256)]
        batch: usize,
    },
    /// Export memories as JSONL (the import format), of a scope or of everything.
    Export {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Output file [default: standard output]
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Delete every memory and all history in the store.
    Reset {
        /// Confirm
        #[arg(long)]
        yes: bool,
    },
}

fn parse_object(what: &str, json: Option<&str>) -> Result<Map<String, Value>> {
    match json {
        None => Ok(Map::new()),
        Some(s) => match serde_json::from_str(s).with_context(|| format!("{what} is not valid JSON"))? {
            Value::Object(m) => Ok(m),
            _ => bail!("{what} must be a JSON object"),
        },
    }
}

fn parse_filter(json: Option<&str>) -> Result<MetadataFilter> {
    match json {
        None => Ok(MetadataFilter::All),
        Some(s) => Ok(MetadataFilter::parse(&serde_json::from_str(s).context("--filter is not valid JSON")?)?),
    }
}

fn open_input(path: &PathBuf) -> Result<Box<dyn Read>> {
    if path.as_os_str() == "-" {
        Ok(Box::new(std::io::stdin()))
    } else {
        Ok(Box::new(std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?))
    }
}

fn print_json(value: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn print_item(item: &MemoryItem) {
    let owner: Vec<String> = item.scope.fields().map(|(k, v)| format!("{k}={v}")).collect();
    println!("{}  {}  [{}]", item.id, item.memory, owner.join(" "));
}

impl MemoryCommand {
    /// Whether the command needs the chat model (an inferred add).
    pub fn needs_chat_model(&self) -> bool {
        matches!(self, MemoryCommand::Add { infer: true, .. })
    }
}

/// Runs a memory command; `chat` is the chat model when [`MemoryCommand::needs_chat_model`] said so.
pub async fn run(memory: Memory, chat: Option<Arc<dyn ChatModel>>, cmd: MemoryCommand) -> Result<()> {
    let actor = Some("cli".to_string());
    match cmd {
        MemoryCommand::Add { text, scope, metadata, messages, infer, expires, json } => {
            let input = match (text, messages) {
                (Some(text), None) => AddInput::Text(text),
                (None, Some(path)) => {
                    let mut raw = String::new();
                    open_input(&path)?.read_to_string(&mut raw)?;
                    AddInput::Messages(
                        serde_json::from_str(&raw).context("--messages must be a JSON list of {role, content}")?,
                    )
                }
                _ => bail!("give the text to remember, or --messages FILE"),
            };
            let metadata = parse_object("--metadata", metadata.as_deref())?;
            let expiration_date = expires.as_deref().map(parse_expiration).transpose()?;
            let req = AddRequest { input, scope: scope.into(), metadata, actor, expiration_date, ..Default::default() };
            let added = match chat.filter(|_| infer) {
                Some(chat) => memory.add_inferred(req, chat.as_ref()).await?,
                None => InferredAdd { results: memory.add(req).await?, ..Default::default() },
            };
            if json {
                print_json(&added)?;
            } else {
                if infer {
                    println!(
                        "facts: {}",
                        if added.facts.is_empty() { "(none)".into() } else { added.facts.join("; ") }
                    );
                }
                for e in &added.results {
                    match &e.previous_memory {
                        Some(old) => println!("{:<6} {}  {}  (was: {old})", e.event.as_str(), e.id, e.memory),
                        None => println!("{:<6} {}  {}", e.event.as_str(), e.id, e.memory),
                    }
                }
                if let Some(why) = &added.fallback {
                    eprintln!("warning: {why}");
                }
            }
        }
        MemoryCommand::Search { query, scope, filter, limit, threshold, explain, show_expired, json } => {
            let req = SearchRequest {
                query,
                scope: scope.into(),
                filters: parse_filter(filter.as_deref())?,
                limit,
                threshold,
                explain,
                show_expired,
            };
            let hits = memory.search(&req).await?;
            if json {
                print_json(&hits)?;
            } else if hits.is_empty() {
                println!("no memories found");
            } else {
                for h in hits {
                    match h.score_details {
                        Some(d) => println!(
                            "{:.3} = vector {:.3} + keyword {:.3} + context {:.3} + speaker {:.1} + time {:.2} + \
                             question {:.1} (similarity {:.3})  {}  {}",
                            h.score,
                            d.vector,
                            d.keyword,
                            d.context,
                            d.speaker,
                            d.time,
                            d.question,
                            d.similarity,
                            h.item.id,
                            h.item.memory
                        ),
                        None => println!("{:.3}  {}  {}", h.score, h.item.id, h.item.memory),
                    }
                }
            }
        }
        MemoryCommand::List { scope, filter, limit, json } => {
            let items = memory.get_all(&scope.into(), &parse_filter(filter.as_deref())?, limit).await?;
            if json {
                print_json(&items)?;
            } else {
                items.iter().for_each(print_item);
            }
        }
        MemoryCommand::Get { id, json } => {
            let item = memory.get(&id).await?;
            if json {
                print_json(&item)?;
            } else {
                print_item(&item);
            }
        }
        MemoryCommand::Update { id, text, metadata, json } => {
            let metadata = metadata.as_deref().map(|m| parse_object("--metadata", Some(m))).transpose()?;
            let event = memory.update(&id, &text, metadata, actor.as_deref()).await?;
            if json {
                print_json(&event)?;
            } else {
                println!("UPDATE {id}: {} -> {}", event.previous_memory.unwrap_or_default(), event.memory);
            }
        }
        MemoryCommand::Delete { id } => {
            let event = memory.delete(&id, actor.as_deref()).await?;
            println!("DELETE {id}: {}", event.memory);
        }
        MemoryCommand::Forget { scope } => {
            let r = memory.forget(&scope.into()).await?;
            println!(
                "forgot {} memories and {} history entries; removed {} old table versions ({} bytes) that still held them",
                r.memories, r.history_entries, r.versions_removed, r.bytes_removed
            );
        }
        MemoryCommand::Cleanup => {
            let deleted = memory.cleanup_expired(actor.as_deref()).await?;
            for e in &deleted {
                println!("DELETE {}: {}", e.id, e.memory);
            }
            println!("deleted {} expired memories", deleted.len());
        }
        MemoryCommand::History { id, json } => {
            let entries = memory.history(&id).await?;
            if json {
                print_json(&entries)?;
            } else if entries.is_empty() {
                println!("no history for {id}");
            } else {
                for h in entries {
                    println!(
                        "{}  {:<6} {} -> {}",
                        h.created_at.to_rfc3339(),
                        h.event.as_str(),
                        h.old_memory.as_deref().unwrap_or("∅"),
                        h.new_memory.as_deref().unwrap_or("∅")
                    );
                }
            }
        }
        MemoryCommand::Import { file, batch } => import(&memory, &file, batch.max(1)).await?,
        MemoryCommand::Export { scope, output } => {
            let scope: Scope = scope.into();
            let items = memory.export(if scope.is_empty() { None } else { Some(&scope) }).await?;
            let mut out: Box<dyn Write> = match &output {
                Some(path) => {
                    Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
                }
                None => Box::new(std::io::stdout().lock()),
            };
            for item in &items {
                let line = ImportLine {
                    expiration_date: item.expiration_date,
                    timestamp: Some(item.created_at),
                    text: Some(item.memory.clone()),
                    messages: None,
                    scope: item.scope.clone(),
                    role: item.role.clone(),
                    metadata: item.metadata.clone(),
                };
                writeln!(out, "{}", serde_json::to_string(&line)?)?;
            }
            out.flush()?;
            eprintln!("exported {} memories", items.len());
        }
        MemoryCommand::Reset { yes } => {
            if !yes {
                bail!("this deletes every memory and all history; run again with --yes to confirm");
            }
            memory.reset().await?;
            println!("memory store reset");
        }
    }
    Ok(())
}

/// Reads JSONL with a progress bar; a bad line is reported with its number and skipped, good lines are all
/// imported.
async fn import(memory: &Memory, file: &PathBuf, batch: usize) -> Result<()> {
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let bar = if size > 0 { ProgressBar::new(size) } else { ProgressBar::new_spinner() };
    bar.set_style(
        ProgressStyle::with_template("import [{bar:40}] {bytes}/{total_bytes} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let reader = BufReader::new(open_input(file)?);
    let report = import_jsonl(memory, reader, batch, |bytes, added| {
        bar.set_position(bytes);
        bar.set_message(format!("{added} added"));
    })
    .await?;
    bar.finish_and_clear();
    for (line, why) in &report.skipped {
        eprintln!("line {line}: {why}; skipped");
    }
    eprintln!("imported {} memories ({} exact duplicates skipped)", report.added, report.duplicates);
    if !report.skipped.is_empty() {
        bail!("{} line(s) were not imported; see the messages above", report.skipped.len());
    }
    Ok(())
}
