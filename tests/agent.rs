//! Whole conversations with the tour agent on the real embedder, real LanceDB memories and real bookings.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use common::fake_openai::{FakeOpenAi, Reply};
use tourdesk::agent::Wording;
use tourdesk::agent::{
    AgentConfig, AgentPlanner, BookOutcome, BookingStore, Catalog, MemoryService, Slot, Stage, Tools, TourType,
};
use tourdesk::inference::{ChatModel, LocalChatModel, LocalChatOptions, OpenAiChat, OpenAiClient, OpenAiConfig};

const DANA: &str = "+15551230001";
const SAM: &str = "+15559870002";

struct Office {
    dir: tempfile::TempDir,
    memory: MemoryService,
    tools: Tools,
}

/// Tuesday, 24 November 2026, 9 am at the office.
fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 24).unwrap().and_hms_opt(9, 0, 0).unwrap()
}

fn friday_at(h: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 27).unwrap().and_hms_opt(h, 0, 0).unwrap()
}

impl Office {
    async fn open() -> Self {
        let (memory, dir) = common::fresh_memory().await;
        let bookings = BookingStore::open(dir.path().to_str().unwrap()).await.unwrap();
        let tools = Tools::new(std::sync::Arc::new(Catalog::builtin().unwrap()), bookings);
        Self { memory: MemoryService::new(memory), tools, dir }
    }

    fn call(&self, user: &str, session: &str) -> AgentPlanner {
        let config = AgentConfig {
            memory: Some(self.memory.clone()),
            recordings: Some(self.dir.path().join("recordings")),
            mailer: Some(common::outbox_mailer(&self.dir)),
            ..self.bare()
        };
        AgentPlanner::start(config, user, session)
    }

    /// The agent on this office's bookings and clock, with no memory, recordings, wording or email.
    fn bare(&self) -> AgentConfig {
        AgentConfig {
            tools: self.tools.clone(),
            memory: None,
            recordings: None,
            now: Some(now()),
            wording: None,
            mailer: None,
        }
    }
}

async fn say(p: &mut AgentPlanner, text: &str) -> String {
    let reply = p.process_transcript(text).await.expect("turn");
    reply.text
}

/// Dana's first call, up to the booking.
async fn book_dana(office: &Office) -> AgentPlanner {
    let mut call = office.call(DANA, "CA-dana-1");
    let r = say(&mut call, "Hi, my name is Dana. I'm looking for a two-bedroom at Hudson 360.").await;
    assert!(r.contains("pets"), "{r}");
    say(&mut call, "I've got a cat.").await;
    say(&mut call, "I'd like to move in on January 15th").await;
    let r = say(&mut call, "Around four thousand a month").await;
    assert!(r.contains("in-person tour or a virtual"), "{r}");
    let r = say(&mut call, "A virtual tour please").await;
    assert!(r.contains("Wednesday, November 25 at 11:00 AM"), "real open slots are offered: {r}");
    let r = say(&mut call, "Friday at 11").await;
    assert!(r.contains("email"), "{r}");
    let r = say(&mut call, "my email is dana at example dot com").await;
    assert!(
        r.contains("Let me confirm") && r.contains("Friday, November 27 at 11:00 AM") && r.contains("+15551230001"),
        "{r}"
    );
    let r = say(&mut call, "Yes, book it").await;
    assert!(r.contains("confirmation code"), "{r}");
    call
}

#[tokio::test]
async fn a_new_caller_books_a_tour_end_to_end() {
    let office = Office::open().await;
    let mut call = book_dana(&office).await;
    let state = call.state().clone();
    assert_eq!(state.stage, Stage::Booked);
    assert_eq!(state.property.as_deref(), Some("hudson-360"));
    assert_eq!(state.bedrooms, Some(2));
    assert_eq!(state.pets.unwrap().cats, 1);
    assert_eq!(state.budget, Some(4000));
    assert_eq!(state.move_in, NaiveDate::from_ymd_opt(2027, 1, 15));
    assert_eq!(state.email.as_deref(), Some("dana@example.com"));
    let recording = call.recording().unwrap();
    call.finish().await;

    let bookings = office.tools.bookings_for(DANA).await.unwrap();
    assert_eq!(bookings.len(), 1);
    assert_eq!(bookings[0].start, friday_at(11));
    assert_eq!(Some(bookings[0].confirmation.clone()), state.confirmation);
    let (open, _) = office.tools.open_slots("hudson-360", TourType::Virtual, now()).await.unwrap();
    assert!(!open.contains(&friday_at(11)), "the booked slot is gone");
    assert!(open.contains(&friday_at(15)));

    // The flight recorder has every kind of event.
    let log = std::fs::read_to_string(recording).unwrap();
    for kind in ["session_start", "transcript", "reply", "tool", "state", "memory", "session_end"] {
        assert!(log.contains(&format!("\"kind\":\"{kind}\"")), "no {kind} event in the recording");
    }
    // The exchange and the preferences are in memory.
    let hits = office.memory.search(DANA, "does the caller have pets", 3).await.unwrap();
    assert!(hits.iter().any(|h| h.item.memory.contains("cat")), "{hits:?}");
    assert!(office.memory.slot_memory(DANA, Slot::Bedrooms).await.unwrap().is_some());
}

#[tokio::test]
async fn a_returning_caller_is_greeted_by_name_and_not_asked_again() {
    let office = Office::open().await;
    book_dana(&office).await.finish().await;

    let mut call = office.call(DANA, "CA-dana-2");
    let first = say(&mut call, "Hello, I'm calling back").await;
    assert!(first.contains("Welcome back") && first.contains("Dana"), "{first}");
    assert!(first.contains("Hudson 360") && first.contains("two-bedroom"), "{first}");
    // She hears the tour she has, is asked what to do with it, and is not offered new slots for it.
    assert!(first.contains("You have a virtual tour of Hudson 360 on Friday, November 27 at 11:00 AM"), "{first}");
    assert!(first.ends_with("Would you like to keep it, move it, or cancel it?"), "{first}");
    let code = office.tools.bookings_for(DANA).await.unwrap()[0].confirmation.clone();
    let spelled: Vec<String> = code.chars().map(String::from).collect();
    let mut replies = vec![first];
    let when = say(&mut call, "When is my tour?").await;
    assert!(when.contains("Friday, November 27 at 11:00 AM") && when.contains(&spelled.join(" ")), "{when}");
    replies.push(when);
    let kept = say(&mut call, "I'll keep it, thanks").await;
    assert!(kept.contains("stays as booked") && kept.contains("anything else"), "{kept}");
    replies.push(kept);
    let bye = say(&mut call, "No, that's all, thanks").await;
    assert!(bye.contains("Goodbye"), "{bye}");
    for r in &replies {
        for question in ["How many bedrooms", "Will any pets", "Which of our buildings", "May I have your name"] {
            assert!(!r.contains(question), "asked again ({question}): {r}");
        }
    }
    assert_eq!(call.state().tour_type, Some(TourType::Virtual));
    call.finish().await;
    assert_eq!(office.tools.bookings_for(DANA).await.unwrap().len(), 1, "no second booking by accident");

    // Another building is a new booking, and the one she has stays.
    let mut call = office.call(DANA, "CA-dana-3");
    say(&mut call, "Hi again").await;
    let r = say(&mut call, "I'd also like to see Riverview Lofts").await;
    assert!(r.contains("tour of Riverview Lofts, I can offer"), "{r}");
    assert_eq!(call.state().stage, Stage::Scheduling);
    assert_eq!(call.state().confirmation, None);
}

#[tokio::test]
async fn a_different_caller_knows_nothing_of_the_first() {
    let office = Office::open().await;
    book_dana(&office).await.finish().await;
    let mut call = office.call(SAM, "CA-sam-1");
    let r = say(&mut call, "Hi there").await;
    assert!(!r.contains("Dana") && !r.contains("Welcome back"), "{r}");
    assert!(r.contains("Which of our buildings"), "{r}");
    assert_eq!(call.state().name, None);
    assert_eq!(call.state().bedrooms, None);
    assert!(office
        .memory
        .search(SAM, "pets", 5)
        .await
        .unwrap()
        .iter()
        .all(|h| h.item.scope.user_id.as_deref() == Some(SAM)));
}

#[tokio::test]
async fn an_invalid_email_is_asked_again_and_a_taken_slot_is_refused() {
    let office = Office::open().await;
    book_dana(&office).await.finish().await;

    let mut call = office.call(SAM, "CA-sam-2");
    say(&mut call, "I'm Sam, I want a studio at Hudson 360, no pets").await;
    say(&mut call, "Moving in next month").await;
    say(&mut call, "My budget is $2,500").await;
    say(&mut call, "virtual").await;
    let r = say(&mut call, "Friday at 11 please").await;
    assert!(r.contains("isn't available"), "Dana holds Friday at 11: {r}");
    assert!(r.contains("Friday, November 27 at 3:00 PM"), "an alternative is offered: {r}");
    assert_eq!(call.state().tour_time, None);
    let r = say(&mut call, "OK, Friday at 3 then").await;
    assert!(r.contains("email"), "{r}");
    assert_eq!(call.state().tour_time, Some(friday_at(15)));

    let r = say(&mut call, "my email is sam at example").await;
    assert!(r.contains("doesn't look like a complete email") && r.contains("email address"), "{r}");
    assert_eq!(call.state().email, None);
    let r = say(&mut call, "sam at example dot org").await;
    assert!(r.contains("Let me confirm"), "{r}");
    assert_eq!(call.state().email.as_deref(), Some("sam@example.org"));
}

#[tokio::test]
async fn a_pet_fee_question_mid_booking_is_answered_and_booking_goes_on() {
    let office = Office::open().await;
    let mut call = office.call("+15550001111", "CA-pets");
    say(&mut call, "Hi, this is Lee, I'd like a one bedroom at Riverview Lofts").await;
    let r = say(&mut call, "What's the pet fee? I have a dog.").await;
    assert!(r.contains("$300") && r.contains("not dogs"), "the policy is answered from the catalog: {r}");
    assert!(r.contains("pets") || r.contains("move in"), "and the booking goes on: {r}");
    let r = say(&mut call, "Actually no pets").await;
    assert!(r.contains("move in"), "{r}");
    say(&mut call, "as soon as possible").await;
    let r = say(&mut call, "Is there parking? My budget is 2600 dollars.").await;
    assert!(r.contains("$175"), "{r}");
    assert_eq!(call.state().budget, Some(2600));
    assert!(r.contains("in-person tour or a virtual"), "{r}");
}

#[tokio::test]
async fn the_agent_works_without_memory() {
    let office = Office::open().await;
    let mut call = AgentPlanner::start(office.bare(), "+15550002222", "CA-nomem");
    let r = say(&mut call, "Hi, I'm Jo and I want a studio at 21 West End").await;
    assert!(r.contains("pets"), "{r}");
    call.finish().await;
}

fn wording_planner(office: &Office, wording: Wording, user: &str) -> AgentPlanner {
    let config =
        AgentConfig { recordings: Some(office.dir.path().join("recordings")), wording: Some(wording), ..office.bare() };
    AgentPlanner::start(config, user, &format!("{user}-session"))
}

/// The same caller without wording and without recordings: the template replies to compare with.
fn template_planner(office: &Office, user: &str) -> AgentPlanner {
    AgentPlanner::start(office.bare(), user, "plain")
}

fn recorded(planner: &AgentPlanner, kind: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(planner.recording().unwrap()).unwrap();
    text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).filter(|e| e["kind"] == kind).collect()
}

const WORDING_SCRIPT: [&str; 3] =
    ["Hi, I'm Dana. I'd like to tour Hudson 360, a two bedroom.", "What's the pet fee?", "I have a cat."];

#[tokio::test]
async fn a_chat_model_words_replies_but_the_tools_and_state_stay_in_charge() {
    let office = Office::open().await;
    let server = FakeOpenAi::start().await;
    let model = |server: &FakeOpenAi| {
        let config = OpenAiConfig {
            base_url: server.base_url.clone(),
            api_key: None,
            chat_model: "wording-test".into(),
            embedding_model: "unused".into(),
            timeout: Duration::from_secs(5),
            retries: 0,
            backoff: Duration::from_millis(10),
        };
        Arc::new(OpenAiChat::new(OpenAiClient::new(config).unwrap())) as Arc<dyn ChatModel>
    };
    let mut plain = template_planner(&office, "+15550001001");

    // A model that keeps every fact: its wording is spoken.
    server.chat([Reply::Reword]);
    let mut worded = wording_planner(&office, Wording::new(model(&server), Duration::from_secs(5)), "+15550001001");
    for line in WORDING_SCRIPT {
        let template = plain.process_transcript(line).await.unwrap();
        let reply = worded.process_transcript(line).await.unwrap();
        assert_eq!(reply.text, format!("Sure thing! {}", template.text));
        assert_eq!(reply.state, template.state, "the model never changes the state");
        assert_eq!(reply.tools.len(), template.tools.len());
    }
    let events = recorded(&worded, "wording");
    assert_eq!(events.len(), WORDING_SCRIPT.len());
    assert!(events.iter().all(|e| e["data"]["by_model"] == true && e["data"]["model"] == "openai:wording-test"));

    // A model that drops the facts (the pet fee, the caller's name): the template is spoken.
    server.chat([Reply::Chat("Happy to help with that!".into())]);
    let mut careless = wording_planner(&office, Wording::new(model(&server), Duration::from_secs(5)), "+15550001002");
    let reply = careless.process_transcript(WORDING_SCRIPT[0]).await.unwrap();
    assert!(reply.text.contains("Dana") && reply.text.ends_with('?'), "{}", reply.text);
    let event = &recorded(&careless, "wording")[0];
    assert_eq!(event["data"]["by_model"], false);
    assert!(event["data"]["fallback"].as_str().unwrap().contains("dropped"), "{event}");

    // A model slower than the turn's budget: the template is spoken on time.
    server.chat([Reply::Slow(Duration::from_secs(3), Box::new(Reply::Reword))]);
    let mut slow = wording_planner(&office, Wording::new(model(&server), Duration::from_millis(300)), "+15550001003");
    let started = std::time::Instant::now();
    let reply = slow.process_transcript(WORDING_SCRIPT[0]).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!reply.text.starts_with("Sure thing!"));
    assert!(recorded(&slow, "wording")[0]["data"]["fallback"].as_str().unwrap().contains("no wording within"));
}

#[tokio::test]
async fn the_local_model_words_a_turn_without_touching_the_state() {
    let office = Office::open().await;
    let path = common::gguf_path("qwen2.5-0.5b");
    let qwen = LocalChatModel::spawn(path, "qwen2.5-0.5b".into(), LocalChatOptions::default()).await.unwrap();
    let mut worded = wording_planner(&office, Wording::new(Arc::new(qwen), Duration::from_secs(60)), "+15550002001");
    let mut plain = template_planner(&office, "+15550002001");
    let line = WORDING_SCRIPT[0];
    let template = plain.process_transcript(line).await.unwrap();
    let reply = worded.process_transcript(line).await.unwrap();
    assert_eq!(reply.state, template.state);
    let event = &recorded(&worded, "wording")[0];
    assert_eq!(event["data"]["template"], template.text.as_str());
    if event["data"]["by_model"] == true {
        // Kept: the model's wording still carries the caller's name and the question.
        assert!(reply.text.contains("Dana") && reply.text.contains('?'), "{}", reply.text);
    } else {
        assert_eq!(reply.text, template.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_lists_and_cancels_tours_and_the_caller_memory_records_both() {
    let office = Office::open().await;
    let mut call = book_dana(&office).await;
    let code = call.state().confirmation.clone().unwrap();
    call.finish().await;
    // The booking is a memory of the caller, with its code and time.
    let hits = office.memory.search(DANA, "when is my tour", 5).await.unwrap();
    let booked = hits.iter().find(|h| h.item.metadata["kind"] == "booking").expect("booking remembered");
    assert!(booked.item.memory.contains(&code) && booked.item.memory.contains("Friday, November 27 at 11:00 AM"));
    assert_eq!(booked.item.metadata["event"], "booked");

    // The office's REST view, behind the API key.
    let config = AgentConfig { memory: Some(office.memory.clone()), ..office.bare() };
    let mut state = tourdesk::app::AppState::new(config);
    state.api_key = Some(tourdesk::inference::ApiKey("office-key".into()));
    let server = tourdesk::app::LoopbackServer::start(state, Duration::from_secs(5)).await.unwrap();
    let http = reqwest::Client::new();
    let get = |path: String| http.get(format!("http://{}{path}", server.addr)).bearer_auth("office-key").send();
    let listed: serde_json::Value = get("/bookings?from=2026-11-27".into()).await.unwrap().json().await.unwrap();
    assert_eq!(listed["results"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["results"][0]["confirmation"], code.as_str());
    let later: serde_json::Value = get("/bookings?from=2026-11-28".into()).await.unwrap().json().await.unwrap();
    assert!(later["results"].as_array().unwrap().is_empty());
    let one = get(format!("/bookings/{}", code.to_lowercase())).await.unwrap();
    assert_eq!(one.status(), 200, "codes are read in any case");
    assert_eq!(get("/bookings/ZZZZZZ".into()).await.unwrap().status(), 404);
    assert_eq!(get("/bookings/x'%20OR%201=1".into()).await.unwrap().status(), 400);
    assert_eq!(get("/bookings?from=friday".into()).await.unwrap().status(), 400);
    let anonymous = http.get(format!("http://{}/bookings", server.addr)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    // Cancelling frees the slot and is remembered on the caller's memory.
    let cancelled: serde_json::Value = http
        .delete(format!("http://{}/bookings/{code}", server.addr))
        .bearer_auth("office-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (cancelled["booking"]["confirmation"].as_str(), cancelled["remembered"].as_bool()),
        (Some(code.as_str()), Some(true))
    );
    let (open, _) = office.tools.open_slots("hudson-360", TourType::Virtual, now()).await.unwrap();
    assert!(open.contains(&friday_at(11)), "the slot is open again");
    assert_eq!(get(format!("/bookings/{code}")).await.unwrap().status(), 404);
    let hits = office.memory.search(DANA, "was my tour cancelled", 5).await.unwrap();
    assert!(
        hits.iter()
            .any(|h| h.item.metadata.get("event") == Some(&serde_json::json!("cancelled"))
                && h.item.memory.contains(&code)),
        "{hits:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_caller_cancels_their_tour_by_phone_after_saying_yes() {
    let office = Office::open().await;
    book_dana(&office).await.finish().await;
    let mut call = office.call(DANA, "CA-dana-2");
    say(&mut call, "Hi, it's Dana").await;
    let ask = say(&mut call, "Please cancel my tour").await;
    assert!(
        ask.contains("Shall I cancel your virtual tour of Hudson 360 on Friday, November 27 at 11:00 AM?"),
        "{ask}"
    );
    let kept = say(&mut call, "No").await;
    assert!(kept.contains("stays as booked") && !kept.contains("Goodbye"), "{kept}");
    assert_eq!(office.tools.bookings_for(DANA).await.unwrap().len(), 1);
    say(&mut call, "Actually, I do need to cancel my tour.").await;
    let done = say(&mut call, "Yes").await;
    assert!(done.contains("is cancelled"), "{done}");
    call.finish().await;
    assert!(office.tools.bookings_for(DANA).await.unwrap().is_empty());
    let (open, _) = office.tools.open_slots("hudson-360", TourType::Virtual, now()).await.unwrap();
    assert!(open.contains(&friday_at(11)), "the slot is open to others again");
    let hits = office.memory.search(DANA, "did I cancel my tour", 5).await.unwrap();
    assert!(
        hits.iter().any(|h| h.item.metadata.get("event").and_then(|v| v.as_str()) == Some("cancelled")
            && h.item.memory.contains("cancelled by the caller")),
        "{hits:?}"
    );
    // The next call knows there is no tour.
    let mut call = office.call(DANA, "CA-dana-3");
    let r = say(&mut call, "When is my tour?").await;
    assert!(r.contains("I don't see an upcoming tour"), "{r}");
}

/// The files in the test office's outbox, by name.
fn outbox(office: &Office) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(office.dir.path().join("outbox"))
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_moves_their_tour_then_cancels_it_and_memory_keeps_the_story() {
    let office = Office::open().await;
    let mut call = book_dana(&office).await;
    let code = call.state().confirmation.clone().unwrap();
    call.finish().await;

    // Second call: move it. The new slot is taken and the old one freed in one step; the code stays.
    let mut call = office.call(DANA, "CA-dana-2");
    let first = say(&mut call, "Hi, it's Dana").await;
    assert!(first.ends_with("keep it, move it, or cancel it?"), "{first}");
    let offer = say(&mut call, "I'd like to move it").await;
    assert!(offer.contains("new time for your virtual tour of Hudson 360") && offer.contains("I can offer"), "{offer}");
    let read_back = say(&mut call, "Friday at 3").await;
    assert!(
        read_back.contains(
            "move your virtual tour of Hudson 360 from Friday, November 27 at 11:00 AM to Friday, November 27 at 3:00 PM"
        ),
        "{read_back}"
    );
    let done = say(&mut call, "Yes please").await;
    assert!(done.contains("is now on Friday, November 27 at 3:00 PM") && done.contains("code stays"), "{done}");
    assert!(!done.contains("email"), "no SMTP server: no email is claimed: {done}");
    call.finish().await;
    let tours = office.tools.bookings_for(DANA).await.unwrap();
    assert_eq!(tours.len(), 1, "{tours:?}");
    assert_eq!((tours[0].start, tours[0].confirmation.as_str(), tours[0].sequence), (friday_at(15), code.as_str(), 1));
    let (open, _) = office.tools.open_slots("hudson-360", TourType::Virtual, now()).await.unwrap();
    assert!(open.contains(&friday_at(11)) && !open.contains(&friday_at(15)), "old slot free, new slot taken");
    let filter = tourdesk::memory::MetadataFilter::parse(&serde_json::json!({"kind": "booking"})).unwrap();
    let scope = tourdesk::memory::Scope::user(DANA);
    let booking_memory = office.memory.memory().get_all(&scope, &filter, 10).await.unwrap();
    assert_eq!(booking_memory.len(), 1, "one memory per tour: {booking_memory:?}");
    let tour_memory = &booking_memory[0];
    assert!(tour_memory.memory.contains("moved by the caller from Friday, November 27 at 11:00 AM"), "{tour_memory:?}");
    let history = office.memory.memory().history(&tour_memory.id).await.unwrap();
    let events: Vec<&str> = history.iter().map(|h| h.event.as_str()).collect();
    assert_eq!(events, ["ADD", "UPDATE"]);

    // Third call: "when is my tour?", then cancel.
    let mut call = office.call(DANA, "CA-dana-3");
    say(&mut call, "Hello").await;
    let when = say(&mut call, "When is my tour?").await;
    assert!(when.contains("Friday, November 27 at 3:00 PM"), "{when}");
    let ask = say(&mut call, "Please cancel it, I can't make it to my tour").await;
    assert!(ask.contains("Shall I cancel your virtual tour of Hudson 360 on Friday, November 27 at 3:00 PM?"), "{ask}");
    let cancelled = say(&mut call, "Yes").await;
    assert!(cancelled.contains("is cancelled"), "{cancelled}");
    call.finish().await;
    assert!(office.tools.bookings_for(DANA).await.unwrap().is_empty());
    let (open, _) = office.tools.open_slots("hudson-360", TourType::Virtual, now()).await.unwrap();
    assert!(open.contains(&friday_at(15)), "the slot is offered to others again");
    let tour_memory = office.memory.memory().get(&tour_memory.id).await.unwrap();
    assert!(tour_memory.memory.starts_with("Tour cancelled by the caller"), "{tour_memory:?}");
    let history = office.memory.memory().history(&tour_memory.id).await.unwrap();
    assert_eq!(history.iter().map(|h| h.event.as_str()).collect::<Vec<_>>(), ["ADD", "UPDATE", "UPDATE"]);

    // No SMTP server here: every confirmation is in the outbox, with its invitation.
    let files = outbox(&office);
    let expected: Vec<String> =
        ["0-booked", "1-moved", "2-cancelled"].iter().map(|s| format!("{code}-{s}.eml")).collect();
    assert_eq!(files, expected);
    let cancel = std::fs::read_to_string(office.dir.path().join("outbox").join(&expected[2])).unwrap();
    assert!(cancel.replace('"', "").contains("method=CANCEL"), "{cancel}");
    assert!(cancel.contains("To: Dana <dana@example.com>"), "{cancel}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_caller_changes_a_tour_only_with_its_code() {
    let office = Office::open().await;
    let mut call = book_dana(&office).await;
    let code = call.state().confirmation.clone().unwrap();
    call.finish().await;
    let spelled: Vec<String> = code.chars().map(String::from).collect();

    let mut call = office.call(SAM, "CA-sam-code");
    say(&mut call, "Hi").await;
    let r = say(&mut call, "I need to cancel my tour").await;
    assert!(r.contains("I don't see an upcoming tour booked for this number") && r.contains("code"), "{r}");
    assert_eq!(office.tools.bookings_for(DANA).await.unwrap().len(), 1, "nothing changes without the code");
    let r = say(&mut call, "My confirmation code is Z Z 9 9 Z Z").await;
    assert!(r.contains("couldn't find an upcoming tour with the code Z Z 9 9 Z Z"), "{r}");
    let r = say(&mut call, &format!("Sorry, the code is {}", spelled.join(" "))).await;
    assert!(r.contains("I found your virtual tour of Hudson 360"), "{r}");
    assert!(r.contains("Shall I cancel"), "the cancellation asked for is taken up: {r}");
    let r = say(&mut call, "Yes").await;
    assert!(r.contains("is cancelled"), "{r}");
    call.finish().await;
    assert!(office.tools.bookings_for(DANA).await.unwrap().is_empty());
    let hits = office.memory.search(DANA, "was the tour cancelled", 5).await.unwrap();
    assert!(
        hits.iter().any(|h| h.item.memory.contains("cancelled by a caller with the confirmation code")),
        "the owner's memory says who: {hits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_booking_of_the_same_building_becomes_a_move() {
    let office = Office::open().await;
    // A second call from Dana starts before the first one books, so it knows of no tour.
    let mut second = office.call(DANA, "CA-dana-b");
    say(&mut second, "Hi, my name is Dana. I'm looking for a two-bedroom at Hudson 360.").await;
    book_dana(&office).await.finish().await;
    say(&mut second, "I've got a cat.").await;
    say(&mut second, "I'd like to move in on January 15th").await;
    say(&mut second, "Around four thousand a month").await;
    say(&mut second, "A virtual tour please").await;
    say(&mut second, "Friday at 3").await;
    let r = say(&mut second, "my email is dana at example dot com").await;
    assert!(r.contains("Let me confirm"), "{r}");
    let r = say(&mut second, "Yes").await;
    assert!(
        r.contains("You already have a virtual tour of Hudson 360 on Friday, November 27 at 11:00 AM")
            && r.contains("move it to Friday, November 27 at 3:00 PM instead?"),
        "{r}"
    );
    assert_eq!(office.tools.bookings_for(DANA).await.unwrap().len(), 1, "no second booking");
    let r = say(&mut second, "Yes").await;
    assert!(r.contains("is now on Friday, November 27 at 3:00 PM"), "{r}");
    second.finish().await;
    let tours = office.tools.bookings_for(DANA).await.unwrap();
    assert_eq!((tours.len(), tours[0].start), (1, friday_at(15)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_memory_holds_what_they_said_and_the_log_holds_the_conversation() {
    let office = Office::open().await;
    book_dana(&office).await.finish().await;
    let scope = tourdesk::memory::Scope::user(DANA);
    let all = office.memory.memory().get_all(&scope, &tourdesk::memory::MetadataFilter::All, 100).await.unwrap();
    for item in &all {
        assert_ne!(item.role.as_deref(), Some("assistant"), "an agent line is stored as a fact: {item:?}");
        for ours in ["Thanks for calling", "Will any pets", "Let me confirm", "You're all set"] {
            assert!(!item.memory.contains(ours), "agent boilerplate in memory: {item:?}");
        }
        assert_ne!(item.memory, "Yes, book it", "a bare yes is not a fact about the caller");
    }
    assert!(all.iter().any(|i| i.memory == "I've got a cat."), "what she said is remembered: {all:?}");
    let hits = office.memory.search(DANA, "what did the agent ask about pets", 5).await.unwrap();
    assert!(hits.iter().all(|h| !h.item.memory.contains("Will any pets")), "{hits:?}");
    // The conversation, word for word and in order, is in the session's message log.
    let session = tourdesk::memory::Scope { run_id: Some("CA-dana-1".into()), ..Default::default() };
    let log = office.memory.memory().messages().list(&session, None).await.unwrap();
    assert_eq!(log.len(), 16, "eight exchanges: {log:?}");
    assert_eq!((log[0].role.as_str(), log[1].role.as_str()), ("user", "assistant"));
    assert!(log[0].content.starts_with("Hi, my name is Dana"), "{:?}", log[0]);
    assert!(log[1].content.starts_with("Thanks for calling Harborline Leasing, Dana!"), "{:?}", log[1]);
    assert!(log.windows(2).all(|w| w[0].turn <= w[1].turn));
    assert!(log.last().unwrap().content.contains("confirmation code"));
    // Forgetting the caller removes the log too.
    let report = office.memory.memory().forget(&scope).await.unwrap();
    assert_eq!(report.messages, 16);
    assert!(office.memory.memory().messages().list(&session, None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_racing_for_one_slot_book_it_once() {
    // Two connections to one folder stand for two servers: each has its own in-process lock, so only the table's
    // key decides. Every round both book the same slot at once. The table was made by an older tourdesk (no key,
    // no sequence column): opening it brings it up to date.
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().to_str().unwrap();
    let columns = ["slot", "confirmation", "property", "tour_type", "start", "user_id", "name", "email", "phone"];
    let legacy = arrow_schema::Schema::new(
        columns.iter().map(|c| arrow_schema::Field::new(*c, arrow_schema::DataType::Utf8, false)).collect::<Vec<_>>(),
    );
    let db = lancedb::connect(uri).execute().await.unwrap();
    db.create_empty_table("bookings", Arc::new(legacy)).execute().await.unwrap();
    let (one, two) = (BookingStore::open(uri).await.unwrap(), BookingStore::open(uri).await.unwrap());
    for hour in 9..15 {
        let booking = |code: &str| tourdesk::agent::Booking {
            confirmation: code.into(),
            property: "hudson-360".into(),
            tour_type: TourType::InPerson,
            start: friday_at(hour),
            user_id: format!("+1555000{code}"),
            name: "Racer".into(),
            email: "racer@example.com".into(),
            phone: String::new(),
            sequence: 0,
        };
        let (a, b) = tokio::join!(one.book(booking(&format!("A{hour}XX"))), two.book(booking(&format!("B{hour}XX"))));
        let booked = [a.unwrap(), b.unwrap()].iter().filter(|o| matches!(o, BookOutcome::Booked(_))).count();
        assert_eq!(booked, 1, "the {hour}:00 slot is booked once");
    }
    assert_eq!(one.list(None).await.unwrap().len(), 6, "one row per slot");
}
