//! `tourdesk bookings …`: the office's view of tours from the shell.

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use tourdesk::agent::{parse_office_time, Booking, Office};

/// Tour commands.
#[derive(Debug, Subcommand)]
pub enum BookingsCommand {
    /// List tours, soonest first.
    List {
        /// Only this caller's (user id, e.g. +15551230001)
        #[arg(long)]
        user: Option<String>,
        /// Only tours from this time on: YYYY-MM-DD or YYYY-MM-DDTHH:MM
        #[arg(long)]
        from: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one tour by its confirmation code.
    Show {
        /// Confirmation code
        code: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Cancel a tour: its slot opens again and the caller's memory records the cancellation.
    Cancel {
        /// Confirmation code
        code: String,
        /// Confirm
        #[arg(long)]
        yes: bool,
    },
}

impl BookingsCommand {
    /// Whether the command writes to callers' memory (and so needs the embedder).
    pub fn needs_memory(&self) -> bool {
        matches!(self, Self::Cancel { .. })
    }
}

fn line(b: &Booking) -> String {
    format!(
        "{}  {}  {} tour of {}  {} <{}> {}  ({})",
        b.confirmation,
        b.start.format("%a %Y-%m-%d %H:%M"),
        b.tour_type.spoken(),
        b.property,
        b.name,
        b.email,
        b.phone,
        b.user_id
    )
}

/// Runs a bookings command.
pub async fn run(office: Office, cmd: BookingsCommand) -> Result<()> {
    match cmd {
        BookingsCommand::List { user, from, json } => {
            let from = match from.as_deref() {
                Some(s) => Some(
                    parse_office_time(s)
                        .with_context(|| format!("--from {s:?}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM"))?,
                ),
                None => None,
            };
            let tours = office.list(user.as_deref(), from).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tours)?);
            } else if tours.is_empty() {
                println!("no tours");
            } else {
                tours.iter().for_each(|b| println!("{}", line(b)));
            }
        }
        BookingsCommand::Show { code, json } => {
            let Some(b) = office.show(&code).await? else { bail!("no tour has confirmation code {code:?}") };
            if json {
                println!("{}", serde_json::to_string_pretty(&b)?);
            } else {
                println!("{}", line(&b));
            }
        }
        BookingsCommand::Cancel { code, yes } => {
            if !yes {
                bail!("this cancels the tour and frees its slot; run again with --yes to confirm");
            }
            let Some(done) = office.cancel(&code, "the office").await? else {
                bail!("no tour has confirmation code {code:?}")
            };
            println!("cancelled: {}", line(&done.booking));
            if !done.remembered {
                eprintln!("note: the caller's memory does not record it (memory is off or failed; see the log)");
            }
        }
    }
    Ok(())
}
