//! `/openapi.json`: an OpenAPI 3.1 document of the REST API. The paths are listed here, beside the router; the
//! request and response schemas are generated from the Rust types the handlers use (schemars), so they cannot
//! drift from the code. (utoipa would derive the paths too, but it turns on a feature of `indexmap` that the whole
//! dependency tree shares, which costs a ~50-minute rebuild on this machine.)

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::memories::{CreateMemory, Done, Forgotten, Results, SearchBody, UpdateMemory};
use super::platform::{Batch, Entity, ListBody, PageOf};
use crate::agent::{Booking, Cancelled};
use crate::memory::{HistoryEntry, InferredAdd, LoggedMessage, MemoryItem, SearchHit};

/// One operation.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<Value>,
    response: Value,
    /// Takes `user_id`/`agent_id`/`run_id` query parameters.
    scoped: bool,
}

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    generator.subschema_for::<T>().to_value()
}

/// The document.
pub fn document() -> Value {
    let mut g =
        SchemaSettings::draft2020_12().with(|s| s.definitions_path = "/components/schemas".into()).into_generator();
    let ops = [
        Op {
            method: "post",
            path: "/memories",
            summary: "Remember messages (infer: extract facts and reconcile them, mem0's default)",
            body: Some(schema::<CreateMemory>(&mut g)),
            response: schema::<InferredAdd>(&mut g),
            scoped: false,
        },
        Op {
            method: "get",
            path: "/memories",
            summary: "List a scope's memories",
            body: None,
            response: schema::<Results<MemoryItem>>(&mut g),
            scoped: true,
        },
        Op {
            method: "delete",
            path: "/memories",
            summary: "Forget a scope: its memories, their history, and the old table versions holding them",
            body: None,
            response: schema::<Forgotten>(&mut g),
            scoped: true,
        },
        Op {
            method: "get",
            path: "/memories/{memory_id}",
            summary: "One memory (404 outside the ids given)",
            body: None,
            response: schema::<MemoryItem>(&mut g),
            scoped: true,
        },
        Op {
            method: "put",
            path: "/memories/{memory_id}",
            summary: "Change a memory's text, metadata or expiration date",
            body: Some(schema::<UpdateMemory>(&mut g)),
            response: json!({"type": "object"}),
            scoped: true,
        },
        Op {
            method: "delete",
            path: "/memories/{memory_id}",
            summary: "Delete a memory",
            body: None,
            response: schema::<Done>(&mut g),
            scoped: true,
        },
        Op {
            method: "get",
            path: "/memories/{memory_id}/history",
            summary: "A memory's changes, oldest first",
            body: None,
            response: schema::<Vec<HistoryEntry>>(&mut g),
            scoped: true,
        },
        Op {
            method: "post",
            path: "/search",
            summary: "Hybrid search (vector + keyword + time) in a scope; ids at the top level or in filters",
            body: Some(schema::<SearchBody>(&mut g)),
            response: schema::<Results<SearchHit>>(&mut g),
            scoped: false,
        },
        Op {
            method: "post",
            path: "/reset",
            summary: "Delete every memory and all history",
            body: None,
            response: schema::<Done>(&mut g),
            scoped: false,
        },
        Op {
            method: "get",
            path: "/messages",
            summary: "The message log of a caller, agent or session (run_id), in order (query: last = how many)",
            body: None,
            response: schema::<Results<LoggedMessage>>(&mut g),
            scoped: false,
        },
        Op {
            method: "get",
            path: "/bookings",
            summary: "Tours, soonest first (query: user_id; from = YYYY-MM-DD or YYYY-MM-DDTHH:MM)",
            body: None,
            response: schema::<Results<Booking>>(&mut g),
            scoped: false,
        },
        Op {
            method: "get",
            path: "/bookings/{code}",
            summary: "One tour by confirmation code",
            body: None,
            response: schema::<Booking>(&mut g),
            scoped: false,
        },
        Op {
            method: "delete",
            path: "/bookings/{code}",
            summary: "Cancel a tour: the slot opens again and the caller's memory records it",
            body: None,
            response: schema::<Cancelled>(&mut g),
            scoped: false,
        },
        Op {
            method: "get",
            path: "/v1/ping/",
            summary: "mem0 platform: check the key (the official MemoryClient calls it first)",
            body: None,
            response: json!({"type": "object"}),
            scoped: false,
        },
        Op {
            method: "post",
            path: "/v3/memories/add/",
            summary: "mem0 platform: remember messages (answered when done)",
            body: Some(schema::<CreateMemory>(&mut g)),
            response: schema::<InferredAdd>(&mut g),
            scoped: false,
        },
        Op {
            method: "post",
            path: "/v3/memories/",
            summary: "mem0 platform: list a scope's memories (ids in filters; page, page_size in the query)",
            body: Some(schema::<ListBody>(&mut g)),
            response: schema::<PageOf>(&mut g),
            scoped: false,
        },
        Op {
            method: "post",
            path: "/v3/memories/search/",
            summary: "mem0 platform: hybrid search (ids in filters)",
            body: Some(schema::<SearchBody>(&mut g)),
            response: schema::<Results<SearchHit>>(&mut g),
            scoped: false,
        },
        Op {
            method: "delete",
            path: "/v1/memories/",
            summary: "mem0 platform: forget a scope",
            body: None,
            response: schema::<Forgotten>(&mut g),
            scoped: true,
        },
        Op {
            method: "get",
            path: "/v1/memories/{memory_id}/",
            summary: "mem0 platform: one memory",
            body: None,
            response: schema::<MemoryItem>(&mut g),
            scoped: false,
        },
        Op {
            method: "put",
            path: "/v1/memories/{memory_id}/",
            summary: "mem0 platform: change a memory",
            body: Some(schema::<UpdateMemory>(&mut g)),
            response: json!({"type": "object"}),
            scoped: false,
        },
        Op {
            method: "delete",
            path: "/v1/memories/{memory_id}/",
            summary: "mem0 platform: delete a memory",
            body: None,
            response: schema::<Done>(&mut g),
            scoped: false,
        },
        Op {
            method: "get",
            path: "/v1/memories/{memory_id}/history/",
            summary: "mem0 platform: a memory's changes",
            body: None,
            response: schema::<Vec<HistoryEntry>>(&mut g),
            scoped: false,
        },
        Op {
            method: "get",
            path: "/v1/entities/",
            summary: "mem0 platform: every user, agent and run that owns memories",
            body: None,
            response: schema::<Results<Entity>>(&mut g),
            scoped: false,
        },
        Op {
            method: "put",
            path: "/v1/batch/",
            summary: "mem0 platform: change up to 1000 memories",
            body: Some(schema::<Batch>(&mut g)),
            response: json!({"type": "object"}),
            scoped: false,
        },
        Op {
            method: "delete",
            path: "/v1/batch/",
            summary: "mem0 platform: delete up to 1000 memories",
            body: Some(schema::<Batch>(&mut g)),
            response: json!({"type": "object"}),
            scoped: false,
        },
    ];
    let error = json!({"description": "Error", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}}}});
    let mut paths = Map::new();
    for op in ops {
        let mut parameters = Vec::new();
        if op.path.contains("{memory_id}") {
            parameters.push(json!({"name": "memory_id", "in": "path", "required": true, "schema": {"type": "string"}}));
        }
        if op.path.contains("{code}") {
            parameters.push(json!({"name": "code", "in": "path", "required": true, "schema": {"type": "string"}}));
        }
        if op.scoped {
            for id in ["user_id", "agent_id", "run_id"] {
                parameters.push(json!({"name": id, "in": "query", "required": false, "schema": {"type": "string"}}));
            }
        }
        let mut operation = json!({
            "summary": op.summary,
            "parameters": parameters,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": op.response}}},
                "400": error, "401": error, "404": error, "413": error, "422": error,
            },
            "security": [{"bearer": []}, {"apiKey": []}],
        });
        if let Some(body) = op.body {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": body}}});
        }
        let entry = paths.entry(op.path).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tourdesk memory API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "mem0-compatible memory REST API of tourdesk. Authenticate with `Authorization: Bearer \
                            <TOURDESK_API_KEY>` or `X-API-Key`.",
        },
        "paths": paths,
        "components": {
            "schemas": g.take_definitions(true),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    })
}
