//! Phone calls end to end: the real server on loopback, Twilio Media Streams over a real websocket, caller audio
//! spoken by the real espeak-ng, the real Whisper, the real agent and real memory. The client plays Twilio's part
//! (`tourdesk::bench::phone`).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::fake_twilio::FakeTwilio;
use serde_json::Value;
use tourdesk::agent::MemoryService;
use tourdesk::app::{AppState, LoopbackServer};
use tourdesk::bench::phone::{PhoneClient, ServerEvent, VOICED_LEVEL};
use tourdesk::inference::ApiKey;
use tourdesk::memory::{MetadataFilter, Scope};
use tourdesk::realtime::twilio::SignatureCheck;
use tourdesk::realtime::voice::{phone_audio, speech_pieces, PHONE_RATE};
use tourdesk::realtime::voice_session::{CallAudio, CallControl, VoiceSession};
use tourdesk::speech::audio::trim_silence;
use tourdesk::speech::word_errors::{word_error_rate, words};
use tourdesk::speech::{EspeakTts, SttHandle};

struct Server {
    addr: SocketAddr,
    memory: MemoryService,
    recordings: std::path::PathBuf,
    running: LoopbackServer,
    _dir: tempfile::TempDir,
}

impl Server {
    fn url(&self) -> String {
        format!("ws://{}/media-stream", self.addr)
    }

    /// The call's flight recording, one JSON value per event.
    fn recording(&self, call_sid: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(self.recordings.join(format!("{call_sid}.jsonl"))).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    async fn shutdown(self) {
        self.running.stop().await.unwrap();
    }
}

fn events<'a>(recording: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    recording.iter().filter(move |e| e["kind"] == kind).map(|e| &e["data"])
}

async fn start(twilio_token: Option<&str>) -> Server {
    start_with(twilio_token, common::voice().await).await
}

async fn start_with(twilio_token: Option<&str>, voice: tourdesk::speech::Voice) -> Server {
    start_configured(voice, |state| state.twilio_auth_token = twilio_token.map(|t| ApiKey(t.into()))).await
}

/// A server with `voice`, its state adjusted by `configure`.
async fn start_configured(voice: tourdesk::speech::Voice, configure: impl FnOnce(&mut AppState)) -> Server {
    let (memory, dir) = common::fresh_memory().await;
    let memory = MemoryService::new(memory);
    let agent = common::agent_in(&dir, memory.clone()).await;
    let recordings = agent.recordings.clone().unwrap();
    let mut state = AppState::new(agent);
    state.voice = Some(voice);
    configure(&mut state);
    let running = LoopbackServer::start(state, Duration::from_secs(10)).await.unwrap();
    Server { addr: running.addr, memory, recordings, running, _dir: dir }
}

/// The caller's voice: espeak-ng at 150 words a minute, a different speed from the agent's.
async fn said(text: &str) -> Vec<f32> {
    phone_audio(&EspeakTts::new("en-us", 150), text).await.unwrap()
}

const WAIT: Duration = Duration::from_secs(60);
const QUIET: Duration = Duration::from_millis(1500);

/// Says `text` then a second of line silence, and collects the reply (marks echoed: the caller listened).
async fn turn(phone: &mut PhoneClient, text: &str) -> tourdesk::bench::phone::HeardReply {
    phone.send_audio(&said(text).await, false).await;
    phone.send_silence(1000, false).await;
    phone.reply(WAIT, QUIET, true, false).await
}

/// Hangs up and waits until the server has closed the call (memory flushed).
async fn hang_up(phone: &mut PhoneClient) {
    phone.stop().await;
    while let Some((_, e)) = phone.next_event(Duration::from_secs(30)).await {
        if matches!(e, ServerEvent::Closed(..)) {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_request_reaches_the_state_comes_back_as_audio_and_the_caller_is_remembered() {
    let server = start(None).await;
    let mut phone = PhoneClient::connect(&server.url(), None).await.unwrap();
    assert!(phone.start("CAfirstcall", "+1 (555) 201-0001").await);
    let greeting = phone.reply(WAIT, QUIET, true, false).await;
    assert!(greeting.frames > 25 && !greeting.marks.is_empty(), "the agent greets: {greeting:?}");

    let reply = turn(&mut phone, "Hi, I'd like to tour Hudson 360, a two bedroom.").await;
    assert!(reply.frames > 25, "outbound μ-law audio comes back");
    assert!(!reply.marks.is_empty() && reply.marks.iter().all(|m| m.starts_with("turn1-")), "{:?}", reply.marks);
    turn(&mut phone, "My name is Maria.").await;
    hang_up(&mut phone).await;

    let rec = server.recording("CAfirstcall");
    let heard: Vec<String> = events(&rec, "transcript").map(|d| d["text"].as_str().unwrap().to_lowercase()).collect();
    assert!(heard[0].contains("hudson 360") && heard[0].contains("two bedroom"), "{heard:?}");
    let changed: Vec<&Value> = events(&rec, "state").map(|d| &d["changed"]).collect();
    assert!(changed.iter().any(|c| c["property"] == "hudson-360"), "{changed:?}");
    assert!(changed.iter().any(|c| c["bedrooms"] == 2), "{changed:?}");
    assert!(changed.iter().any(|c| c["name"] == "Maria"), "{changed:?}");
    let call = events(&rec, "call_start").next().unwrap();
    assert_eq!(call["user_id"], "+15552010001", "the caller's number, normalised, is the user id");
    let timing = events(&rec, "voice_turn").next().expect("per-stage latencies are recorded");
    for stage in ["stt_ms", "agent_ms", "tts_first_ms", "vad_end_to_first_audio_ms", "speech_end_to_first_audio_ms"] {
        assert!(timing[stage].as_f64().is_some_and(|ms| ms >= 0.0), "{stage}: {timing}");
    }
    // Its transcript (read right above) was started when the caller paused, before the pause ended the utterance.
    assert_eq!(timing["stt_started_at_pause"], true, "{timing}");

    // The same number again, written another way: greeted by name.
    let mut phone = PhoneClient::connect(&server.url(), None).await.unwrap();
    assert!(phone.start("CAsecondcall", "+15552010001").await);
    let greeting = phone.reply(WAIT, QUIET, true, false).await;
    let wide = tourdesk::speech::audio::resample(&greeting.audio, 8_000, 16_000);
    // Read back with Whisper base: tiny.en hears a name over the phone line less reliably than a caller does.
    let base = tourdesk::models::ModelStore::new(common::models_dir()).unwrap().resolve("whisper-base").unwrap();
    let listener = SttHandle::spawn(base, tourdesk::realtime::voice::STT_HINT.into()).await.unwrap();
    let spoken = listener.transcribe(wide).await.unwrap().text;
    hang_up(&mut phone).await;
    let rec = server.recording("CAsecondcall");
    let greeting = events(&rec, "reply").next().unwrap()["text"].as_str().unwrap().to_string();
    assert!(greeting.starts_with("Welcome back") && greeting.contains("Maria") && greeting.contains("Hudson 360"));
    // What was played is that greeting: Whisper reads it back with few errors. (Piper varies its voice from call to
    // call; now and then a name alone comes back misheard, "Maria" as "Berea", so the whole greeting is scored.)
    let errors = word_error_rate(&greeting, &spoken);
    assert!(errors <= 0.15, "greeting {greeting:?} heard as {spoken:?}: {:.0} % word errors", errors * 100.0);
    server.shutdown().await;
}

/// A call in the middle of an answer of several pieces (sentences, the first from its first clause): the greeting and
/// a first answer heard in full, then the pet policy asked for; its reply has arrived and only its first piece has
/// played (its mark echoed).
async fn mid_answer(
    server: &Server,
    call_sid: &str,
    caller: &str,
) -> (PhoneClient, tourdesk::bench::phone::HeardReply) {
    let mut phone = PhoneClient::connect(&server.url(), None).await.unwrap();
    phone.start(call_sid, caller).await;
    phone.reply(WAIT, QUIET, true, false).await;
    turn(&mut phone, "Hi, I'd like to tour Hudson 360, a two bedroom.").await;
    phone.send_audio(&said("What is the pet policy?").await, false).await;
    phone.send_silence(1000, false).await;
    let reply = phone.reply(WAIT, QUIET, false, false).await;
    assert!(reply.marks.len() >= 2, "a reply of several sentences: {:?}", reply.marks);
    phone.echo_mark(&reply.marks[0]).await;
    (phone, reply)
}

/// Says `text` over the agent; whether the server sent `clear` within 20 s.
async fn talk_over(phone: &mut PhoneClient, text: &str) -> bool {
    phone.send_audio(&said(text).await, false).await;
    while let Some((_, e)) = phone.next_event(Duration::from_secs(20)).await {
        if e == ServerEvent::Clear {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_clears_the_agents_audio_and_only_what_was_heard_is_remembered() {
    let server = start(None).await;
    // The answer (the policy, then the next question) arrives, but only its first sentence has played when the
    // caller talks over it.
    let (mut phone, _) = mid_answer(&server, "CAbargein", "+15552010002").await;
    assert!(talk_over(&mut phone, "Sorry, one more thing.").await, "barge-in sends clear");
    phone.send_silence(1000, false).await;
    phone.reply(WAIT, QUIET, true, false).await;
    hang_up(&mut phone).await;

    let rec = server.recording("CAbargein");
    let said_text = events(&rec, "reply").nth(2).unwrap()["text"].as_str().unwrap().to_string();
    let parts = speech_pieces(&said_text);
    let heard = events(&rec, "barge_in").next().expect("barge-in recorded")["heard"].as_str().unwrap().to_string();
    assert_eq!(heard, parts[0], "only the played piece was heard");
    let scope = Scope { user_id: Some("+15552010002".into()), ..Scope::default() };
    // The call's log holds what the caller heard of the agent; memory holds none of the agent's words.
    let logged = server.memory.memory().messages().list(&scope, None).await.unwrap();
    let agent_said: Vec<&str> = logged.iter().filter(|m| m.role == "assistant").map(|m| m.content.as_str()).collect();
    assert!(agent_said.contains(&parts[0].as_str()), "the heard piece is logged on its own: {agent_said:?}");
    assert!(!agent_said.contains(&said_text.as_str()), "the whole reply was never heard: {agent_said:?}");
    let memories = server.memory.memory().get_all(&scope, &MetadataFilter::All, 100).await.unwrap();
    assert!(memories.iter().all(|m| m.role.as_deref() != Some("assistant")), "{memories:?}");
    server.shutdown().await;
}

/// A backchannel over the agent's answer is a false interruption: the agent stops (it cannot know yet), then resumes
/// at the sentence that was cut, and the call's log holds the whole answer as heard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_false_interruption_the_agent_resumes_the_cut_sentence() {
    let server = start(None).await;
    let (mut phone, answer) = mid_answer(&server, "CAresume", "+15552010021").await;
    assert!(talk_over(&mut phone, "Hmm, hmm.").await, "the agent stops when talked over");
    phone.send_silence(1000, false).await;
    let resumed = phone.reply(WAIT, QUIET, true, false).await;
    hang_up(&mut phone).await;

    let rec = server.recording("CAresume");
    let resume = events(&rec, "resume").next().unwrap_or_else(|| {
        let heard: Vec<&Value> = events(&rec, "stt_noise").chain(events(&rec, "voice_turn")).collect();
        panic!("no resume; what was heard: {heard:?}")
    });
    assert_eq!(resume["sentences"].as_u64(), Some(answer.marks.len() as u64 - 1), "{resume}");
    assert_eq!(resumed.marks.len(), answer.marks.len() - 1, "the unplayed sentences, the cut one first");
    assert!(resumed.marks.iter().all(|m| m.contains("resume")), "{:?}", resumed.marks);
    let answer_text = events(&rec, "reply").nth(2).unwrap()["text"].as_str().unwrap().to_string();
    let scope = Scope { user_id: Some("+15552010021".into()), ..Scope::default() };
    let logged = server.memory.memory().messages().list(&scope, None).await.unwrap();
    let agent_said: Vec<&str> = logged.iter().filter(|m| m.role == "assistant").map(|m| m.content.as_str()).collect();
    assert!(agent_said.contains(&answer_text.as_str()), "the whole answer was heard: {agent_said:?}");
    assert_eq!(events(&rec, "voice_turn").count(), 2, "the backchannel was not answered as a request");
    server.shutdown().await;
}

/// A cough while the agent speaks is not an interruption: no `clear`, every sentence plays, nothing recorded as a
/// barge-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cough_during_the_agents_speech_does_not_lose_the_sentence() {
    let server = start(None).await;
    // The answer arrives; while its first sentence plays, the caller coughs: 150 ms of loud noise.
    let (mut phone, reply) = mid_answer(&server, "CAcough", "+15552010010").await;
    let mut seed = 7u32;
    let cough: Vec<f32> = (0..1_200)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((seed >> 8) as f32 / 16_777_216.0 * 2.0 - 1.0) * 0.5
        })
        .collect();
    phone.send_audio(&cough, false).await;
    phone.send_silence(1500, false).await;
    while let Some((_, e)) = phone.next_event(Duration::from_secs(2)).await {
        assert_ne!(e, ServerEvent::Clear, "a cough is not a barge-in");
    }
    for mark in &reply.marks[1..] {
        phone.echo_mark(mark).await;
    }
    hang_up(&mut phone).await;
    let rec = server.recording("CAcough");
    assert!(events(&rec, "barge_in").next().is_none(), "no barge-in recorded");
    assert_eq!(events(&rec, "voice_turn").count(), 2, "the cough was not taken for an utterance");
    server.shutdown().await;
}

/// Waits for the server to close the socket; returns the close code and reason.
async fn closed(phone: &mut PhoneClient) -> (u16, String) {
    while let Some((_, e)) = phone.next_event(Duration::from_secs(20)).await {
        if let ServerEvent::Closed(code, reason) = e {
            return (code, reason);
        }
    }
    panic!("the server did not close the call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_a_clear_close_or_are_skipped_and_other_calls_go_on() {
    let server = start(None).await;
    // A call that stays up throughout.
    let mut good = PhoneClient::connect(&server.url(), None).await.unwrap();
    good.start("CAgood", "+15552010003").await;
    assert!(good.reply(WAIT, QUIET, true, false).await.frames > 0);

    // Media before start: closed with a reason.
    let mut early = PhoneClient::connect(&server.url(), None).await.unwrap();
    early.send_raw(r#"{"event":"media","streamSid":"MZ1","media":{"payload":"//8="}}"#).await;
    let (code, reason) = closed(&mut early).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("media before start"), "{reason}");

    // Bad JSON, unknown events, bad base64 and a binary frame are skipped; the call still answers.
    let mut noisy = PhoneClient::connect(&server.url(), None).await.unwrap();
    noisy.send_raw("{not json").await;
    noisy.send_raw(r#"{"event":"teleport","to":"mars"}"#).await;
    noisy.start("CAnoisy", "+15552010004").await;
    noisy.send_raw(r#"{"event":"media","streamSid":"MZnoisy","media":{"payload":"***not base64***"}}"#).await;
    noisy.send_raw(r#"{"event":"media","streamSid":"MZnoisy"}"#).await;
    assert!(noisy.reply(WAIT, QUIET, true, false).await.frames > 0, "the greeting still comes");
    let reply = turn(&mut noisy, "Hudson 360, please.").await;
    assert!(reply.frames > 0, "and the call goes on");

    // A format other than 8 kHz μ-law: a clear close.
    let mut wrong = PhoneClient::connect(&server.url(), None).await.unwrap();
    wrong
        .send_raw(
            r#"{"event":"start","start":{"streamSid":"MZw","callSid":"CAw","customParameters":{},
            "mediaFormat":{"encoding":"audio/l16","sampleRate":16000,"channels":1}}}"#,
        )
        .await;
    let (code, reason) = closed(&mut wrong).await;
    assert_eq!(code, 1003);
    assert!(reason.contains("audio/x-mulaw"), "{reason}");

    // A 10 MB message closes only that connection.
    let mut huge = PhoneClient::connect(&server.url(), None).await.unwrap();
    huge.start("CAhuge", "+15552010005").await;
    huge.send_raw(format!(r#"{{"event":"media","media":{{"payload":"{}"}}}}"#, "A".repeat(10 << 20))).await;
    let (code, _) = closed(&mut huge).await;
    assert_ne!(code, 1000, "an oversized message is not a normal end");

    // Too many malformed messages: closed.
    let mut spam = PhoneClient::connect(&server.url(), None).await.unwrap();
    for _ in 0..30 {
        spam.send_raw("garbage").await;
    }
    let (code, reason) = closed(&mut spam).await;
    assert_eq!((code, reason.as_str()), (1008, "too many malformed messages"));

    // The first call is unaffected.
    let reply = turn(&mut good, "Riverview Lofts.").await;
    assert!(reply.frames > 0);
    hang_up(&mut good).await;
    let health = reqwest::get(format!("http://{}/healthz", server.addr)).await.unwrap();
    assert!(health.status().is_success());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_answers_twiml_and_twilio_signatures_are_enforced() {
    let token = "test-auth-token";
    let server = start(Some(token)).await;
    let check = SignatureCheck::new(ApiKey(token.into()));
    let http = reqwest::Client::new();
    let params =
        vec![("CallSid".to_string(), "CAweb".to_string()), ("From".to_string(), "+1 555-201-0006".to_string())];
    let host = server.addr.to_string();
    let webhook = format!("http://{host}/incoming-call");
    // Twilio signs the public https URL it called.
    let signed = check.sign(&format!("https://{host}/incoming-call"), &params);

    let unsigned = http.post(&webhook).form(&params).send().await.unwrap();
    assert_eq!(unsigned.status(), 403);
    let forged = http.post(&webhook).header("X-Twilio-Signature", "AAAA").form(&params).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    let mut tampered = params.clone();
    tampered[1].1 = "+15559999999".into();
    let replayed = http.post(&webhook).header("X-Twilio-Signature", &signed).form(&tampered).send().await.unwrap();
    assert_eq!(replayed.status(), 403, "a signature covers the parameters");

    let ok = http.post(&webhook).header("X-Twilio-Signature", &signed).form(&params).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.headers()["content-type"].to_str().unwrap().starts_with("text/xml"));
    let twiml = ok.text().await.unwrap();
    assert!(twiml.contains(&format!(r#"<Stream url="wss://{host}/media-stream">"#)), "{twiml}");
    assert!(twiml.contains(r#"<Parameter name="caller" value="+15552010006"/>"#), "{twiml}");

    // The media stream's upgrade is signed too (over its wss:// URL).
    assert!(PhoneClient::connect(&server.url(), None).await.is_err(), "unsigned upgrade refused");
    let ws_signature = check.sign(&format!("wss://{host}/media-stream"), &[]);
    let mut phone = PhoneClient::connect(&server.url(), Some(&ws_signature)).await.unwrap();
    phone.start("CAsigned", "+15552010006").await;
    assert!(phone.reply(WAIT, QUIET, true, false).await.frames > 0);
    hang_up(&mut phone).await;
    server.shutdown().await;
}

/// A caller who says goodbye hears the agent's goodbye, then the server ends the call by closing the media stream
/// (nothing follows `<Connect><Stream>` in the TwiML, so Twilio hangs up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_ends_after_the_caller_says_goodbye() {
    let server = start(None).await;
    let mut phone = PhoneClient::connect(&server.url(), None).await.unwrap();
    assert!(phone.start("CAgoodbye", "+15552010009").await);
    phone.reply(WAIT, QUIET, true, false).await;
    phone.send_audio(&said("That's all, goodbye.").await, false).await;
    phone.send_silence(1000, false).await;
    let mut heard_frames = 0;
    let closed = loop {
        match phone.next_event(WAIT).await {
            Some((_, ServerEvent::Media(_))) => heard_frames += 1,
            Some((_, ServerEvent::Mark(name))) => assert!(phone.echo_mark(&name).await),
            Some((_, ServerEvent::Closed(code, reason))) => break (code, reason),
            Some(_) => {}
            None => panic!("the server never ended the call"),
        }
    };
    assert!(heard_frames > 25, "the goodbye is spoken first");
    assert_eq!(closed, (1000, "call ended: goodbye".to_string()));
    let rec = server.recording("CAgoodbye");
    let reply = events(&rec, "reply").last().unwrap()["text"].as_str().unwrap().to_string();
    assert!(reply.ends_with("Goodbye!"), "{reply}");
    assert!(events(&rec, "hang_up").next().is_some());
    server.shutdown().await;
}

/// With Smart Turn deciding the end of a turn, a spoken request still ends, is heard and answered, and the recording
/// says how long the silence was before the turn was judged over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_smart_turn_a_finished_request_is_answered() {
    let mut voice = common::voice().await;
    let store = tourdesk::models::ModelStore::new(common::models_dir()).unwrap();
    voice.turn = Some(tourdesk::engine::load_smart_turn(&store).await.unwrap());
    let server = start_with(None, voice).await;
    let mut phone = PhoneClient::connect(&server.url(), None).await.unwrap();
    assert!(phone.start("CAsmartturn", "+15552010008").await);
    phone.reply(WAIT, QUIET, true, false).await;
    let reply = turn(&mut phone, "Hi, I'd like to tour Hudson 360, a two bedroom.").await;
    assert!(reply.frames > 25, "the request is answered");
    hang_up(&mut phone).await;
    let rec = server.recording("CAsmartturn");
    let timing = events(&rec, "voice_turn").next().expect("one voice turn");
    let silence = timing["vad_silence_ms"].as_f64().unwrap();
    assert!(
        (200.0..=1220.0).contains(&silence),
        "the turn ended between the first check and the cap (a frame past it at most): {silence} ms"
    );
    assert!(timing["transcript"].as_str().unwrap().to_lowercase().contains("hudson 360"), "{timing}");
    server.shutdown().await;
}

/// A caller says `first`, pauses 600 ms between the two voices and says `second`, in real time (the pause is
/// timed by the clock). Returns the call's recording, asserting it was answered once, after the whole sentence,
/// with a turn whose audio holds both parts and the pause; and the `unfinished` event that held the first part.
async fn pause_mid_sentence(call_sid: &str, caller: &str, first: &str, second: &str) -> (Value, Value) {
    let server = start(None).await;
    let mut phone = PhoneClient::connect(&server.url(), None).await.unwrap();
    assert!(phone.start(call_sid, caller).await);
    phone.reply(WAIT, QUIET, true, false).await;
    let (first, second) = (said(first).await, said(second).await);
    let (first, second) = (trim_silence(&first, VOICED_LEVEL), trim_silence(&second, VOICED_LEVEL));
    let mut audio = first.to_vec();
    audio.extend(vec![0.0; 600 * PHONE_RATE as usize / 1000]);
    audio.extend_from_slice(second);
    audio.extend(vec![0.0; PHONE_RATE as usize]);
    phone.send_audio(&audio, true).await;
    let reply = phone.reply(WAIT, QUIET, true, true).await;
    assert!(reply.frames > 25, "the whole sentence is answered");
    hang_up(&mut phone).await;
    let rec = server.recording(call_sid);
    server.shutdown().await;
    let turns: Vec<&Value> = events(&rec, "voice_turn").collect();
    assert_eq!(turns.len(), 1, "answered once, after the whole sentence: {turns:?}");
    let heard_ms = turns[0]["speech_ms"].as_f64().unwrap();
    let said_ms = (first.len() + 600 * PHONE_RATE as usize / 1000 + second.len()) as f64 * 1000.0 / PHONE_RATE as f64;
    assert!(heard_ms > said_ms, "{heard_ms} ms heard of {said_ms} ms said");
    let held = events(&rec, "unfinished").next().expect("the pause was heard as mid-sentence").clone();
    (turns[0].clone(), held)
}

/// The last word of `transcript`, as word error rate compares words.
fn last_word(transcript: &Value) -> String {
    words(transcript.as_str().unwrap()).pop().unwrap_or_default()
}

/// A caller who pauses mid-sentence for 600 ms, on a word a sentence cannot end with, is not answered at the pause:
/// the words after it are answered with it, as one turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_utterance_is_not_cut() {
    let (turn, held) = pause_mid_sentence("CApaused", "+15552010011", "I have a cat and", "a small dog.").await;
    assert!(turn["transcript"].as_str().unwrap().to_lowercase().contains("dog"), "{turn}");
    assert_eq!(last_word(&held["transcript"]), "and", "{held}");
    assert_eq!(held["why"], "words", "{held}");
}

/// A pause after a word that may end a sentence or go on ("I'd like to move in") is left to how it sounded: Smart
/// Turn hears the caller as unfinished, and the sentence is answered whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_the_words_cannot_judge_is_judged_by_smart_turn() {
    let (turn, held) =
        pause_mid_sentence("CApausein", "+15552010012", "I'd like to move in", "on January fifteenth.").await;
    assert!(turn["transcript"].as_str().unwrap().to_lowercase().contains("january"), "{turn}");
    assert_eq!(last_word(&held["transcript"]), "in", "{held}");
    let finished = held["why"]["smart_turn"].as_f64().expect("Smart Turn's judgement");
    assert!(finished < 0.5, "{held}");
}

/// Twilio's signatures for `urls` with `params`, made by Twilio's own Python library.
fn twilio_signatures(token: &str, urls: &[String], params: &[(String, String)]) -> Vec<String> {
    use std::io::Write;
    let mut child = std::process::Command::new(common::test_python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/twilio_sign.py"))
        .arg(token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let params: serde_json::Map<String, Value> = params.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    let request = serde_json::json!({"urls": urls, "params": params});
    child.stdin.take().unwrap().write_all(request.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "twilio_sign.py failed");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    answer["signatures"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// Twilio signs the full webhook URL, query string included, with or without the port: each form Twilio's own
/// validator accepts is accepted, and a changed query string is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_with_a_query_string_is_accepted_when_signed_and_refused_when_tampered() {
    let token = "query-auth-token";
    let server = start(Some(token)).await;
    let http = reqwest::Client::new();
    let params = vec![("CallSid".to_string(), "CAquery".to_string()), ("From".to_string(), "+15552010007".to_string())];
    let host = server.addr.to_string();
    let urls = [
        format!("https://{host}/incoming-call?office=hq&lang=en"),
        format!("https://{}/incoming-call?office=hq&lang=en", server.addr.ip()),
    ];
    let signatures = twilio_signatures(token, &urls, &params);
    let webhook = format!("http://{host}/incoming-call?office=hq&lang=en");
    for (url, signature) in urls.iter().zip(&signatures) {
        let ok = http.post(&webhook).header("X-Twilio-Signature", signature).form(&params).send().await.unwrap();
        assert_eq!(ok.status(), 200, "signed as {url}");
        assert!(ok.text().await.unwrap().contains("<Stream url="));
    }
    let tampered = format!("http://{host}/incoming-call?office=other&lang=en");
    let refused = http.post(&tampered).header("X-Twilio-Signature", &signatures[0]).form(&params).send().await.unwrap();
    assert_eq!(refused.status(), 403, "the signature covers the query string");
    let dropped = format!("http://{host}/incoming-call");
    let refused = http.post(&dropped).header("X-Twilio-Signature", &signatures[0]).form(&params).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_number_gets_no_ones_memories() {
    let server = start(None).await;
    let http = reqwest::Client::new();
    let twiml = http
        .post(format!("http://{}/incoming-call", server.addr))
        .form(&[("CallSid", "CAanon"), ("From", "anonymous")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(twiml.contains(r#"<Parameter name="caller" value=""/>"#), "{twiml}");
    let mut phone = PhoneClient::connect(&server.url(), None).await.unwrap();
    phone.start("CAanon", "").await;
    phone.reply(WAIT, QUIET, true, false).await;
    hang_up(&mut phone).await;
    let rec = server.recording("CAanon");
    assert_eq!(events(&rec, "call_start").next().unwrap()["user_id"], "anonymous-CAanon");
    server.shutdown().await;
}

/// A server whose office line is `+15550001111`, reached through `twilio` (the fake REST API), with media streams
/// signed by `TRANSFER_TOKEN`; and a call on it, greeted.
async fn call_with_office(twilio: &FakeTwilio, call_sid: &str) -> (Server, PhoneClient) {
    let api_url = twilio.api_url.clone();
    let server = start_configured(common::voice().await, |state| {
        state.twilio_auth_token = Some(ApiKey(TRANSFER_TOKEN.into()));
        state.office_phone = Some("+15550001111".into());
        state.twilio_api_url = api_url;
    })
    .await;
    let signature =
        SignatureCheck::new(ApiKey(TRANSFER_TOKEN.into())).sign(&format!("wss://{}/media-stream", server.addr), &[]);
    let mut phone = PhoneClient::connect(&server.url(), Some(&signature)).await.unwrap();
    assert!(phone.start(call_sid, "+15552010020").await);
    assert!(phone.reply(WAIT, QUIET, true, false).await.frames > 0, "greeted");
    (server, phone)
}

const TRANSFER_TOKEN: &str = "transfer-auth-token";

/// Pressing 0 puts the caller through to the office: the agent says so, and once that has played Twilio's
/// call-update API (a fake on loopback) is asked, as the call's account, to dial the office; the stream then ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pressing_zero_transfers_the_call_to_the_office() {
    let twilio = FakeTwilio::start(200).await;
    let (server, mut phone) = call_with_office(&twilio, "CAtransfer").await;
    assert!(phone.press('5').await, "other keys do nothing");
    assert!(phone.press('0').await);
    let mut frames = 0;
    let closed = loop {
        match phone.next_event(WAIT).await {
            Some((_, ServerEvent::Media(_))) => frames += 1,
            Some((_, ServerEvent::Mark(name))) => {
                assert!(twilio.updates().is_empty(), "Twilio is asked only once the caller has heard the agent");
                assert!(phone.echo_mark(&name).await);
            }
            Some((_, ServerEvent::Closed(code, reason))) => break (code, reason),
            Some(_) => {}
            None => panic!("the call was never handed over"),
        }
    };
    assert!(frames > 25, "the caller hears that they are being put through");
    assert_eq!(closed, (1000, "call transferred to the office".to_string()));
    let updates = twilio.updates();
    assert_eq!(updates.len(), 1, "one call update: {updates:?}");
    let update = &updates[0];
    assert_eq!((update.account_sid.as_str(), update.call_sid.as_str()), ("ACtest", "CAtransfer"));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ACtest:{TRANSFER_TOKEN}"));
    assert_eq!(update.authorization.as_deref(), Some(format!("Basic {basic}").as_str()));
    assert_eq!(update.form["Twiml"], "<Response><Dial>+15550001111</Dial></Response>");
    let rec = server.recording("CAtransfer");
    let transfer: Vec<&Value> = events(&rec, "transfer").collect();
    assert_eq!(transfer.len(), 1);
    assert_eq!((transfer[0]["ok"].as_bool(), transfer[0]["to"].as_str()), (Some(true), Some("+15550001111")));
    server.shutdown().await;
}

/// When Twilio refuses the transfer, nothing is claimed: the caller hears they could not be put through, gets the
/// office's number, and the call goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_transfer_is_told_to_the_caller_and_the_call_goes_on() {
    let twilio = FakeTwilio::start(404).await;
    let (server, mut phone) = call_with_office(&twilio, "CAnotransfer").await;
    assert!(phone.press('0').await);
    let heard = phone.reply(WAIT, Duration::from_secs(4), true, false).await;
    assert!(heard.marks.len() >= 3, "the put-through notice, then the apology with the number: {:?}", heard.marks);
    assert_eq!(twilio.updates().len(), 1);
    let reply = turn(&mut phone, "I'd like to tour Hudson 360.").await;
    assert!(reply.frames > 0, "the call goes on");
    hang_up(&mut phone).await;
    let rec = server.recording("CAnotransfer");
    let transfer: Vec<&Value> = events(&rec, "transfer").collect();
    assert_eq!(transfer[0]["ok"].as_bool(), Some(false));
    assert!(transfer[0]["error"].as_str().unwrap().contains("404"), "{}", transfer[0]);
    server.shutdown().await;
}

/// The session's audio as a test carrier records it: no Twilio, no socket.
#[derive(Default, Clone)]
struct Carrier {
    /// Marks of the sentences played, in order, with their frame counts.
    marks: Arc<std::sync::Mutex<Vec<(String, usize)>>>,
    hung_up: Arc<std::sync::Mutex<Option<String>>>,
}

impl CallAudio for Carrier {
    fn play(&self, frames: Vec<String>, mark: &str) {
        self.marks.lock().unwrap().push((mark.to_string(), frames.len()));
    }
    fn clear(&self) {}
    fn hang_up(&self, reason: &str) {
        *self.hung_up.lock().unwrap() = Some(reason.to_string());
    }
}

/// A line that cannot transfer.
struct NoOffice;

impl CallControl for NoOffice {
    fn office(&self) -> Result<&str, String> {
        Err("no office line here".into())
    }
    fn transfer(&self) -> futures::future::BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Err("no office line here".into()) })
    }
}

/// Waits until the carrier has been sent more than `seen` sentences and no new one for a second; marks them all
/// played, as a listener would.
async fn listen(session: &VoiceSession, carrier: &Carrier, seen: usize) -> usize {
    let until = std::time::Instant::now() + WAIT;
    let mut last = seen;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = carrier.marks.lock().unwrap().len();
        if now > seen && now == last {
            break;
        }
        last = now;
        assert!(std::time::Instant::now() < until, "nothing was said");
    }
    for (mark, frames) in carrier.marks.lock().unwrap().iter().skip(seen) {
        assert!(*frames > 10, "{mark} carries audio");
        session.played(mark);
    }
    last
}

/// The voice session is not tied to Twilio: a carrier of its own gets the greeting, an answer and the goodbye,
/// and is hung up on once the goodbye has played.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_voice_session_runs_a_call_over_any_carrier() {
    let (memory, dir) = common::fresh_memory().await;
    let agent = common::agent_in(&dir, MemoryService::new(memory)).await;
    let planner = tourdesk::agent::AgentPlanner::start(agent, "+15552010030", "CAcarrier");
    let carrier = Carrier::default();
    let session = VoiceSession::start(
        planner,
        common::voice().await,
        Arc::new(carrier.clone()),
        Arc::new(NoOffice),
        tracing::Span::none(),
    );
    let greeted = listen(&session, &carrier, 0).await;
    session.utterance(said("I'd like to tour Hudson 360, a two bedroom.").await, 400);
    let answered = listen(&session, &carrier, greeted).await;
    session.utterance(said("That's all, goodbye.").await, 400);
    listen(&session, &carrier, answered).await;
    let until = std::time::Instant::now() + WAIT;
    while carrier.hung_up.lock().unwrap().is_none() {
        assert!(std::time::Instant::now() < until, "never hung up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(carrier.hung_up.lock().unwrap().as_deref(), Some("call ended: goodbye"));
    session.finish().await;
}
