//! The `tourdesk` binary: parses the command line, loads settings, and dispatches to the engine.

mod cli;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{BenchCommand, Cli, Command};
use tourdesk::bench::{
    agent_bench, infer_bench, load_bench, memory_bench, recall_bench, understanding_bench, voice_bench,
    MemoryBenchOptions,
};
use tourdesk::config::Settings;
use tourdesk::engine;
use tourdesk::models::ModelStore;

fn main() -> ExitCode {
    pin_candle_threads();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(async_main()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Two settings of candle's CPU threads, each kept when the user set it. Done here, before any thread starts,
/// because changing the environment while other threads read it is unsound.
///
/// - candle works out its thread count on every matrix product, by reading `/proc/cpuinfo` unless
///   `CANDLE_NUM_THREADS` is set: about 0.2 ms of a 2.5 ms query embedding. It is set once to the count candle itself
///   chose.
/// - After each product the helper threads of candle's int8 kernels spin for 25,000 rounds before they sleep,
///   holding a core the store's reads need (and a helper waiting for a core stalls the product): `bench memory` at
///   20,000 memories had search p95 20.6 ms. With 2,000 rounds (`CANDLE_BARRIER_POOL_SPIN_LIMIT`) it was 9.8 ms.
fn pin_candle_threads() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", candle_core::utils::get_num_threads().to_string());
    }
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "2000");
    }
}

async fn async_main() -> ExitCode {
    // Span close events carry each span's busy and idle time: `RUST_LOG=tourdesk=debug` shows the latency of every
    // model call, store call and turn.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let settings = Settings::load(&cli.config, &cli.overrides)?;
    match cli.command {
        Command::Models(cmd) => cli::models::run(ModelStore::new(&settings.models)?, cmd).await,
        Command::Memory(cmd) => {
            let chat = if cmd.needs_chat_model() { Some(engine::start_chat(&settings).await?) } else { None };
            cli::memory::run(engine::open_memory(&settings).await?, chat, cmd).await
        }
        Command::Bookings(cmd) => {
            let config = engine::agent_config(&settings, cmd.needs_memory()).await?;
            cli::bookings::run(config.office(), cmd).await
        }
        Command::Chat { user, session, no_memory, state } => {
            let config = engine::agent_config(&settings, !no_memory).await?;
            cli::chat::run(config, &user, session, state).await
        }
        Command::Serve { listen, no_memory, no_voice, no_infer, grace_secs } => {
            if settings.api_key.is_none() && !listen.ip().is_loopback() {
                anyhow::bail!(
                    "refusing to listen on {listen} without an API key: set TOURDESK_API_KEY (or --api-key), or \
                     listen on loopback (127.0.0.1)"
                );
            }
            let parts = engine::ServeParts { memory: !no_memory, voice: !no_voice, infer: !no_infer };
            let state = engine::app_state(&settings, parts).await?;
            let cleanup = match (&state.agent.memory, settings.cleanup_interval_secs) {
                (Some(service), secs) if secs > 0 => {
                    Some(engine::spawn_expiry_cleanup(service.memory().clone(), std::time::Duration::from_secs(secs)))
                }
                _ => None,
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen} (in use? pick another with --listen)"))?;
            let addr = listener.local_addr()?;
            eprintln!("tourdesk listening on http://{addr}; Ctrl-C stops");
            eprintln!("  /               web page: talk to the agent, inspect a caller's memories");
            eprintln!("  /memories …     mem0-compatible memory API (/search, /reset; /openapi.json describes it)");
            eprintln!("  /ws/chat        JSON text chat (laptop demos)");
            if state.api_key.is_none() {
                eprintln!("  (TOURDESK_API_KEY is not set: no authentication, so only loopback addresses are allowed)");
            }
            if state.voice.is_some() {
                eprintln!("  /incoming-call  Twilio voice webhook (POST) → TwiML streaming the call to /media-stream");
                eprintln!("  /media-stream   Twilio Media Streams ({})", settings.stt_model);
                if state.twilio_auth_token.is_none() {
                    eprintln!("  (TWILIO_AUTH_TOKEN is not set: Twilio requests are not signature-checked)");
                }
            }
            tourdesk::app::serve(
                listener,
                state,
                tourdesk::app::os_signal(),
                std::time::Duration::from_secs(grace_secs),
            )
            .await
            .context("server failed")?;
            if let Some(task) = cleanup {
                task.abort();
            }
            Ok(())
        }
        Command::Demo => {
            let config = engine::agent_config(&settings, true).await?;
            tourdesk::demo::run_demo(config, &mut std::io::stdout().lock()).await?;
            Ok(())
        }
        Command::Bench(BenchCommand::Memory { memories, users, queries, batch, json }) => {
            let embedder = engine::start_embedder(&settings).await?;
            let dir = tempfile::tempdir().context("cannot create a temporary folder for the benchmark store")?;
            let uri = dir.path().to_str().context("temporary folder path is not UTF-8")?;
            let opts = MemoryBenchOptions { memories, users, queries, batch, progress: !json };
            let onnx = engine::onnx_reference(&settings).map_err(|e| e.to_string());
            let report = memory_bench(embedder, uri, &opts, onnx).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Understanding { dataset, misses, json }) => {
            let mut report = understanding_bench(&dataset, &tourdesk::agent::Catalog::builtin()?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
                report.misses.truncate(misses);
                for m in &report.misses {
                    println!("  {} [{}] gold {:?} read {:?}: {}", m.dialogue, m.slot, m.gold, m.read, m.utterance);
                }
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Load { sessions, json }) => {
            anyhow::ensure!(
                !sessions.is_empty() && sessions.iter().all(|n| (1..=2000).contains(n)),
                "--sessions takes levels from 1 to 2000, e.g. 50,100,200"
            );
            let (_dir, scratch) = scratch_settings(settings)?;
            let parts = engine::ServeParts { memory: true, voice: false, infer: false };
            let state = engine::app_state(&scratch, parts).await?;
            let report = load_bench(state, &sessions).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Recall { dataset, json }) => {
            let (_dir, scratch) = scratch_settings(settings)?;
            let parts = engine::ServeParts { memory: true, voice: false, infer: false };
            let state = engine::app_state(&scratch, parts).await?;
            let report = recall_bench(state, &dataset, !json).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Infer { chat_models: models, runs, json }) => {
            let embedder = engine::start_embedder(&settings).await?;
            let dir = tempfile::tempdir().context("cannot create a temporary folder for the benchmark store")?;
            let uri = dir.path().to_str().context("temporary folder path is not UTF-8")?;
            if !json {
                eprintln!(
                    "timing {} model(s), {runs} inferred adds each with and without the prefix cache…",
                    models.len()
                );
            }
            let report = infer_bench(embedder, &settings.models, &models, uri, runs as usize).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Voice { calls, concurrent, json }) => {
            let (_dir, scratch) = scratch_settings(settings)?;
            let parts = engine::ServeParts { memory: true, voice: true, infer: false };
            let state = engine::app_state(&scratch, parts).await?;
            if !json {
                eprintln!("{calls} round(s) of {concurrent} call(s) at once, 6 utterances each, in real time…");
            }
            let report = voice_bench(state, &scratch.recordings, calls as usize, concurrent as usize).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Agent { sessions, json }) => {
            let (_dir, scratch) = scratch_settings(settings)?;
            let mut config = engine::agent_config(&scratch, true).await?;
            config.now = Some(
                chrono::NaiveDate::from_ymd_opt(2026, 11, 24)
                    .and_then(|d| d.and_hms_opt(9, 0, 0))
                    .context("fixed bench clock")?,
            );
            let report = agent_bench(config, sessions).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
    }
}

/// `settings` with memories and recordings in a new temporary folder (removed when the returned guard drops), so a
/// benchmark never touches the user's data.
fn scratch_settings(settings: Settings) -> Result<(tempfile::TempDir, Settings)> {
    let dir = tempfile::tempdir().context("cannot create a temporary folder for the benchmark store")?;
    let scratch = Settings {
        data: dir.path().join("db").to_str().context("temporary folder path is not UTF-8")?.to_string(),
        recordings: dir.path().join("recordings"),
        ..settings
    };
    Ok((dir, scratch))
}
