//! `tourdesk chat`: a conversation with the agent in the terminal (or over a pipe), with memory across runs.

use std::io::IsTerminal;

use anyhow::Result;
use tokio::io::{AsyncBufReadExt, BufReader};

use tourdesk::agent::{AgentConfig, AgentPlanner};

/// Talks with the agent until end of input or `bye`.
pub async fn run(config: AgentConfig, user: &str, session: Option<String>, show_state: bool) -> Result<()> {
    let interactive = std::io::stdin().is_terminal();
    let session = session.unwrap_or_else(|| format!("chat-{}", uuid::Uuid::new_v4().simple()));
    let mut planner = AgentPlanner::start(config, user, &session);
    if interactive {
        eprintln!("tourdesk chat as {user} (session {session}); say hello, or `bye` to hang up.");
        eprint!("you> ");
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if matches!(line.to_lowercase().as_str(), "bye" | "quit" | "exit" | "goodbye") {
            break;
        }
        let reply = planner.process_transcript(line).await?;
        println!("agent> {}", reply.text);
        if show_state {
            eprintln!("state> {}", serde_json::to_string(&reply.state)?);
        }
        if interactive {
            eprint!("you> ");
        }
    }
    planner.finish().await;
    if let Some(path) = planner.recording() {
        eprintln!("conversation recorded in {}", path.display());
    }
    Ok(())
}
