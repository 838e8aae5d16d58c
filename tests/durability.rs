//! Two `tourdesk serve` processes on one memory store, as a user deploys them: both write at once, one is killed
//! with SIGKILL in the middle of its writes, and every memory either server acknowledged is found through the one
//! left, which goes on writing. On a local folder and on an S3 bucket (moto's S3 server on loopback).

mod common;

use std::time::{Duration, Instant};

use common::s3::S3;
use common::serve::{add, texts, Serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_write_loses_no_acknowledged_memory_and_the_other_goes_on() {
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("db").display().to_string();
    kill_one_mid_write(&store, &data, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_s3_a_server_killed_mid_write_loses_no_acknowledged_memory_and_the_other_goes_on() {
    let s3 = S3::start("tourdesk").await;
    let scratch = tempfile::tempdir().unwrap();
    kill_one_mid_write("s3://tourdesk/db", &scratch, &s3.env()).await;
}

/// Two servers on `store` write at once; one is killed mid-write; the other finds every acknowledged memory.
async fn kill_one_mid_write(store: &str, scratch: &tempfile::TempDir, env: &[(&str, &str)]) {
    let doomed = Serve::start(store, &scratch.path().join("a"), env);
    let survivor = Serve::start(store, &scratch.path().join("b"), env);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();

    // Eight writers per server, each adding its own numbered facts one after another, until told to stop.
    let stop_at = Instant::now() + Duration::from_secs(4);
    let mut writers = Vec::new();
    for (server, base) in [("a", doomed.base.clone()), ("b", survivor.base.clone())] {
        for w in 0..8 {
            let (http, base) = (http.clone(), base.clone());
            writers.push(tokio::spawn(async move {
                let user = format!("+1555777{w:04}");
                let mut acked = Vec::new();
                for i in 0.. {
                    if Instant::now() > stop_at {
                        break;
                    }
                    let text = format!("Fact {i} from writer {w} on server {server}");
                    match add(&http, &base, &user, &text).await {
                        Some(_) => acked.push((user.clone(), text)),
                        None if server == "a" => break,
                        None => panic!("the surviving server refused a write: {text}"),
                    }
                }
                acked
            }));
        }
    }
    // Mid-way, server A dies without a chance to finish anything.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut doomed = doomed;
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();

    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(writer.await.unwrap());
    }
    let from_a = acked.iter().filter(|(_, t)| t.ends_with("server a")).count();
    let from_b = acked.len() - from_a;
    assert!(from_a > 0 && from_b > 0, "both servers acknowledged writes ({from_a} + {from_b})");

    // The survivor sees the other process's commits within its read-consistency interval (1 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut users: Vec<&String> = acked.iter().map(|(u, _)| u).collect();
    users.sort();
    users.dedup();
    let mut found = std::collections::HashSet::new();
    for user in users {
        for text in texts(&http, &survivor.base, user).await {
            found.insert((user.clone(), text));
        }
    }
    let lost: Vec<_> = acked.iter().filter(|a| !found.contains(*a)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged memories lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );

    // And it goes on: a new memory is stored and found.
    assert!(add(&http, &survivor.base, "+15557770100", "Written after the crash").await.is_some());
    assert_eq!(texts(&http, &survivor.base, "+15557770100").await, ["Written after the crash"]);
}
