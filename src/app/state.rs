//! What every handler of both transports shares: the agent's configuration, speech for phone calls, the keys, and
//! the shutdown signal.

use super::shutdown::Shutdown;
use crate::agent::AgentConfig;
use crate::inference::ApiKey;
use crate::speech::Voice;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Everything a session's planner needs; each session gets its own planner.
    pub agent: AgentConfig,
    /// Tells sessions to wrap up, and counts them.
    pub shutdown: Shutdown,
    /// Speech for phone calls; `None` refuses `/media-stream`.
    pub voice: Option<Voice>,
    /// The server's public URL as Twilio reaches it (`https://…`); the Host header when `None`.
    pub public_url: Option<String>,
    /// Twilio's auth token: `X-Twilio-Signature` is checked on `/incoming-call` and `/media-stream` with it;
    /// `None` accepts every request.
    pub twilio_auth_token: Option<ApiKey>,
    /// The office's number (E.164) a caller pressing 0 is transferred to; `None`: no transfers.
    pub office_phone: Option<String>,
    /// Twilio's REST API base URL, called for transfers.
    pub twilio_api_url: String,
    /// The chat model for inferred memory adds through the API; `None` stores messages as they are.
    pub chat: Option<std::sync::Arc<dyn crate::inference::ChatModel>>,
    /// Required on the memory API and `/ws/chat` when set.
    pub api_key: Option<ApiKey>,
}

impl AppState {
    /// A server for `agent` with no voice and no signature check.
    pub fn new(agent: AgentConfig) -> Self {
        Self {
            agent,
            shutdown: Shutdown::default(),
            voice: None,
            public_url: None,
            twilio_auth_token: None,
            office_phone: None,
            twilio_api_url: "https://api.twilio.com".into(),
            chat: None,
            api_key: None,
        }
    }
}
