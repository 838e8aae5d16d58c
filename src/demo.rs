//! `tourdesk demo`: the seed's walk-through on the real local models and store. A caller books a tour; the
//! conversation and the planner's state are saved as memories; the caller's context is retrieved and searched;
//! a second call is greeted by name, hears its tour and moves it (the tour's memory keeps the story, the emails go
//! to the outbox or over SMTP); another caller knows nothing of it.

use std::io::Write;

use crate::agent::{AgentConfig, AgentError, AgentPlanner, MemoryService, Slot};
use crate::memory::Scope;

/// The demo caller (a normalised phone number, as the phone line gives it).
pub const DEMO_CALLER: &str = "+15551230001";
/// A second caller, who must see none of the first one's memories.
pub const OTHER_CALLER: &str = "+15559870002";

async fn conversation(planner: &mut AgentPlanner, lines: &[&str], out: &mut impl Write) -> Result<(), AgentError> {
    for line in lines {
        let reply = planner.process_transcript(line).await?;
        writeln!(out, "  caller: {line}").map_err(io)?;
        writeln!(out, "  agent:  {}   [{:.1} ms]", reply.text, reply.latency_ms).map_err(io)?;
    }
    Ok(())
}

fn io(e: std::io::Error) -> AgentError {
    AgentError::Catalog(format!("cannot write the demo output: {e}"))
}

/// Runs the demo with `config` (which must have memory), writing a narrated transcript to `out`.
pub async fn run_demo(config: AgentConfig, out: &mut impl Write) -> Result<(), AgentError> {
    let service: MemoryService =
        config.memory.clone().ok_or_else(|| AgentError::Catalog("the demo needs memory".into()))?;
    // A rerun starts from scratch: the tours an earlier run booked are cancelled (their slots open again), then
    // everything remembered about the demo caller is forgotten.
    for tour in config.tools.bookings_for(DEMO_CALLER).await? {
        config.tools.bookings().cancel(&tour.confirmation).await?;
    }
    let cleared = service.memory().forget(&Scope::user(DEMO_CALLER)).await?.memories;
    writeln!(out, "== tourdesk demo ({cleared} memories of {DEMO_CALLER} from an earlier run forgotten first)\n")
        .map_err(io)?;

    writeln!(out, "-- Call 1 from {DEMO_CALLER}").map_err(io)?;
    let mut call = AgentPlanner::start(config.clone(), DEMO_CALLER, &format!("demo-{}", uuid::Uuid::new_v4().simple()));
    conversation(
        &mut call,
        &[
            "Hi, my name is Dana. I'm looking for a two-bedroom at Hudson 360.",
            "I've got a cat. What's the pet fee?",
            "I'd like to move in around the middle of January, say January 15th.",
            "Around four thousand a month.",
            "A virtual tour, please.",
            "The first one.",
            "My email is dana at example dot com.",
            "Yes, please book it.",
        ],
        out,
    )
    .await?;
    let recording = call.recording();
    call.finish().await;
    if let Some(path) = recording {
        writeln!(out, "  (flight recorder: {})", path.display()).map_err(io)?;
    }

    writeln!(out, "\n-- What memory holds about {DEMO_CALLER} now").map_err(io)?;
    let summary = service.get_user_summary(DEMO_CALLER, config.tools.catalog()).await?;
    writeln!(out, "  summary: {summary}").map_err(io)?;
    for query in ["does the caller have pets?", "what did they ask about fees?"] {
        writeln!(out, "  search {query:?}:").map_err(io)?;
        for hit in service.search(DEMO_CALLER, query, 2).await? {
            writeln!(out, "    {:.3}  {}", hit.score, hit.item.memory).map_err(io)?;
        }
    }
    if let Some(item) = service.slot_memory(DEMO_CALLER, Slot::Budget).await? {
        writeln!(out, "  history of the budget memory:").map_err(io)?;
        for h in service.memory().history(&item.id).await? {
            writeln!(out, "    {:<6} {}", h.event.as_str(), h.new_memory.as_deref().unwrap_or("∅")).map_err(io)?;
        }
    }

    writeln!(out, "\n-- Call 2 from {DEMO_CALLER}: a new session picks up where the first left off").map_err(io)?;
    let mut call = AgentPlanner::start(config.clone(), DEMO_CALLER, &format!("demo-{}", uuid::Uuid::new_v4().simple()));
    conversation(
        &mut call,
        &[
            "Hi, it's me again.",
            "I'd like to move it, please.",
            "The second one.",
            "Yes.",
            "When is my tour?",
            "No, that's all. Thanks!",
        ],
        out,
    )
    .await?;
    call.finish().await;
    if let Some(tour) = service
        .memory()
        .get_all(
            &Scope::user(DEMO_CALLER),
            &crate::memory::MetadataFilter::parse(&serde_json::json!({"kind": "booking"}))?,
            1,
        )
        .await?
        .pop()
    {
        writeln!(out, "  the tour's memory and its history:").map_err(io)?;
        for h in service.memory().history(&tour.id).await? {
            writeln!(out, "    {:<6} {}", h.event.as_str(), h.new_memory.as_deref().unwrap_or("∅")).map_err(io)?;
        }
    }
    if let Some(outbox) = &config.mailer {
        writeln!(out, "  confirmations: {}", outbox.describe()).map_err(io)?;
    }

    writeln!(out, "\n-- Call from {OTHER_CALLER}, who has never called").map_err(io)?;
    let mut call = AgentPlanner::start(config, OTHER_CALLER, &format!("demo-{}", uuid::Uuid::new_v4().simple()));
    conversation(&mut call, &["Hello?"], out).await?;
    call.finish().await;
    Ok(())
}
