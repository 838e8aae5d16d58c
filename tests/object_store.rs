//! Two `tourdesk serve` processes on one S3 bucket, as a user deploys them behind a load balancer. The bucket is
//! served by moto's S3 server on loopback (from the test clients' Python environment, `scripts/setup.sh`): pure
//! Python from PyPI, no container, and it honours the conditional writes (`If-None-Match`) LanceDB commits with.
//! A memory written through one server is found through the other, writers on both at once lose nothing, and one
//! tour slot confirmed through both servers at the same moment is booked once.

mod common;

use std::time::Duration;

use common::s3::S3;
use common::serve::{add, get_json, texts, Serve};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tourdesk::bench::LOAD_SCRIPT;

/// Two servers on `s3://tourdesk/db`.
async fn two_servers(s3: &S3, scratch: &tempfile::TempDir) -> (Serve, Serve) {
    let env = s3.env();
    let a = Serve::start("s3://tourdesk/db", &scratch.path().join("a"), &env);
    let b = Serve::start("s3://tourdesk/db", &scratch.path().join("b"), &env);
    (a, b)
}

/// Long enough for a server to see the other's commits (its read-consistency interval is 1 s).
const SEEN_AFTER: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memories_written_through_either_server_are_found_through_both_and_concurrent_writers_lose_nothing() {
    let s3 = S3::start("tourdesk").await;
    let scratch = tempfile::tempdir().unwrap();
    let (a, b) = two_servers(&s3, &scratch).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();

    add(&http, &a.base, "+15558880001", "Prefers a top-floor unit").await.expect("server A stores it");
    add(&http, &b.base, "+15558880002", "Has two dogs").await.expect("server B stores it");
    tokio::time::sleep(SEEN_AFTER).await;
    assert_eq!(texts(&http, &b.base, "+15558880001").await, ["Prefers a top-floor unit"]);
    assert_eq!(texts(&http, &a.base, "+15558880002").await, ["Has two dogs"]);

    // Four writers per server, ten facts each, all at once.
    let mut writers = Vec::new();
    for (server, base) in [("a", a.base.clone()), ("b", b.base.clone())] {
        for w in 0..4 {
            let (http, base) = (http.clone(), base.clone());
            writers.push(tokio::spawn(async move {
                let user = format!("+1555889{w:04}");
                let mut written = Vec::new();
                for i in 0..10 {
                    let text = format!("Fact {i} from writer {w} on server {server}");
                    add(&http, &base, &user, &text).await.unwrap_or_else(|| panic!("server {server} refused {text}"));
                    written.push((user.clone(), text));
                }
                written
            }));
        }
    }
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    tokio::time::sleep(SEEN_AFTER).await;
    for server in [&a, &b] {
        let mut found = std::collections::HashSet::new();
        for w in 0..4 {
            let user = format!("+1555889{w:04}");
            for text in texts(&http, &server.base, &user).await {
                found.insert((user.clone(), text));
            }
        }
        let lost: Vec<_> = written.iter().filter(|w| !found.contains(*w)).collect();
        assert!(lost.is_empty(), "{} of {} lost through {}: {:?}", lost.len(), written.len(), server.base, lost);
        assert_eq!(found.len(), written.len(), "nothing extra or duplicated through {}", server.base);
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A chat session as `user`, taken through `bench load`'s booking conversation: up to the read-back of the first
/// slot offered.
async fn up_to_read_back(server: &Serve, user: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(server.chat_url()).await.unwrap();
    send(&mut ws, json!({"type": "start", "user_id": user})).await;
    assert_eq!(next(&mut ws).await["type"], "started");
    for line in LOAD_SCRIPT {
        send(&mut ws, json!({"type": "text", "text": line})).await;
        let reply = next(&mut ws).await;
        assert_eq!(reply["type"], "reply", "{reply}");
    }
    ws
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into())).await.unwrap();
}

/// The next JSON message from the server.
async fn next(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await.expect("the server answers in time") {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => panic!("the session closed"),
            Some(Ok(_)) => continue,
        }
    }
}

/// Says "Yes" to the read-back; the reply.
async fn confirm(mut ws: Ws) -> Value {
    send(&mut ws, json!({"type": "text", "text": "Yes"})).await;
    next(&mut ws).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slot_confirmed_through_both_servers_at_once_is_booked_once() {
    let s3 = S3::start("tourdesk").await;
    let scratch = tempfile::tempdir().unwrap();
    let (a, b) = two_servers(&s3, &scratch).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();

    // Both callers are offered the same first slot and have it read back; then both say yes at the same moment.
    let (on_a, on_b) = tokio::join!(up_to_read_back(&a, "+15558870001"), up_to_read_back(&b, "+15558870002"));
    let (reply_a, reply_b) = tokio::join!(confirm(on_a), confirm(on_b));
    let codes: Vec<&str> = [&reply_a, &reply_b].iter().filter_map(|r| r["state"]["confirmation"].as_str()).collect();
    assert_eq!(codes.len(), 1, "exactly one caller is booked:\nA: {reply_a}\nB: {reply_b}");
    let loser = if reply_a["state"]["confirmation"].is_string() { &reply_b } else { &reply_a };
    assert!(
        loser["text"].as_str().unwrap().contains("just taken by another caller"),
        "the other caller is told the slot went: {loser}"
    );

    // Both servers list the one booking.
    tokio::time::sleep(SEEN_AFTER).await;
    for server in [&a, &b] {
        let listed = get_json(http.get(format!("{}/bookings", server.base))).await;
        let listed: Vec<&str> =
            listed["results"].as_array().unwrap().iter().map(|b| b["confirmation"].as_str().unwrap()).collect();
        assert_eq!(listed, codes, "bookings through {}", server.base);
    }
}
