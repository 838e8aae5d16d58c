//! Tour confirmations reach the caller: a real SMTP server on loopback (Python's aiosmtpd, installed by
//! `scripts/setup.sh`) receives the booking's email, and its `.ics` invitation is parsed back by the `icalendar`
//! package; a move sends an update (same UID, higher SEQUENCE) and a cancellation a METHOD:CANCEL. With the SMTP
//! server gone, the outbox keeps the message and the agent does not claim it was sent.

mod common;

use std::time::Duration;

use serde_json::Value;
use tourdesk::agent::{AgentConfig, AgentPlanner, MemoryService};
use tourdesk::notify::Mailer;

const DANA: &str = "+15551230001";

/// The SMTP server: the child and the JSON lines it prints per message received.
struct SmtpSink {
    client: common::PythonClient,
    port: u16,
}

impl SmtpSink {
    async fn start() -> Self {
        let client = common::PythonClient::start("smtp_sink.py", &[], Duration::from_secs(20)).await;
        let port = client.ready["port"].as_u64().expect("the sink prints its port") as u16;
        Self { client, port }
    }

    /// The next message received, as the sink parsed it.
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(20), self.client.lines.next_line()).await.unwrap().unwrap();
        serde_json::from_str(&line.expect("a message arrives")).unwrap()
    }
}

fn mailer(dir: &tempfile::TempDir, smtp: Option<&str>) -> Mailer {
    Mailer::new(
        "Harborline Leasing <tours@harborline.example>",
        &dir.path().join("outbox"),
        smtp,
        Duration::from_secs(5),
    )
    .unwrap()
}

async fn call(config: &AgentConfig, session: &str) -> AgentPlanner {
    let planner = AgentPlanner::start(config.clone(), DANA, session);
    planner
}

async fn say(p: &mut AgentPlanner, text: &str) -> String {
    p.process_transcript(text).await.unwrap().text
}

/// Books Dana's virtual tour of Hudson 360 on Friday, November 27 at 11 AM; returns the last reply and the code.
async fn book(config: &AgentConfig) -> (String, String) {
    let mut c = call(config, "CA-mail-1").await;
    for line in [
        "Hi, my name is Dana. I'm looking for a two-bedroom at Hudson 360.",
        "I've got a cat.",
        "I'd like to move in on January 15th",
        "Around four thousand a month",
        "A virtual tour please",
        "Friday at 11",
        "my email is dana at example dot com",
    ] {
        say(&mut c, line).await;
    }
    let done = say(&mut c, "Yes, book it").await;
    let code = c.state().confirmation.clone().expect("booked");
    c.finish().await;
    (done, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_arrive_over_smtp_with_invitations_that_parse() {
    let mut sink = SmtpSink::start().await;
    let (memory, dir) = common::fresh_memory().await;
    let mut config = common::agent_in(&dir, MemoryService::new(memory)).await;
    config.mailer = Some(mailer(&dir, Some(&format!("smtp://127.0.0.1:{}", sink.port))));

    let (done, code) = book(&config).await;
    assert!(done.contains("I've emailed the details to dana@example.com"), "{done}");
    let mail = sink.next().await;
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["dana@example.com"]));
    assert_eq!(mail["mail_from"], "tours@harborline.example");
    assert!(mail["subject"].as_str().unwrap().contains("virtual tour of Hudson 360"), "{mail}");
    assert!(mail["text"].as_str().unwrap().contains(&format!("Confirmation code: {code}")), "{mail}");
    let invite = &mail["invites"][0];
    assert_eq!(invite["method"], "REQUEST");
    assert_eq!(invite["version"], "2.0");
    assert_eq!(invite["uid"], format!("{code}@tourdesk"));
    assert_eq!(invite["sequence"], 0);
    assert_eq!(invite["status"], "CONFIRMED");
    assert_eq!(invite["tzid"], "America/New_York");
    assert!(invite["dtstart"].as_str().unwrap().starts_with("2026-11-27T11:00:00"), "{invite}");
    assert!(invite["dtend"].as_str().unwrap().starts_with("2026-11-27T11:30:00"), "{invite}");
    assert!(invite["attendees"][0].as_str().unwrap().eq_ignore_ascii_case("mailto:dana@example.com"), "{invite}");
    assert!(invite["content_type"].as_str().unwrap().replace('"', "").contains("method=REQUEST"), "{invite}");
    assert!(invite["dtstart"].as_str().unwrap().ends_with("-05:00"), "the zone is applied: {invite}");

    // A move: the same event, a higher sequence.
    let mut c = call(&config, "CA-mail-2").await;
    say(&mut c, "Hi").await;
    say(&mut c, "Can I reschedule my tour to Friday at 3?").await;
    let moved = say(&mut c, "Yes").await;
    assert!(moved.contains("is now on Friday, November 27 at 3:00 PM") && moved.contains("emailed"), "{moved}");
    let update = sink.next().await;
    let invite = &update["invites"][0];
    assert_eq!((invite["method"].as_str(), invite["sequence"].as_u64()), (Some("REQUEST"), Some(1)));
    assert_eq!(invite["uid"], format!("{code}@tourdesk"));
    assert!(invite["dtstart"].as_str().unwrap().starts_with("2026-11-27T15:00:00"), "{invite}");

    // A cancellation: METHOD:CANCEL for the same UID.
    let cancel = say(&mut c, "Actually, please cancel my tour").await;
    assert!(cancel.contains("Shall I cancel"), "{cancel}");
    let cancelled = say(&mut c, "Yes").await;
    assert!(cancelled.contains("is cancelled") && cancelled.contains("emailed"), "{cancelled}");
    c.finish().await;
    let notice = sink.next().await;
    let invite = &notice["invites"][0];
    assert_eq!((invite["method"].as_str(), invite["status"].as_str()), (Some("CANCEL"), Some("CANCELLED")));
    assert_eq!(
        (invite["uid"].clone(), invite["sequence"].as_u64()),
        (Value::from(format!("{code}@tourdesk")), Some(2))
    );

    // Every message is also in the outbox.
    assert_eq!(std::fs::read_dir(dir.path().join("outbox")).unwrap().count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_smtp_server_loses_nothing_and_nothing_is_claimed() {
    // A port nothing listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let (memory, dir) = common::fresh_memory().await;
    let mut config = common::agent_in(&dir, MemoryService::new(memory)).await;
    config.mailer = Some(mailer(&dir, Some(&format!("smtp://127.0.0.1:{port}"))));
    let (done, code) = book(&config).await;
    assert!(done.contains("Your confirmation code is"), "the booking stands: {done}");
    assert!(done.contains("couldn't send the email") && !done.contains("emailed"), "{done}");
    let kept = dir.path().join("outbox").join(format!("{code}-0-booked.eml"));
    let eml = std::fs::read_to_string(&kept).expect("the outbox keeps the message");
    assert!(eml.contains("BEGIN:VCALENDAR") || eml.contains("Content-Transfer-Encoding: base64"), "{eml}");

    // A malformed SMTP URL is refused when the mailer is made, with what to write instead.
    let err = Mailer::new("a@b.example", dir.path(), Some("smtp://"), Duration::from_secs(1)).err().unwrap();
    assert!(err.to_string().contains("smtps://user:password@host"), "{err}");
}
