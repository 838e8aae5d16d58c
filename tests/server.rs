//! The realtime server on loopback: real axum, real websockets, the real agent with real memory.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tourdesk::agent::{MemoryService, Pets};
use tourdesk::app::{AppState, LoopbackServer};
use tourdesk::realtime::ServerMessage;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Server {
    addr: SocketAddr,
    memory: MemoryService,
    running: LoopbackServer,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let (memory, dir) = common::fresh_memory().await;
    let memory = MemoryService::new(memory);
    let agent = common::agent_in(&dir, memory.clone()).await;
    let running = LoopbackServer::start(AppState::new(agent), Duration::from_secs(10)).await.unwrap();
    Server { addr: running.addr, memory, running, _dir: dir }
}

async fn connect(addr: SocketAddr) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{addr}/ws/chat")).await.unwrap().0
}

async fn send(ws: &mut Ws, value: serde_json::Value) {
    ws.send(Message::Text(value.to_string().into())).await.unwrap();
}

/// The next JSON message from the server (pings and the like skipped); `None` when the connection closed.
async fn recv(ws: &mut Ws) -> Option<ServerMessage> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("server answers in time") {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

async fn say(ws: &mut Ws, text: &str) -> ServerMessage {
    send(ws, serde_json::json!({"type": "text", "text": text})).await;
    recv(ws).await.expect("a reply")
}

fn error_of(msg: Option<ServerMessage>) -> String {
    match msg {
        Some(ServerMessage::Error { message }) => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn health_check_answers() {
    let server = start().await;
    let body = reqwest::get(format!("http://{}/healthz", server.addr)).await.unwrap().text().await.unwrap();
    assert_eq!(body, "ok");
}

const NAMES: [&str; 10] = ["Dana", "Sam", "Priya", "Luis", "Mei", "Omar", "Grace", "Ivan", "Zoe", "Noah"];
const PROPERTIES: [(&str, &str); 3] =
    [("21 West End", "21-west-end"), ("Hudson 360", "hudson-360"), ("Riverview Lofts", "riverview-lofts")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_sessions_complete_without_cross_talk() {
    let server = start().await;
    let mut clients = Vec::new();
    for i in 0..50usize {
        let addr = server.addr;
        clients.push(tokio::spawn(async move {
            let user = format!("+1555700{i:04}");
            let name = NAMES[i % NAMES.len()];
            let (property, property_id) = PROPERTIES[i % PROPERTIES.len()];
            let bedrooms = 1 + i % 3;
            let mut ws = connect(addr).await;
            send(&mut ws, serde_json::json!({"type": "start", "user_id": user})).await;
            match recv(&mut ws).await {
                Some(ServerMessage::Started { user_id, .. }) => assert_eq!(user_id, user),
                other => panic!("expected started, got {other:?}"),
            }
            let script = [
                format!("Hi, I'm {name}. I'd like to tour {property}, a {bedrooms} bedroom."),
                "I have a cat. What's the pet fee?".to_string(),
                "Around four thousand a month.".to_string(),
            ];
            let mut last = None;
            for line in &script {
                match say(&mut ws, line).await {
                    ServerMessage::Reply { text, state, .. } => {
                        assert!(!text.is_empty());
                        last = Some((text, state));
                    }
                    other => panic!("expected a reply, got {other:?}"),
                }
            }
            let (_, state) = last.unwrap();
            assert_eq!(state.name.as_deref(), Some(name), "session {i}");
            assert_eq!(state.phone.as_deref(), Some(user.as_str()), "session {i}");
            assert_eq!(state.property.as_deref(), Some(property_id), "session {i}");
            assert_eq!(state.bedrooms, Some(bedrooms as u8), "session {i}");
            assert_eq!(state.pets, Some(Pets { cats: 1, dogs: 0, other: 0 }), "session {i}");
            send(&mut ws, serde_json::json!({"type": "stop"})).await;
            assert_eq!(recv(&mut ws).await, Some(ServerMessage::Stopped { reason: "stop".into() }));
            (user, name)
        }));
    }
    for c in clients {
        let (user, name) = c.await.unwrap();
        // Each caller's memory holds their own name, nobody else's.
        let context = server.memory.retrieve_user_context(&user).await.unwrap();
        assert_eq!(context.state.name.as_deref(), Some(name), "{user}");
    }
}

#[tokio::test]
async fn malformed_messages_get_clear_errors_and_the_server_keeps_serving() {
    let server = start().await;
    let mut ws = connect(server.addr).await;
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert!(error_of(recv(&mut ws).await).contains("invalid message"));
    send(&mut ws, serde_json::json!({"type": "dance"})).await;
    assert!(error_of(recv(&mut ws).await).contains("invalid message"));
    send(&mut ws, serde_json::json!({"type": "text", "text": "hello"})).await;
    assert!(error_of(recv(&mut ws).await).contains("start"));
    ws.send(Message::Binary(vec![0u8, 1, 2].into())).await.unwrap();
    assert!(error_of(recv(&mut ws).await).contains("binary"));
    send(&mut ws, serde_json::json!({"type": "start", "user_id": "bad\u{0}id"})).await;
    assert!(error_of(recv(&mut ws).await).contains("invalid user_id"));
    send(&mut ws, serde_json::json!({"type": "start", "user_id": "x".repeat(10_000)})).await;
    assert!(error_of(recv(&mut ws).await).contains("invalid user_id"));
    send(&mut ws, serde_json::json!({"type": "start", "user_id": "+15557100000"})).await;
    assert!(matches!(recv(&mut ws).await, Some(ServerMessage::Started { .. })));
    send(&mut ws, serde_json::json!({"type": "start", "user_id": "+15557100000"})).await;
    assert!(error_of(recv(&mut ws).await).contains("already started"));
    send(&mut ws, serde_json::json!({"type": "text", "text": "   "})).await;
    assert!(error_of(recv(&mut ws).await).contains("empty"));
    assert!(matches!(say(&mut ws, "Hi, I'm Dana.").await, ServerMessage::Reply { .. }));

    // A 10 MB message closes that connection…
    let mut big = connect(server.addr).await;
    let huge = serde_json::json!({"type": "text", "text": "a".repeat(10 * 1024 * 1024)}).to_string();
    let _ = big.send(Message::Text(huge.into())).await;
    assert_eq!(recv(&mut big).await, None);
    // …and nobody else notices.
    assert!(matches!(say(&mut ws, "I have a cat.").await, ServerMessage::Reply { .. }));
    let mut fresh = connect(server.addr).await;
    send(&mut fresh, serde_json::json!({"type": "start", "user_id": "+15557100001"})).await;
    assert!(matches!(recv(&mut fresh).await, Some(ServerMessage::Started { .. })));
}

#[tokio::test]
async fn shutdown_ends_live_sessions_and_flushes_their_memory() {
    let mut server = start().await;
    let mut ws = connect(server.addr).await;
    send(&mut ws, serde_json::json!({"type": "start", "user_id": "+15557200000"})).await;
    assert!(matches!(recv(&mut ws).await, Some(ServerMessage::Started { .. })));
    assert!(matches!(say(&mut ws, "Hi, I'm Grace and I have two dogs.").await, ServerMessage::Reply { .. }));
    server.running.begin_shutdown();
    assert_eq!(recv(&mut ws).await, Some(ServerMessage::Stopped { reason: "shutdown".into() }));
    tokio::time::timeout(Duration::from_secs(15), server.running.stop()).await.expect("server stops").unwrap();
    let context = server.memory.retrieve_user_context("+15557200000").await.unwrap();
    assert_eq!(context.state.name.as_deref(), Some("Grace"));
    assert_eq!(context.state.pets, Some(Pets { cats: 0, dogs: 2, other: 0 }));
}
