//! One phone call's voice session, whatever carries its audio: it greets, transcribes each utterance the
//! transport's voice-activity detector ends, answers through the planner, speaks the reply sentence by sentence with
//! a mark after each, and keeps what the caller heard. When the caller talks over unplayed sentences it clears them;
//! if what they said turns out to be noise or a backchannel ("mm-hm"), the reply resumes at the cut sentence,
//! otherwise the planner keeps only what was heard (once, when that is known). It hangs up after a goodbye and
//! hands the call to the office when asked.
//!
//! Transcription starts when the caller pauses ([`VoiceSession::paused`]): if the pause turns out to end the
//! utterance, the transcript is ready or nearly so when the turn is over, instead of starting then. An utterance
//! whose words stop mid-phrase ([`sounds_unfinished`]) is not answered at once: if the caller goes on within the
//! longest pause the detector allows an unfinished turn, what they say next is transcribed and answered with it, as
//! one turn.
//!
//! The transport is a codec at the edge: it implements [`CallAudio`] (play frames with a mark, clear, hang up) and
//! [`CallControl`] (transfer), and feeds the session speech starts, ended utterances, played marks and key presses.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{warn, Instrument, Span};

use super::voice::{speak_frames, speech_pieces, PHONE_RATE, STT_RATE};
use crate::agent::{AgentPlanner, Reply};
use crate::inference::InferenceError;
use crate::speech::audio::resample;
use crate::speech::unfinished::{may_go_on, sounds_unfinished};
use crate::speech::{SttHandle, Transcript, Voice};

/// Utterances waiting for the session's task before new ones are dropped.
const UTTERANCE_QUEUE: usize = 4;

/// How the session's audio reaches the caller.
pub trait CallAudio: Send + Sync + 'static {
    /// Queues 20 ms frames of 8 kHz μ-law audio (base64) to play, followed by `mark`, which comes back through
    /// [`VoiceSession::played`] once everything before it has played.
    fn play(&self, frames: Vec<String>, mark: &str);
    /// Drops audio queued but not yet played.
    fn clear(&self);
    /// Ends the call, saying why.
    fn hang_up(&self, reason: &str);
}

/// Call handling beyond audio.
pub trait CallControl: Send + Sync + 'static {
    /// The office's number calls are transferred to, or why there are no transfers.
    fn office(&self) -> Result<&str, String>;
    /// Connects the caller to the office; once this succeeds the session is over.
    fn transfer(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// A running voice session. Dropping it without [`VoiceSession::finish`] lets it finish in the background.
pub struct VoiceSession {
    playback: Arc<Mutex<Playback>>,
    jobs: mpsc::Sender<Job>,
    task: JoinHandle<()>,
    stt: SttHandle,
    /// The transcript started at the current utterance's latest pause.
    ahead: Mutex<Option<Ahead>>,
    /// How many times the caller has started speaking.
    starts: watch::Sender<u64>,
}

/// An utterance that stopped mid-phrase, carried into the one that continues it.
struct Carried {
    /// Its 8 kHz samples.
    samples: Vec<f32>,
    /// The caller's speech starts when it ended: the next start begins its continuation.
    starts: u64,
}

/// A transcript started at a pause, before it was known whether the pause ends the utterance.
struct Ahead {
    /// Samples of the utterance when it started; its speech had ended before them.
    len: usize,
    transcript: JoinHandle<Result<Transcript, InferenceError>>,
}

/// A transcript nobody will use is dropped from the Whisper thread's queue (or, if already running, finishes unread).
impl Drop for Ahead {
    fn drop(&mut self) {
        self.transcript.abort();
    }
}

impl Ahead {
    /// The transcript, if the utterance that ended (`samples` long, the last `trailing` of them silence) is the one
    /// transcribed, with only silence added since.
    fn fits(&self, samples: usize, trailing: usize) -> bool {
        samples.saturating_sub(trailing) <= self.len && self.len <= samples
    }
}

impl VoiceSession {
    /// Starts the session for `planner` (which holds its exchanges until the caller has heard them) and greets the
    /// caller; its task runs in `span`.
    pub fn start(
        mut planner: AgentPlanner,
        voice: Voice,
        audio: Arc<dyn CallAudio>,
        control: Arc<dyn CallControl>,
        span: Span,
    ) -> Self {
        planner.hold_exchanges();
        let playback = Arc::new(Mutex::new(Playback { generation: 0, sent: Vec::new(), audio }));
        let (jobs, rx) = mpsc::channel(UTTERANCE_QUEUE);
        let (starts, starts_rx) = watch::channel(0);
        let stt = voice.stt.clone();
        let task = tokio::spawn(call_task(planner, voice, playback.clone(), control, rx, starts_rx).instrument(span));
        let _ = jobs.try_send(Job::Greet);
        Self { playback, jobs, task, stt, ahead: Mutex::new(None), starts }
    }

    /// The caller started speaking: a barge-in if the agent is talking.
    pub fn speech_started(&self) {
        self.starts.send_modify(|n| *n += 1);
        self.take_ahead();
        barge_in(&self.playback, &self.jobs);
    }

    /// The caller paused in an utterance (8 kHz samples so far): its transcript starts now, in case the pause ends
    /// it. A transcript started at an earlier pause of the same utterance is no longer wanted.
    pub fn paused(&self, samples: Vec<f32>) {
        let stt = self.stt.clone();
        let len = samples.len();
        let transcript =
            tokio::spawn(async move { stt.transcribe_ahead(resample(&samples, PHONE_RATE, STT_RATE)).await });
        *self.ahead.lock().unwrap_or_else(|e| e.into_inner()) = Some(Ahead { len, transcript });
    }

    /// The transcript started at the latest pause, leaving none.
    fn take_ahead(&self) -> Option<Ahead> {
        self.ahead.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The caller went on after the pause: its transcript is not wanted.
    pub fn resumed(&self) {
        self.take_ahead();
    }

    /// The caller finished an utterance (8 kHz samples) after `trailing_silence_ms` of silence.
    pub fn utterance(&self, samples: Vec<f32>, trailing_silence_ms: u32) {
        let trailing = trailing_silence_ms as usize * PHONE_RATE as usize / 1000;
        let ahead = self.take_ahead().filter(|a| a.fits(samples.len(), trailing));
        let starts = *self.starts.borrow();
        let job = Job::Utterance { samples, ended: Instant::now(), trailing_silence_ms, ahead, starts };
        if self.jobs.try_send(job).is_err() {
            warn!("the caller is talking faster than the agent answers; utterance dropped");
        }
    }

    /// Everything sent before `mark` has played.
    pub fn played(&self, mark: &str) {
        let mut p = self.playback.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = p.sent.iter_mut().find(|s| s.mark == mark) {
            s.played = true;
        }
    }

    /// The caller pressed `key`: 0 asks for the office.
    pub fn key_pressed(&self, key: &str) {
        if key == "0" && self.jobs.try_send(Job::Transfer).is_err() {
            warn!("transfer request dropped: the call's queue is full");
        }
    }

    /// Answers what is queued, then flushes the caller's memory and ends the recording.
    pub async fn finish(self) {
        drop(self.jobs);
        let _ = self.task.await;
    }
}

/// A sentence sent to the caller and whether it has played.
struct Sent {
    /// The reply it belongs to (0 is the greeting).
    turn: usize,
    mark: String,
    text: String,
    played: bool,
}

/// What the caller has been sent; shared by the transport's reader (marks, barge-in) and the session's task
/// (sending). Sending and clearing happen under its lock, so no frame of a cut-off reply can follow a `clear`.
struct Playback {
    /// Bumped by every barge-in: a reply being spoken under an older generation stops.
    generation: u64,
    sent: Vec<Sent>,
    audio: Arc<dyn CallAudio>,
}

impl Playback {
    /// Whether audio is still queued or playing at the caller's end.
    fn talking(&self) -> bool {
        self.sent.iter().any(|s| !s.played)
    }
}

/// Work for the session's task.
enum Job {
    /// Greet the caller.
    Greet,
    /// Transcribe and answer an utterance (8 kHz samples); `ended` is when the VAD decided it ended,
    /// `trailing_silence_ms` how much silence that took, `ahead` its transcript started at that pause, `starts`
    /// how many times the caller had started speaking by then.
    Utterance { samples: Vec<f32>, ended: Instant, trailing_silence_ms: u32, ahead: Option<Ahead>, starts: u64 },
    /// The caller barged in having heard only `heard` of the last reply; `unheard` are its sentences not yet
    /// played, the cut one first.
    Heard { heard: String, unheard: Vec<String> },
    /// The caller pressed 0: put them through to the office.
    Transfer,
}

/// The caller started speaking: if sentences are unplayed, clear them and tell the planner what was heard.
fn barge_in(playback: &Arc<Mutex<Playback>>, jobs: &mpsc::Sender<Job>) {
    let mut p = playback.lock().unwrap_or_else(|e| e.into_inner());
    if !p.talking() {
        return;
    }
    p.generation += 1;
    // What was heard of the reply being cut off (the latest one); earlier replies were heard whole.
    let latest = p.sent.iter().map(|s| s.turn).max().unwrap_or_default();
    let heard =
        p.sent.iter().filter(|s| s.turn == latest && s.played).map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
    let unheard = p.sent.iter().filter(|s| s.turn == latest && !s.played).map(|s| s.text.clone()).collect();
    p.sent.clear();
    p.audio.clear();
    drop(p);
    if jobs.try_send(Job::Heard { heard, unheard }).is_err() {
        warn!("barge-in not passed to the planner: its queue is full");
    }
}

/// Owns the planner: greets, answers utterances, applies barge-ins, and finishes the session when the transport
/// drops the queue.
async fn call_task(
    mut planner: AgentPlanner,
    voice: Voice,
    playback: Arc<Mutex<Playback>>,
    control: Arc<dyn CallControl>,
    mut jobs: mpsc::Receiver<Job>,
    mut starts: watch::Receiver<u64>,
) {
    let mut turn = 0usize;
    // A reply the caller talked over, until what they said is known.
    let mut cut: Option<Cut> = None;
    // What was heard of the latest reply before it was resumed, while it is still the latest.
    let mut resumed: Option<String> = None;
    let mut resumes = 0usize;
    // An utterance that stopped mid-phrase, while the caller goes on from it.
    let mut carried: Option<Carried> = None;
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Greet => match planner.greet().await {
                Ok(reply) => {
                    let spoken = speak(&voice, &playback, &reply.text, turn).await;
                    planner.record_event("voice_greeting", None, json!({"text": reply.text, "tts_ms": spoken.tts_ms}));
                }
                Err(e) => warn!(error = %e, "greeting failed"),
            },
            Job::Transfer => {
                if let Some(c) = cut.take() {
                    planner.heard(&c.heard);
                }
                resumed = None;
                turn += 1;
                if transfer(&mut planner, &voice, &playback, control.as_ref(), turn).await {
                    break;
                }
            }
            Job::Heard { heard, unheard } => {
                let heard = match resumed.take() {
                    Some(before) => format!("{before} {heard}").trim().to_string(),
                    None => heard,
                };
                planner.record_event("barge_in", None, json!({"heard": heard}));
                if let Some(earlier) = cut.replace(Cut { heard, unheard, turn }) {
                    planner.heard(&earlier.heard);
                }
            }
            Job::Utterance { mut samples, ended, trailing_silence_ms, mut ahead, starts: starts_at_end } => {
                // The utterance that continues an unfinished one (the next the caller started) is heard with it,
                // transcribed whole: Whisper hears "a small dog" better after "I have a cat and".
                if let Some(before) = carried.take().filter(|c| c.starts + 1 == starts_at_end) {
                    samples = [before.samples, samples].concat();
                    ahead = None;
                }
                let speech_ms = samples.len() as f64 * 1000.0 / PHONE_RATE as f64;
                let t = Instant::now();
                let started_ahead = ahead.is_some();
                let transcript = match ahead {
                    Some(mut ahead) => {
                        (&mut ahead.transcript).await.unwrap_or_else(|e| Err(InferenceError::Invalid(e.to_string())))
                    }
                    None => voice.stt.transcribe(resample(&samples, PHONE_RATE, STT_RATE)).await,
                };
                let transcript = match transcript {
                    Ok(t) => t,
                    Err(e) => {
                        warn!(error = %e, "speech-to-text failed; utterance skipped");
                        planner.record_event("stt_error", None, json!({"error": e.to_string()}));
                        continue;
                    }
                };
                let stt_ms = t.elapsed().as_secs_f64() * 1000.0;
                let text = transcript.text.trim();
                if let Some(c) = cut.take() {
                    if is_noise(text) || is_backchannel(text) || transcript.avg_logprob < UNSURE_LOGPROB {
                        // A false interruption: the reply goes on from the sentence that was cut.
                        planner.record_event(
                            "resume",
                            None,
                            json!({"after": text, "stt_avg_logprob": transcript.avg_logprob, "sentences": c.unheard.len()}),
                        );
                        resumed = Some(c.heard);
                        resumes += 1;
                        speak_sentences(
                            &voice,
                            &playback,
                            c.unheard,
                            c.turn,
                            &format!("turn{}-resume{resumes}", c.turn),
                        )
                        .await;
                        continue;
                    }
                    planner.heard(&c.heard);
                }
                if is_noise(text) {
                    planner.record_event("stt_noise", None, json!({"text": text, "stt_ms": stt_ms}));
                    continue;
                }
                if let Some(why) = unfinished(&voice, text, &samples, trailing_silence_ms).await {
                    let waited = Duration::from_millis(trailing_silence_ms.into()) + ended.elapsed();
                    let longest = Duration::from_millis(voice.vad.turn_max_silence_ms.into());
                    if went_on(&mut starts, starts_at_end, longest.saturating_sub(waited)).await {
                        planner.record_event("unfinished", None, json!({"transcript": text, "why": why}));
                        carried = Some(Carried { samples, starts: starts_at_end });
                        continue;
                    }
                }
                resumed = None;
                let t = Instant::now();
                let reply: Reply = match planner.process_transcript(text).await {
                    Ok(r) => r,
                    Err(e) => {
                        warn!(error = %e, "the agent could not answer");
                        continue;
                    }
                };
                let agent_ms = t.elapsed().as_secs_f64() * 1000.0;
                turn += 1;
                let spoken = speak(&voice, &playback, &reply.text, turn).await;
                let first_audio_ms = spoken.first_audio.map(|at| at.duration_since(ended).as_secs_f64() * 1000.0);
                planner.record_event(
                    "voice_turn",
                    None,
                    json!({
                        "transcript": text,
                        "speech_ms": speech_ms,
                        "vad_silence_ms": trailing_silence_ms,
                        "stt_ms": stt_ms,
                        "stt_started_at_pause": started_ahead,
                        "stt_encode_ms": transcript.encode_ms,
                        "stt_decode_ms": transcript.decode_ms,
                        "stt_avg_logprob": transcript.avg_logprob,
                        "agent_ms": agent_ms,
                        "tts_first_ms": spoken.tts_ms,
                        "vad_end_to_first_audio_ms": first_audio_ms,
                        "speech_end_to_first_audio_ms": first_audio_ms.map(|ms| ms + trailing_silence_ms as f64),
                        "sentences": spoken.sentences,
                        "cut_off": spoken.cut_off,
                    }),
                );
                if planner.call_over() && !spoken.cut_off {
                    hang_up(&playback).await;
                    planner.record_event("hang_up", None, json!({"reason": "goodbye"}));
                    break;
                }
            }
        }
    }
    if let Some(c) = cut.take() {
        planner.heard(&c.heard);
    }
    planner.finish().await;
}

/// Why an utterance (8 kHz `samples`, the last `trailing_silence_ms` of them silence) seems to stop mid-phrase, if
/// it does: its words, or, when its last word may as well end it as go on, Smart Turn's probability that the caller
/// had finished (below one half).
async fn unfinished(voice: &Voice, text: &str, samples: &[f32], trailing_silence_ms: u32) -> Option<serde_json::Value> {
    if sounds_unfinished(text) {
        return Some(json!("words"));
    }
    let judge = voice.turn_check.as_ref().filter(|_| may_go_on(text))?;
    // Heard with as much silence after the voice as when Smart Turn times a pause.
    let cut = trailing_silence_ms.saturating_sub(voice.vad.turn_check_ms) as usize * PHONE_RATE as usize / 1000;
    match judge.complete_at(&samples[..samples.len().saturating_sub(cut)], PHONE_RATE).await {
        Ok(finished) if finished < 0.5 => Some(json!({"smart_turn": finished})),
        Ok(_) => None,
        Err(e) => {
            warn!(error = %e, "Smart Turn failed; the utterance is taken as finished");
            None
        }
    }
}

/// Whether the caller starts speaking again (their speech starts pass `starts_at_end`) within `within`.
async fn went_on(starts: &mut watch::Receiver<u64>, starts_at_end: u64, within: Duration) -> bool {
    matches!(tokio::time::timeout(within, starts.wait_for(|&n| n > starts_at_end)).await, Ok(Ok(_)))
}

/// A reply the caller talked over: what they heard of it, and its sentences they did not hear (the cut one first).
struct Cut {
    heard: String,
    unheard: Vec<String>,
    turn: usize,
}

/// Whisper's mean token log-probability below which a transcript is a guess (OpenAI's Whisper retries below it).
/// Over the agent's speech such a guess is a false interruption: espeak-ng's "Hmm, hmm." comes back as "em-em-em"
/// at -1.1 to -1.3 or "Tim" at -2.2, its requests at -0.2 to -0.6.
const UNSURE_LOGPROB: f64 = -1.0;

/// A backchannel: the caller is listening, not asking ("mm-hm", "uh-huh", "hmm").
fn is_backchannel(text: &str) -> bool {
    let letters: String = text.chars().filter(|c| c.is_alphabetic()).flat_map(char::to_lowercase).collect();
    matches!(
        letters.as_str(),
        "mmhmm" | "mhm" | "mmhm" | "mhmm" | "uhhuh" | "hmm" | "hm" | "mm" | "mmm" | "uh" | "um" | "umm" | "ah" | "oh"
    )
}

/// Longest wait for the goodbye to be played (its marks echoed) before the call is closed anyway.
const GOODBYE_PLAYED_WITHIN: Duration = Duration::from_secs(10);

/// Waits until everything sent has played at the caller's end (its marks echoed), or [`GOODBYE_PLAYED_WITHIN`].
async fn played(playback: &Arc<Mutex<Playback>>) {
    let until = Instant::now() + GOODBYE_PLAYED_WITHIN;
    while Instant::now() < until && playback.lock().unwrap_or_else(|e| e.into_inner()).talking() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Closes the media stream with `reason` once what was sent has played.
async fn close_after_playing(playback: &Arc<Mutex<Playback>>, reason: &str) {
    played(playback).await;
    playback.lock().unwrap_or_else(|e| e.into_inner()).audio.hang_up(reason);
}

/// Ends the call once the goodbye has been heard: closing the media stream ends a `<Connect><Stream>` call, as
/// nothing follows it in the TwiML.
async fn hang_up(playback: &Arc<Mutex<Playback>>) {
    close_after_playing(playback, "call ended: goodbye").await;
}

/// Puts the caller through to the office: says so, waits until that has played, then has the carrier connect the
/// office (which ends this session). When transfers are not set up or the carrier fails, the caller is told, the
/// number given where there is one, and the call goes on. Whether the call was handed over.
async fn transfer(
    planner: &mut AgentPlanner,
    voice: &Voice,
    playback: &Arc<Mutex<Playback>>,
    control: &dyn CallControl,
    turn: usize,
) -> bool {
    let office = match control.office() {
        Ok(office) => office.to_string(),
        Err(why) => {
            warn!(reason = %why, "a caller pressed 0 but transfers are not set up");
            planner.record_event("transfer", None, json!({"ok": false, "error": why}));
            let sorry = "I'm sorry, I can't transfer calls from this line. I'm happy to keep helping you here.";
            speak(voice, playback, sorry, turn).await;
            return false;
        }
    };
    speak(voice, playback, "One moment, I'll put you through to the office.", turn).await;
    played(playback).await;
    match control.transfer().await {
        Ok(()) => {
            planner.record_event("transfer", None, json!({"ok": true, "to": office}));
            playback.lock().unwrap_or_else(|e| e.into_inner()).audio.hang_up("call transferred to the office");
            true
        }
        Err(e) => {
            warn!(error = %e, "the transfer to the office failed");
            planner.record_event("transfer", None, json!({"ok": false, "to": office, "error": e.to_string()}));
            let sorry = format!(
                "Sorry, I couldn't put you through just now. You can reach the office at {}, or I can keep helping \
                 you here.",
                spoken_number(&office)
            );
            speak(voice, playback, &sorry, turn).await;
            false
        }
    }
}

/// An E.164 number as it is read out: digit by digit, in groups (`+15551234567` → "5 5 5, 1 2 3, 4 5 6 7").
fn spoken_number(e164: &str) -> String {
    let digits: Vec<char> = e164.trim_start_matches("+1").trim_start_matches('+').chars().collect();
    let split = if digits.len() == 10 { vec![3, 6] } else { (4..digits.len()).step_by(4).collect() };
    let mut groups = Vec::new();
    let mut from = 0;
    for to in split.into_iter().chain([digits.len()]) {
        groups.push(digits[from..to].iter().map(char::to_string).collect::<Vec<_>>().join(" "));
        from = to;
    }
    groups.join(", ")
}

/// Whisper's output for breath, clicks and line noise.
fn is_noise(text: &str) -> bool {
    let words = text.trim_matches(|c: char| !c.is_alphanumeric());
    words.is_empty()
        || (text.starts_with('[') && text.ends_with(']'))
        || (text.starts_with('(') && text.ends_with(')'))
        || words.eq_ignore_ascii_case("you")
}

/// How a reply went out.
struct Spoken {
    first_audio: Option<Instant>,
    tts_ms: Option<f64>,
    sentences: usize,
    cut_off: bool,
}

/// Synthesizes `text` piece by piece ([`speech_pieces`]: its sentences, the first from its first clause) and sends each
/// as frames plus a mark, stopping at a barge-in.
async fn speak(voice: &Voice, playback: &Arc<Mutex<Playback>>, text: &str, turn: usize) -> Spoken {
    speak_sentences(voice, playback, speech_pieces(text), turn, &format!("turn{turn}")).await
}

/// Speaks `sentences` (the pieces of reply `turn`, see [`speech_pieces`]), each followed by a mark named
/// `{marks}-{i}`, stopping at a barge-in.
async fn speak_sentences(
    voice: &Voice,
    playback: &Arc<Mutex<Playback>>,
    sentences: Vec<String>,
    turn: usize,
    marks: &str,
) -> Spoken {
    let generation = playback.lock().unwrap_or_else(|e| e.into_inner()).generation;
    let mut spoken = Spoken { first_audio: None, tts_ms: None, sentences: 0, cut_off: false };
    for (i, sentence) in sentences.into_iter().enumerate() {
        let t = Instant::now();
        let frames = match speak_frames(voice.tts.as_ref(), &sentence).await {
            Ok(f) => f,
            Err(e) => {
                warn!(error = %e, "text-to-speech failed; sentence skipped");
                continue;
            }
        };
        spoken.tts_ms.get_or_insert(t.elapsed().as_secs_f64() * 1000.0);
        let mut p = playback.lock().unwrap_or_else(|e| e.into_inner());
        if p.generation != generation {
            spoken.cut_off = true;
            break;
        }
        let mark = format!("{marks}-{i}");
        p.audio.play(frames, &mark);
        // Replies heard in full are done with.
        p.sent.retain(|s| !s.played || s.turn == turn);
        p.sent.push(Sent { turn, mark, text: sentence, played: false });
        spoken.first_audio.get_or_insert_with(Instant::now);
        spoken.sentences += 1;
    }
    spoken
}

#[cfg(test)]
mod tests {
    use super::{is_backchannel, spoken_number};

    #[test]
    fn backchannels_are_told_from_requests() {
        for text in ["Mm-hmm.", "mhm", "Uh-huh.", "Hmm...", "Oh."] {
            assert!(is_backchannel(text), "{text}");
        }
        for text in ["Yes.", "No.", "Okay, what about parking?", "Um, how much is it?", ""] {
            assert!(!is_backchannel(text), "{text}");
        }
    }

    #[test]
    fn numbers_are_read_digit_by_digit_in_groups() {
        assert_eq!(spoken_number("+15551234567"), "5 5 5, 1 2 3, 4 5 6 7");
        assert_eq!(spoken_number("+442071234567"), "4 4 2 0, 7 1 2 3, 4 5 6 7");
    }
}
