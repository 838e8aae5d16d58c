//! The `tourdesk` binary as a user runs it: memory commands, import with a bad line, export, help.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

struct Cli {
    data: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Self { data: tempfile::tempdir().unwrap() }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tourdesk"))
            .args(args)
            .env("TOURDESK_DATA", self.data.path())
            .env("TOURDESK_MODELS", common::models_dir())
            .env("TOURDESK_CONFIG", self.data.path().join("absent.toml"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tourdesk runs");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("--json prints JSON")
    }
}

#[test]
fn add_search_update_history_and_forget_from_the_shell() {
    let cli = Cli::new();
    let added = cli.json(&[
        "memory",
        "add",
        "Has a golden retriever",
        "--user",
        "+15550001",
        "--metadata",
        r#"{"slot":"pets"}"#,
        "--json",
    ]);
    let id = added["results"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(added["results"][0]["event"], "ADD");
    cli.ok(&["memory", "add", "Budget is $3,000", "--user", "+15550001"]);
    cli.ok(&["memory", "add", "Has a cat", "--user", "+15550002"]);

    let hits = cli.json(&["memory", "search", "does the caller have a dog", "--user", "+15550001", "--json"]);
    assert_eq!(hits[0]["memory"], "Has a golden retriever");
    assert!(hits.as_array().unwrap().iter().all(|h| h["user_id"] == "+15550001"));
    let filtered =
        cli.json(&["memory", "search", "anything", "--user", "+15550001", "--filter", r#"{"slot":"pets"}"#, "--json"]);
    assert_eq!(filtered.as_array().unwrap().len(), 1);

    cli.ok(&["memory", "update", &id, "Has two golden retrievers"]);
    assert_eq!(cli.json(&["memory", "get", &id, "--json"])["memory"], "Has two golden retrievers");
    let history = cli.json(&["memory", "history", &id, "--json"]);
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert_eq!(history[1]["event"], "UPDATE");
    assert_eq!(history[1]["actor"], "cli");

    let out = cli.ok(&["memory", "forget", "--user", "+15550001"]);
    assert!(out.contains("forgot 2"), "{out}");
    assert!(cli.json(&["memory", "list", "--user", "+15550001", "--json"]).as_array().unwrap().is_empty());
    assert_eq!(cli.json(&["memory", "list", "--user", "+15550002", "--json"]).as_array().unwrap().len(), 1);
}

#[test]
fn import_reports_bad_lines_keeps_good_ones_and_export_round_trips() {
    let cli = Cli::new();
    let jsonl = [
        r#"{"text": "Wants Riverview Lofts", "user_id": "u1", "metadata": {"source": "crm"}}"#,
        r#"{"text": "", "user_id": "u1"}"#,
        r#"not json at all"#,
        r#"{"messages": [{"role": "user", "content": "I have a cat"}, {"role": "assistant", "content": "Noted!"}], "user_id": "u2", "run_id": "call-9"}"#,
        r#"{"text": "Wants Riverview Lofts", "user_id": "u1"}"#,
        r#"{"text": "No owner at all"}"#,
    ]
    .join("\n");
    let out = cli.run_with_stdin(&["memory", "import", "-"], &jsonl);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "bad lines make the import fail loudly");
    assert!(stderr.contains("line 2:") && stderr.contains("line 3:") && stderr.contains("line 6:"), "{stderr}");
    assert!(stderr.contains("imported 3 memories (1 exact duplicates skipped)"), "{stderr}");

    let exported = cli.ok(&["memory", "export"]);
    let lines: Vec<serde_json::Value> = exported.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().any(|l| l["text"] == "Noted!" && l["role"] == "assistant" && l["run_id"] == "call-9"));

    let again = Cli::new();
    let out = again.run_with_stdin(&["memory", "import", "-"], &exported);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(again.json(&["memory", "list", "--user", "u1", "--json"])[0]["metadata"]["source"], "crm");
}

#[test]
fn errors_are_clear_and_exit_non_zero() {
    let cli = Cli::new();
    for (args, needle) in [
        (vec!["memory", "get", "not-an-id"], "is not a memory id"),
        (vec!["memory", "get", "6f1c1f7e-8d2a-4c1e-9d55-0b8f9c0f0a11"], "no memory with id"),
        (vec!["memory", "add", "orphan"], "at least one of user_id"),
        (vec!["memory", "search", "x", "--user", "u", "--filter", "{not json"], "--filter is not valid JSON"),
        (vec!["memory", "reset"], "--yes"),
    ] {
        let out = cli.run(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tourdesk"))
        .args(["memory", "list", "--user", "u"])
        .env("TOURDESK_MODELS", cli.data.path().join("no-models"))
        .env("TOURDESK_DATA", cli.data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tourdesk models fetch minilm"));
    // An object store nobody answers at: an error that says what to check, not a hang.
    let out = Command::new(env!("CARGO_BIN_EXE_tourdesk"))
        .args(["memory", "list", "--user", "u"])
        .env("TOURDESK_MODELS", common::models_dir())
        .env("TOURDESK_CONFIG", cli.data.path().join("absent.toml"))
        .env("TOURDESK_DATA", "s3://nobody-home/db")
        .envs([("AWS_ENDPOINT", "http://127.0.0.1:9"), ("AWS_ALLOW_HTTP", "true"), ("AWS_REGION", "us-east-1")])
        .envs([("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x"), ("AWS_EC2_METADATA_DISABLED", "true")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot open the LanceDB at s3://nobody-home/db (check the URI, AWS_ENDPOINT"), "{stderr}");
    let help = cli.ok(&["--help"]);
    assert!(help.contains("TOURDESK_DATA") && help.contains("TOURDESK_MODELS"), "{help}");
}

#[test]
fn bookings_from_the_shell_and_expiry_cleanup() {
    let cli = Cli::new();
    assert_eq!(cli.ok(&["bookings", "list"]).trim(), "no tours");
    assert_eq!(cli.json(&["bookings", "list", "--json"]), serde_json::json!([]));
    let err = |args: &[&str]| {
        let out = cli.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    assert!(err(&["bookings", "show", "ABC123"]).contains("no tour has confirmation code"));
    assert!(err(&["bookings", "show", "a b; drop"]).contains("not a confirmation code"));
    assert!(err(&["bookings", "cancel", "ABC123"]).contains("--yes"));
    assert!(err(&["bookings", "list", "--from", "friday"]).contains("YYYY-MM-DD"));

    // A memory that has expired is hidden, then deleted by cleanup.
    cli.ok(&["memory", "add", "Wanted a sublet in 2000", "--user", "u", "--expires", "2000-12-31"]);
    cli.ok(&["memory", "add", "Has a cat", "--user", "u"]);
    assert_eq!(cli.json(&["memory", "list", "--user", "u", "--json"]).as_array().unwrap().len(), 1);
    assert!(cli.ok(&["memory", "cleanup"]).contains("deleted 1 expired memories"));
    assert!(err(&["memory", "add", "x", "--user", "u", "--expires", "someday"]).contains("expiration_date"));
}
