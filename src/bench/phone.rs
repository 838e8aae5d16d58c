//! Twilio's side of a media stream, for the voice benchmark and the tests: connects to `/media-stream`, sends
//! `connected`/`start`, streams caller audio as 20 ms μ-law `media` frames, and collects what the server sends back
//! (media, marks, `clear`, the close frame) with arrival times, echoing marks as Twilio does once audio has played.

use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::realtime::voice::{FRAME, PHONE_RATE};
use crate::speech::mulaw;

type Sink = futures::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

/// Something the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// 20 ms of agent audio (μ-law bytes).
    Media(Vec<u8>),
    /// A mark after a sentence.
    Mark(String),
    /// Barge-in: drop unplayed audio.
    Clear,
    /// A message this client does not know (its text).
    Other(String),
    /// The server closed the socket with this code and reason (1005 when none was given).
    Closed(u16, String),
}

/// A sample louder than this is the caller's voice: [`PhoneClient::send_audio`] times the end of speech by it.
pub const VOICED_LEVEL: f32 = 0.01;

/// One simulated call.
pub struct PhoneClient {
    sink: Sink,
    events: mpsc::UnboundedReceiver<(Instant, ServerEvent)>,
    stream_sid: String,
}

/// A reply as heard by the caller.
#[derive(Debug, Clone, Default)]
pub struct HeardReply {
    /// Its audio at 8 kHz.
    pub audio: Vec<f32>,
    /// Media frames received.
    pub frames: usize,
    /// Marks received, in order.
    pub marks: Vec<String>,
    /// When the first frame arrived.
    pub first_frame_at: Option<Instant>,
    /// Whether a `clear` arrived.
    pub cleared: bool,
}

impl PhoneClient {
    /// Connects to `url` (`ws://host/media-stream`), with an `X-Twilio-Signature` header when given.
    pub async fn connect(url: &str, signature: Option<&str>) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request()?;
        if let Some(sig) = signature {
            request.headers_mut().insert("x-twilio-signature", sig.parse().expect("a signature is header-safe"));
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        let (sink, mut stream) = ws.split();
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let event = match msg {
                    Ok(Message::Text(t)) => parse(&t),
                    Ok(Message::Close(frame)) => {
                        let (code, reason) =
                            frame.map_or((1005, String::new()), |f| (f.code.into(), f.reason.to_string()));
                        let _ = tx.send((Instant::now(), ServerEvent::Closed(code, reason)));
                        return;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        let _ = tx.send((Instant::now(), ServerEvent::Closed(1006, e.to_string())));
                        return;
                    }
                };
                if tx.send((Instant::now(), event)).is_err() {
                    return;
                }
            }
            let _ = tx.send((Instant::now(), ServerEvent::Closed(1006, "connection dropped".into())));
        });
        Ok(Self { sink, events, stream_sid: String::new() })
    }

    /// Sends a raw text message (for malformed-input tests).
    pub async fn send_raw(&mut self, text: impl Into<String>) -> bool {
        self.sink.send(Message::Text(text.into().into())).await.is_ok()
    }

    /// Sends `connected` and `start` for a call from `caller`.
    pub async fn start(&mut self, call_sid: &str, caller: &str) -> bool {
        self.stream_sid = format!("MZ{}", call_sid.trim_start_matches("CA"));
        let connected = json!({"event": "connected", "protocol": "Call", "version": "1.0.0"});
        let start = json!({
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": self.stream_sid,
            "start": {
                "accountSid": "ACtest",
                "streamSid": self.stream_sid,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "customParameters": {"caller": caller},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
            }
        });
        self.send_raw(connected.to_string()).await && self.send_raw(start.to_string()).await
    }

    /// Streams 8 kHz samples as 20 ms frames; with `realtime` one frame every 20 ms, as a phone line does.
    /// Returns when the last frame holding sound (above −40 dBFS) went out.
    pub async fn send_audio(&mut self, samples: &[f32], realtime: bool) -> Option<Instant> {
        let mut last_voiced = None;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for frame in samples.chunks(FRAME) {
            if realtime {
                tick.tick().await;
            }
            let payload = base64::engine::general_purpose::STANDARD.encode(mulaw::encode(frame));
            let media = json!({"event": "media", "streamSid": self.stream_sid, "media": {"track": "inbound", "payload": payload}});
            if !self.send_raw(media.to_string()).await {
                return last_voiced;
            }
            if frame.iter().any(|s| s.abs() > VOICED_LEVEL) {
                last_voiced = Some(Instant::now());
            }
        }
        last_voiced
    }

    /// Sends `ms` of silence.
    pub async fn send_silence(&mut self, ms: u32, realtime: bool) {
        self.send_audio(&vec![0.0; (ms * PHONE_RATE / 1000) as usize], realtime).await;
    }

    /// Tells the server a mark has played, as Twilio does.
    pub async fn echo_mark(&mut self, name: &str) -> bool {
        let mark = json!({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}});
        self.send_raw(mark.to_string()).await
    }

    /// Presses a key on the caller's keypad, as Twilio reports it.
    pub async fn press(&mut self, digit: char) -> bool {
        let dtmf = json!({"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": digit.to_string()}});
        self.send_raw(dtmf.to_string()).await
    }

    /// Sends `stop` (the caller hung up).
    pub async fn stop(&mut self) -> bool {
        self.send_raw(json!({"event": "stop", "streamSid": self.stream_sid, "stop": {"callSid": "x"}}).to_string())
            .await
    }

    /// The next event, or `None` after `wait`.
    pub async fn next_event(&mut self, wait: Duration) -> Option<(Instant, ServerEvent)> {
        tokio::time::timeout(wait, self.events.recv()).await.ok().flatten()
    }

    /// Collects one reply: waits up to `wait` for its first frame, then takes events until none has come for
    /// `quiet`. With `echo` each mark is echoed as it arrives (the caller listened to it all). With `line_silence`
    /// the caller's line keeps sending silent frames every 20 ms meanwhile, as a real call does.
    pub async fn reply(&mut self, wait: Duration, quiet: Duration, echo: bool, line_silence: bool) -> HeardReply {
        let mut heard = HeardReply::default();
        let mut deadline = Instant::now() + wait;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            let next = if line_silence {
                tokio::select! {
                    e = self.events.recv() => e,
                    _ = tick.tick() => {
                        self.send_silence(20, false).await;
                        if Instant::now() >= deadline {
                            break;
                        }
                        continue;
                    }
                }
            } else {
                tokio::time::timeout_at(deadline.into(), self.events.recv()).await.ok().flatten()
            };
            let Some((at, event)) = next else { break };
            match event {
                ServerEvent::Media(bytes) => {
                    heard.first_frame_at.get_or_insert(at);
                    heard.frames += 1;
                    heard.audio.extend(mulaw::decode(&bytes));
                }
                ServerEvent::Mark(name) => {
                    if echo {
                        self.echo_mark(&name).await;
                    }
                    heard.marks.push(name);
                }
                ServerEvent::Clear => heard.cleared = true,
                ServerEvent::Other(_) => {}
                ServerEvent::Closed(..) => break,
            }
            if heard.frames > 0 {
                deadline = Instant::now() + quiet;
            }
        }
        heard
    }
}

fn parse(text: &str) -> ServerEvent {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    match v["event"].as_str() {
        Some("media") => {
            let payload = v["media"]["payload"].as_str().unwrap_or_default();
            ServerEvent::Media(base64::engine::general_purpose::STANDARD.decode(payload).unwrap_or_default())
        }
        Some("mark") => ServerEvent::Mark(v["mark"]["name"].as_str().unwrap_or_default().to_string()),
        Some("clear") => ServerEvent::Clear,
        _ => ServerEvent::Other(text.to_string()),
    }
}
