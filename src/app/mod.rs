//! The application both transports serve: the shared state ([`AppState`]) that the memory API (`api/`) and the
//! realtime routes (`realtime/`) each depend on — never on each other — and the server that mounts them on one
//! router.

mod server;
mod shutdown;
mod state;

pub use server::{os_signal, router, serve, LoopbackServer, MAX_BODY};
pub use shutdown::{SessionGuard, Shutdown};
pub use state::AppState;
