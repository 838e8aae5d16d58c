//! Transfers a phone call to the office: Twilio's call-update API replaces the call's TwiML with a `<Dial>` to the
//! office's number, which ends the media stream and rings the office.

use std::time::Duration;

use tracing::instrument;

use super::twilio::normalize_caller;
use crate::inference::ApiKey;

/// How long Twilio's API may take to answer a transfer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a transfer did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The office's number is not a phone number.
    #[error("the office's number {0:?} is not a phone number such as +15551234567")]
    BadNumber(String),
    /// The ids from the media stream's `start` are not Twilio ids.
    #[error("{0} is not a Twilio id (letters and digits expected)")]
    BadId(String),
    /// Twilio could not be reached.
    #[error("Twilio's API at {url} could not be reached: {source}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// What failed.
        source: reqwest::Error,
    },
    /// Twilio refused the update.
    #[error("Twilio refused the transfer with {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Twilio's message.
        body: String,
    },
}

/// Where calls are transferred and how to ask Twilio. Cheap to clone.
#[derive(Clone)]
pub struct CallTransfer {
    http: reqwest::Client,
    api_url: String,
    auth_token: ApiKey,
    office_phone: String,
}

impl CallTransfer {
    /// Transfers to `office_phone` through the Twilio API at `api_url`, authenticated as the call's account with
    /// `auth_token`.
    pub fn new(api_url: &str, auth_token: ApiKey, office_phone: &str) -> Result<Self, TransferError> {
        let office_phone =
            normalize_caller(office_phone).ok_or_else(|| TransferError::BadNumber(office_phone.to_string()))?;
        let http = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap_or_default();
        Ok(Self { http, api_url: api_url.trim_end_matches('/').to_string(), auth_token, office_phone })
    }

    /// The office's number.
    pub fn office_phone(&self) -> &str {
        &self.office_phone
    }

    /// Points call `call_sid` of account `account_sid` at the office: once this returns, Twilio is dialling.
    #[instrument(skip_all, name = "twilio.transfer", fields(call = %call_sid))]
    pub async fn to_office(&self, account_sid: &str, call_sid: &str) -> Result<(), TransferError> {
        for id in [account_sid, call_sid] {
            if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(TransferError::BadId(id.chars().take(64).collect()));
            }
        }
        let url = format!("{}/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json", self.api_url);
        // The number is E.164 (normalised in `new`): digits and a plus, nothing to escape in XML.
        let twiml = format!("<Response><Dial>{}</Dial></Response>", self.office_phone);
        let resp = self
            .http
            .post(&url)
            .basic_auth(account_sid, Some(&self.auth_token.0))
            .form(&[("Twiml", twiml.as_str())])
            .send()
            .await
            .map_err(|source| TransferError::Unreachable { url: url.clone(), source })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default().chars().take(300).collect();
        Err(TransferError::Refused { status: status.as_u16(), body })
    }
}
