//! tourdesk: a local, offline-capable voice agent for a leasing office that books apartment tours and remembers
//! every caller. This crate holds the engine; the `tourdesk` binary is a thin command line over it.

pub mod agent;
pub mod api;
pub mod app;
pub mod bench;
pub mod config;
pub mod demo;
pub mod engine;
pub mod inference;
pub mod memory;
pub mod models;
pub mod notify;
pub mod realtime;
pub mod recorder;
pub mod speech;
