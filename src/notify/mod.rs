//! Messages to callers outside the call: tour confirmations by email with a calendar invitation. Every message is
//! kept in the outbox folder as an `.eml` file; with an SMTP server configured it is also sent, and the result says
//! which happened, so the agent tells the caller only what was done.

mod invite;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tracing::{info_span, warn, Instrument};

pub use invite::{Invite, Method};

/// Why a message could not be made or kept.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// An address that is not an email address.
    #[error("{0:?} is not an email address")]
    Address(String),
    /// The message could not be built.
    #[error("cannot build the email: {0}")]
    Build(String),
    /// The SMTP URL is malformed.
    #[error("smtp_url is not usable ({0}); write it as smtps://user:password@host, smtp://host:587?tls=required or smtp://host:port")]
    SmtpUrl(String),
    /// The outbox folder could not be written.
    #[error("cannot write the outbox {path}: {source}; check that the folder is writable")]
    Outbox {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One email: a plain-text body and, when given, a calendar invitation attached.
#[derive(Debug, Clone)]
pub struct Email {
    /// Recipient's name.
    pub to_name: String,
    /// Recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Invitation attached as `invite.ics` (`text/calendar` with its method).
    pub invite: Option<Invite>,
    /// File name in the outbox, without `.eml` (e.g. the confirmation code and sequence).
    pub name: String,
}

/// Where a message went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    /// Accepted by the SMTP server.
    pub sent: bool,
    /// The `.eml` copy in the outbox.
    pub outbox_file: PathBuf,
    /// Why it was not sent, when SMTP is configured and failed.
    pub error: Option<String>,
}

/// Sends mail through SMTP when configured and keeps every message in the outbox. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    outbox: PathBuf,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    timeout: Duration,
}

impl Mailer {
    /// A mailer sending as `from`, keeping copies in `outbox`, through `smtp_url` when given; each send may take
    /// `timeout`.
    pub fn new(from: &str, outbox: &Path, smtp_url: Option<&str>, timeout: Duration) -> Result<Self, NotifyError> {
        let from: Mailbox = from.parse().map_err(|_| NotifyError::Address(from.to_string()))?;
        let smtp = smtp_url
            .map(|url| {
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map(|b| b.timeout(Some(timeout)).build())
                    .map_err(|e| NotifyError::SmtpUrl(e.to_string()))
            })
            .transpose()?;
        Ok(Self { from, outbox: outbox.to_path_buf(), smtp, timeout })
    }

    /// The sender.
    pub fn from_address(&self) -> (String, String) {
        (self.from.name.clone().unwrap_or_default(), self.from.email.to_string())
    }

    /// Where messages go, in words: "sent over SMTP and kept in data/outbox" or "kept in data/outbox (no SMTP
    /// server configured)".
    pub fn describe(&self) -> String {
        match self.smtp {
            Some(_) => format!("sent over SMTP and kept in {}", self.outbox.display()),
            None => format!("kept in {} (no SMTP server configured)", self.outbox.display()),
        }
    }

    /// Whether messages are sent (an SMTP server is configured) rather than only kept in the outbox.
    pub fn sends(&self) -> bool {
        self.smtp.is_some()
    }

    /// Builds the message, writes it to the outbox, and sends it when SMTP is configured. A failed or slow send
    /// is reported in the result (the outbox still has the message); only an unusable address or outbox is an
    /// error.
    pub async fn deliver(&self, email: &Email) -> Result<Delivery, NotifyError> {
        let span = info_span!("mail.deliver", name = %email.name, smtp = self.smtp.is_some());
        async {
            let message = self.build(email)?;
            let outbox_file = self.keep(&email.name, &message.formatted()).await?;
            let Some(smtp) = &self.smtp else { return Ok(Delivery { sent: false, outbox_file, error: None }) };
            // The transport's own timeout covers each command; this one bounds the whole exchange.
            let error = match tokio::time::timeout(self.timeout, smtp.send(message)).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer from the SMTP server within {:?}", self.timeout)),
            };
            if let Some(e) = &error {
                warn!(error = %e, file = %outbox_file.display(), "email not sent; it stays in the outbox");
            }
            Ok(Delivery { sent: error.is_none(), outbox_file, error })
        }
        .instrument(span)
        .await
    }

    fn build(&self, email: &Email) -> Result<lettre::Message, NotifyError> {
        let to = Mailbox::new(
            Some(email.to_name.clone()).filter(|n| !n.is_empty()),
            email.to.parse().map_err(|_| NotifyError::Address(email.to.clone()))?,
        );
        let builder = lettre::Message::builder().from(self.from.clone()).to(to).subject(&email.subject);
        let text = SinglePart::plain(email.body.clone());
        let built = match &email.invite {
            None => builder.singlepart(text),
            Some(invite) => {
                let kind = format!("text/calendar; charset=utf-8; method={}", invite.method.as_str());
                let kind = ContentType::parse(&kind).map_err(|e| NotifyError::Build(e.to_string()))?;
                let ics = Attachment::new("invite.ics".into()).body(invite.to_ics(), kind);
                builder.multipart(MultiPart::mixed().singlepart(text).singlepart(ics))
            }
        };
        built.map_err(|e| NotifyError::Build(e.to_string()))
    }

    /// Writes the message to `<outbox>/<name>.eml` (a temporary file renamed into place, so readers never see a
    /// partial message).
    async fn keep(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, NotifyError> {
        let fail = |source| NotifyError::Outbox { path: self.outbox.clone(), source };
        tokio::fs::create_dir_all(&self.outbox).await.map_err(fail)?;
        let safe: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(80).collect();
        let path = self.outbox.join(format!("{safe}.eml"));
        let partial = self.outbox.join(format!(".{safe}.eml.partial"));
        tokio::fs::write(&partial, bytes).await.map_err(fail)?;
        tokio::fs::rename(&partial, &path).await.map_err(fail)?;
        Ok(path)
    }
}
