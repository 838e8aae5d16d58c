//! The web page in real headless Chromium (installed by `just setup`), driven over the Chrome DevTools Protocol:
//! a short conversation, the reply and the planner state, the memory inspector finding what the conversation
//! stored, forgetting the caller. A screenshot goes to `artifacts/web-page.png`. And a call by microphone: Chromium's
//! fake capture device plays an espeak-ng recording into the page, which speaks Twilio's protocol to `/media-stream`.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tourdesk::agent::{Booking, MemoryService, TourType};
use tourdesk::app::{AppState, LoopbackServer};
use tourdesk::memory::{MetadataFilter, Scope};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Headless Chromium, killed on drop.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A DevTools session with one page.
struct Cdp {
    ws: Ws,
    next: u64,
}

impl Cdp {
    /// Sends a command and returns its result (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.ws
            .send(Message::Text(json!({"id": id, "method": method, "params": params}).to_string().into()))
            .await
            .unwrap();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.ws.next()).await.expect("DevTools answers");
            let Some(Ok(Message::Text(text))) = msg else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    /// Evaluates JavaScript in the page (promises awaited) and returns its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call("Runtime.evaluate", json!({"expression": expression, "awaitPromise": true, "returnByValue": true}))
            .await;
        assert!(r["exceptionDetails"].is_null(), "{expression}: {}", r["exceptionDetails"]);
        r["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is truthy; panics with `what` after 20 s.
    async fn wait_for(&mut self, expression: &str, what: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self.eval(expression).await;
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

/// Starts Chromium with `extra` flags and connects to its page.
async fn launch(extra: &[String]) -> (Browser, Cdp) {
    let profile = tempfile::tempdir().unwrap();
    let child = Command::new("chromium")
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .args(["--window-size=1280,900", "about:blank"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium is installed by `just setup` (Debian package chromium)");
    let browser = Browser { child, _profile: profile };
    // Chromium writes the port it chose to DevToolsActivePort.
    let port_file = browser._profile.path().join("DevToolsActivePort");
    let started = Instant::now();
    let port = loop {
        if let Some(port) = std::fs::read_to_string(&port_file).ok().and_then(|s| s.lines().next()?.parse::<u16>().ok())
        {
            break port;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "chromium did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let targets: Value =
        reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await.unwrap().json().await.unwrap();
    let page = targets.as_array().unwrap().iter().find(|t| t["type"] == "page").expect("a page target");
    let (ws, _) = tokio_tungstenite::connect_async(page["webSocketDebuggerUrl"].as_str().unwrap()).await.unwrap();
    (browser, Cdp { ws, next: 0 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_see_state_inspect_memory_and_forget_in_a_real_browser() {
    let (memory, dir) = common::fresh_memory().await;
    let service = MemoryService::new(memory);
    let agent = common::agent_in(&dir, service.clone()).await;
    let tools = agent.tools.clone();
    let running = LoopbackServer::start(AppState::new(agent), Duration::from_secs(5)).await.unwrap();
    let base = format!("http://{}/", running.addr);

    let (_browser, mut page) = launch(&[]).await;
    page.call("Page.enable", json!({})).await;
    page.call("Page.navigate", json!({"url": base})).await;
    page.wait_for("document.readyState === 'complete' && !!document.getElementById('connect')", "the page").await;

    // A short conversation.
    page.eval("document.getElementById('caller').value = '+15557770001'; document.getElementById('connect').click()")
        .await;
    page.wait_for("document.getElementById('status').textContent.startsWith('in call')", "the call to start").await;
    let say = |text: &str| {
        format!(
            "document.getElementById('text').value = {}; document.getElementById('say').requestSubmit()",
            serde_json::to_string(text).unwrap()
        )
    };
    page.eval(&say("Hi, I'd like to tour Hudson 360, a two bedroom.")).await;
    let reply = page.wait_for("document.querySelector('#log .agent')?.textContent", "the agent's reply").await;
    assert!(reply.as_str().unwrap().contains("Thanks for calling"), "{reply}");
    page.wait_for(
        "document.querySelector('#state dd[data-slot=property]')?.textContent === 'hudson-360'",
        "property in the state",
    )
    .await;
    assert_eq!(page.eval("document.querySelector('#state dd[data-slot=bedrooms]').textContent").await, "2");
    page.eval(&say("My name is Dana.")).await;
    page.wait_for(
        "document.querySelector('#state dd[data-slot=name]')?.textContent === 'Dana'",
        "the name in the state",
    )
    .await;

    // The inspector finds what the conversation stored (memory writes are asynchronous: refresh until there).
    let found = page
        .wait_for(
            "document.getElementById('refresh').click(), \
             [...document.querySelectorAll('#memories li.memory')].some(li => li.textContent.includes('Hudson 360'))",
            "the conversation's memory in the inspector",
        )
        .await;
    assert_eq!(found, true);
    // Its history (clicked again if a refresh still in flight redrew the list).
    let history = page
        .wait_for(
            "(() => { const li = [...document.querySelectorAll('#memories li.memory')].find(li => li.textContent.includes('Hudson 360')); \
             if (!li) return false; const h = li.querySelector('.small'); if (h) return h.textContent; \
             li.querySelector('button').click(); return false })()",
            "the memory's history",
        )
        .await;
    assert!(history.as_str().unwrap().starts_with("ADD: "), "{history}");

    // The memories hold what the caller said, never the agent's lines; the conversation log holds both.
    let agent_lines = page
        .eval("[...document.querySelectorAll('#memories li.memory')].filter(li => li.textContent.includes('Thanks for calling')).length")
        .await;
    assert_eq!(agent_lines, 0);
    let logged = page
        .wait_for(
            "document.getElementById('messages').click(), \
             [...document.querySelectorAll('#memories li.logged')].some(li => li.textContent.startsWith('Agent: Thanks for calling'))",
            "the agent's line in the conversation log",
        )
        .await;
    assert_eq!(logged, true);
    assert_eq!(
        page.eval("document.querySelector('#memories li.logged').textContent").await,
        "Caller: Hi, I'd like to tour Hudson 360, a two bedroom."
    );

    // The Tours view lists the caller's tour; cancel takes two clicks.
    // A tour booked for the caller (by the office), for the Tours view.
    let start = common::office_now() + chrono::Duration::days(3);
    let tour = Booking {
        confirmation: "B0C0A1".into(),
        property: "hudson-360".into(),
        tour_type: TourType::Virtual,
        start,
        user_id: "+15557770001".into(),
        name: "Dana".into(),
        email: "dana@example.com".into(),
        phone: "+15557770001".into(),
        sequence: 0,
    };
    tools.book(tour).await.unwrap();
    page.eval("document.getElementById('caller-tours').click()").await;
    page.wait_for("document.getElementById('tourstatus').textContent === '1 tour'", "the caller's tour").await;
    assert!(page
        .eval("document.querySelector('#tourlist tr.tour').textContent")
        .await
        .as_str()
        .unwrap()
        .contains("B0C0A1"));

    let shot = page.call("Page.captureScreenshot", json!({"format": "png"})).await;
    let png =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, shot["data"].as_str().unwrap()).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("web-page.png"), &png).unwrap();

    page.eval("document.querySelector('#tourlist tr.tour button').click()").await;
    assert_eq!(page.eval("document.querySelector('#tourlist tr.tour button').textContent").await, "really cancel?");
    page.eval("document.querySelector('#tourlist tr.tour button').click()").await;
    page.wait_for("document.getElementById('tourstatus').textContent === '0 tours'", "the cancelled tour gone").await;

    // End the call (the server flushes its memory writes first), then forget the caller: the inspector and the
    // store both show nothing.
    page.eval("document.getElementById('hangup').click()").await;
    page.wait_for("document.getElementById('status').textContent === 'call ended (stop)'", "the call to end").await;
    page.eval("document.getElementById('forget').click()").await;
    page.wait_for("document.getElementById('memstatus').textContent.startsWith('forgot')", "the forget").await;
    page.eval("document.getElementById('refresh').click()").await;
    page.wait_for("document.getElementById('memstatus').textContent === '0 memories'", "an empty inspector").await;
    let scope = Scope { user_id: Some("+15557770001".into()), ..Scope::default() };
    let left = service.memory().get_all(&scope, &MetadataFilter::All, 100).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_by_microphone_goes_through_the_phone_path() {
    let (memory, dir) = common::fresh_memory().await;
    let agent = common::agent_in(&dir, MemoryService::new(memory)).await;
    let recordings = agent.recordings.clone().unwrap();
    let mut state = AppState::new(agent);
    state.voice = Some(common::voice().await);
    let running = LoopbackServer::start(state, Duration::from_secs(5)).await.unwrap();
    let base = format!("http://{}/", running.addr);

    // The "microphone": espeak-ng saying the request, then two seconds of silence (Chromium loops the file).
    let wav = dir.path().join("caller.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-g", "0", "-w"])
        .arg(&wav)
        .arg("Hi, I'd like to tour Hudson 360, a two bedroom. . . . . . . .")
        .status()
        .expect("espeak-ng is installed by `just setup`");
    assert!(status.success());
    let flags = [
        "--use-fake-ui-for-media-stream".to_string(),
        "--use-fake-device-for-media-stream".to_string(),
        format!("--use-file-for-fake-audio-capture={}", wav.display()),
        "--autoplay-policy=no-user-gesture-required".to_string(),
    ];
    let (_browser, mut page) = launch(&flags).await;
    page.call("Page.navigate", json!({"url": base})).await;
    page.wait_for("document.readyState === 'complete' && !!document.getElementById('mic')", "the page").await;
    page.eval("document.getElementById('caller').value = '+15557770002'; document.getElementById('mic').click()").await;
    page.wait_for("document.getElementById('micstatus').textContent.startsWith('in a voice call')", "the voice call")
        .await;
    // The greeting comes back as audio frames the page plays.
    page.wait_for("Number(document.body.dataset.framesIn || 0) > 50", "the agent's audio").await;
    assert!(page.eval("Number(document.body.dataset.framesOut || 0)").await.as_u64().unwrap() > 0);

    // What the server heard, from the call's flight recording.
    let started = Instant::now();
    let heard = loop {
        let text: String = std::fs::read_dir(&recordings)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with("CAweb"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        let transcripts: Vec<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["kind"] == "transcript")
            .map(|e| e["data"]["text"].as_str().unwrap_or_default().to_lowercase())
            .collect();
        if transcripts.iter().any(|t| t.contains("hudson 360")) {
            break transcripts;
        }
        assert!(started.elapsed() < Duration::from_secs(40), "no transcript with the building: {transcripts:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(heard.iter().any(|t| t.contains("two bedroom")), "{heard:?}");
    page.eval("document.getElementById('mic').click()").await;
    page.wait_for("document.getElementById('mic').getAttribute('aria-pressed') === 'false'", "hang up").await;
    running.stop().await.unwrap();
}
