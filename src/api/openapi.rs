//! `/openapi.json`: an OpenAPI 3.1 document of the REST API. The paths are listed here, beside the router; the
//! request and response schemas are generated from the Rust types the handlers use (schemars), so they cannot
//! drift from the code. (utoipa would derive the paths too, but it turns on a feature of `indexmap` that the whole
//! dependency tree shares, which costs a ~50-minute rebuild on this machine.)

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::memories::{CreateMemory, Done, Results, SearchBody, UpdateMemory};
use crate::memory::{HistoryEntry, InferredAdd, MemoryItem, SearchHit};

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
            summary: "Delete every memory of a scope",
            body: None,
            response: schema::<Done>(&mut g),
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
            summary: "Change a memory's text",
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
            summary: "Semantic search in a scope, with metadata filters",
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
    ];
    let error = json!({"description": "Error", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}}}});
    let mut paths = Map::new();
    for op in ops {
        let mut parameters = Vec::new();
        if op.path.contains("{memory_id}") {
            parameters.push(json!({"name": "memory_id", "in": "path", "required": true, "schema": {"type": "string"}}));
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
