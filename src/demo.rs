//! `tourdesk demo`: a caller's preferences stored on one call and recalled on the next, on the real local models
//! and the real store.

use std::io::Write;

use serde_json::{json, Map, Value};

use crate::memory::{AddInput, AddRequest, Memory, MemoryError, Message, MetadataFilter, Scope, SearchRequest};

/// The demo caller (a normalised phone number, as the phone line would give it).
pub const DEMO_CALLER: &str = "+15551230001";
/// A second caller, who must see none of the first one's memories.
pub const OTHER_CALLER: &str = "+15559870002";

fn meta(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Runs the demo against `memory`, writing a narrated transcript to `out`.
pub async fn memory_demo(memory: &Memory, out: &mut impl Write) -> Result<(), MemoryError> {
    let io = |e: std::io::Error| MemoryError::Invalid(format!("cannot write the demo output: {e}"));
    let caller = Scope::user(DEMO_CALLER);
    let cleared = memory.forget(&caller).await?;
    writeln!(out, "== tourdesk memory demo ({} memories from an earlier run cleared)\n", cleared).map_err(io)?;

    writeln!(out, "-- Call 1 from {DEMO_CALLER}: the exchange is stored as it was said").map_err(io)?;
    let exchange = vec![
        Message { role: "user".into(), content: "Hi, I'm Dana. I'm looking for a two-bedroom at Hudson 360.".into() },
        Message { role: "assistant".into(), content: "Happy to help, Dana. Any pets?".into() },
        Message { role: "user".into(), content: "Yes, I have a cat, and my budget is around $3,000 a month.".into() },
    ];
    let events = memory
        .add(AddRequest {
            input: AddInput::Messages(exchange),
            scope: caller.clone().with_run("demo-call-1"),
            metadata: meta(json!({"kind": "exchange"})),
            actor: Some("demo".into()),
        })
        .await?;
    for e in &events {
        writeln!(out, "   {:<6} {}", e.event.as_str(), e.memory).map_err(io)?;
    }

    writeln!(out, "\n-- Call 1: the planner's state is saved as preferences").map_err(io)?;
    let prefs = [
        ("name", "Caller's name is Dana"),
        ("property", "Interested in Hudson 360"),
        ("bedrooms", "Wants a two-bedroom apartment"),
        ("pets", "Has a cat"),
        ("budget", "Budget is about $3,000 a month"),
        ("tour_type", "Prefers a virtual tour"),
    ];
    let mut budget_id = String::new();
    for (slot, text) in prefs.iter().chain(&[("budget", "Budget is about $3,000 a month")]) {
        let event = memory
            .add(AddRequest {
                input: AddInput::Text(text.to_string()),
                scope: caller.clone(),
                metadata: meta(json!({"kind": "preference", "slot": slot})),
                actor: Some("planner".into()),
            })
            .await?
            .remove(0);
        if *slot == "budget" {
            budget_id = event.id.clone();
        }
        writeln!(out, "   {:<6} {text}", event.event.as_str()).map_err(io)?;
    }
    writeln!(out, "   (the budget was saved twice; the second was an exact duplicate and stored nothing)").map_err(io)?;

    writeln!(out, "\n-- Call 2 from {DEMO_CALLER}: what do we already know?").map_err(io)?;
    for question in ["Does the caller have any pets?", "How much can they spend on rent?", "Which building?"] {
        let mut req = SearchRequest::new(question, caller.clone());
        req.limit = 2;
        writeln!(out, "   Q: {question}").map_err(io)?;
        for hit in memory.search(&req).await? {
            writeln!(out, "      {:.3}  {}", hit.score, hit.item.memory).map_err(io)?;
        }
    }
    let mut req = SearchRequest::new("preferences", caller.clone());
    req.filters = MetadataFilter::parse(&json!({"kind": "preference", "slot": {"in": ["bedrooms", "tour_type"]}}))?;
    writeln!(out, "   Filtered to slots bedrooms and tour_type:").map_err(io)?;
    for hit in memory.search(&req).await? {
        writeln!(out, "      {:.3}  {}", hit.score, hit.item.memory).map_err(io)?;
    }

    writeln!(out, "\n-- Call 2: Dana raises her budget").map_err(io)?;
    memory.update(&budget_id, "Budget is up to $3,400 a month", None, Some("planner")).await?;
    for h in memory.history(&budget_id).await? {
        writeln!(
            out,
            "   {:<6} {} -> {}",
            h.event.as_str(),
            h.old_memory.as_deref().unwrap_or("∅"),
            h.new_memory.as_deref().unwrap_or("∅")
        )
        .map_err(io)?;
    }

    let other = memory.search(&SearchRequest::new("Does the caller have any pets?", Scope::user(OTHER_CALLER))).await?;
    writeln!(out, "\n-- A different caller ({OTHER_CALLER}) asks the same: {} memories found", other.len()).map_err(io)?;
    let total = memory.get_all(&caller, &MetadataFilter::All, crate::memory::MAX_LIMIT).await?.len();
    writeln!(out, "\n{total} memories kept for {DEMO_CALLER} (each run of the demo first forgets this caller).").map_err(io)?;
    Ok(())
}
