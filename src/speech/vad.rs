//! Voice-activity detection on 20 ms telephone frames: an utterance starts when a few frames in a row are speech
//! and ends after a stretch of silence. Whether a frame is speech is Silero VAD's call when the model is loaded
//! (a neural detector: line noise, breathing and music are not speech), else the frame energy's against a noise
//! floor that follows the line.

use super::silero::SileroStream;
use super::smart_turn::SmartTurn;

/// Tuning; the defaults suit 8 kHz phone audio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// Silence that ends an utterance, milliseconds. Shorter answers sooner but may cut a pause mid-sentence.
    pub silence_ms: u32,
    /// Voiced frames in a row that start an utterance, and so a barge-in: a cough, a click or an "mm" shorter than
    /// this never interrupts the agent.
    pub start_frames: u32,
    /// Speech shorter than this is a click or a cough, not an utterance, milliseconds.
    pub min_speech_ms: u32,
    /// Longest utterance; longer speech is cut here and transcribed, milliseconds.
    pub max_utterance_ms: u32,
    /// Frame energy (dBFS) that is always speech-quiet, whatever the noise floor.
    pub floor_dbfs: f32,
    /// How far above the noise floor a frame must be to count as voiced, dB.
    pub margin_db: f32,
    /// Silero's speech probability that starts speech; it stops below this less 0.15 (Silero's own defaults).
    pub threshold: f32,
    /// With Smart Turn: the silence after which it is asked whether the caller has finished, milliseconds. A
    /// finished turn ends there; an unfinished one waits up to `turn_max_silence_ms`.
    pub turn_check_ms: u32,
    /// The longest silence an unfinished turn waits for the caller to go on, milliseconds: one Smart Turn judges
    /// unfinished, or one whose words stop mid-phrase (the voice session's call).
    pub turn_max_silence_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            silence_ms: 400,
            // 200 ms of 20 ms frames.
            start_frames: 10,
            min_speech_ms: 200,
            max_utterance_ms: 15_000,
            floor_dbfs: -45.0,
            margin_db: 12.0,
            threshold: 0.5,
            turn_check_ms: 200,
            turn_max_silence_ms: 1_200,
        }
    }
}

/// What a frame changed.
#[derive(Debug, Clone, PartialEq)]
pub enum VadEvent {
    /// The caller started speaking (barge-in when the agent is talking).
    SpeechStarted,
    /// The utterance ended: its samples (with the frames before the start that were kept as lead-in), and how
    /// much silence after the last voiced frame it took to decide, in milliseconds.
    SpeechEnded { samples: Vec<f32>, trailing_silence_ms: u32 },
    /// The caller has paused for [`PAUSE_MS`] in an utterance long enough to keep: the utterance so far. Should this
    /// pause end the turn, `SpeechEnded` carries the same samples and more silence, so its transcript can be started
    /// now.
    Paused { samples: Vec<f32> },
    /// The caller went on after a reported pause: it did not end the utterance.
    Resumed,
}

/// Silence after which a pause is reported ([`VadEvent::Paused`]).
pub const PAUSE_MS: u32 = 120;

/// How far below the loudest frame of an utterance a frame is silence, dB.
pub const QUIET_BELOW_VOICE_DB: f32 = 30.0;

/// Frames kept from before the start, so the first syllable is not clipped.
const LEAD_IN_FRAMES: usize = 20;

/// The detector for one call.
pub struct Vad {
    config: VadConfig,
    rate: u32,
    /// Slowly rising minimum of frame energy, dBFS.
    noise_db: f32,
    /// The loudest frame of the current utterance, dBFS: how loud this caller's voice is.
    voice_db: f32,
    voiced_run: u32,
    silent_run: u32,
    speaking: bool,
    voiced_ms: u32,
    lead_in: std::collections::VecDeque<Vec<f32>>,
    utterance: Vec<f32>,
    /// Silero for this call, when loaded.
    silero: Option<SileroStream>,
    /// Whether Silero's last window was speech (with hysteresis).
    silero_speech: bool,
    /// Smart Turn, when end of turn is its call.
    turn: Option<SmartTurn>,
    /// The silence (ms) at which Smart Turn was last asked about the current pause.
    asked_at: Option<u32>,
    /// Whether the current pause was reported ([`VadEvent::Paused`]).
    pause_reported: bool,
}

impl Vad {
    /// A detector for frames at `rate` Hz; with `silero`, Silero decides which frames are speech.
    pub fn new(config: VadConfig, rate: u32, silero: Option<SileroStream>) -> Self {
        Self {
            config,
            rate,
            noise_db: config.floor_dbfs,
            voice_db: f32::NEG_INFINITY,
            voiced_run: 0,
            silent_run: 0,
            speaking: false,
            voiced_ms: 0,
            lead_in: Default::default(),
            utterance: Vec::new(),
            silero,
            silero_speech: false,
            turn: None,
            asked_at: None,
            pause_reported: false,
        }
    }

    /// Lets Smart Turn decide when a pause ends the caller's turn (see [`VadConfig::turn_check_ms`]).
    pub fn with_turn(mut self, turn: SmartTurn) -> Self {
        self.turn = Some(turn);
        self
    }

    /// Whether the silence so far ends the turn: the fixed silence, or with Smart Turn, its answer each time the
    /// pause has grown by `turn_check_ms` (it hears a finished sentence better after a longer pause), and the cap.
    async fn turn_over(&mut self) -> bool {
        let Some(turn) = self.turn.clone() else { return self.silent_run >= self.config.silence_ms };
        if self.silent_run >= self.config.turn_max_silence_ms {
            return true;
        }
        let due = self.asked_at.unwrap_or(0) + self.config.turn_check_ms;
        if self.silent_run < due {
            return false;
        }
        self.asked_at = Some(self.silent_run);
        match turn.complete_at(&self.utterance, self.rate).await {
            Ok(p) => p > 0.5,
            Err(e) => {
                tracing::warn!(error = %e, "Smart Turn failed; this call's pauses are timed by silence alone");
                self.turn = None;
                self.silent_run >= self.config.silence_ms
            }
        }
    }

    /// Whether `frame` is speech: Silero's latest window, else the energy rule. Within an utterance a frame far
    /// quieter than the caller's voice ([`QUIET_BELOW_VOICE_DB`]) is not speech whatever Silero says: its
    /// probability falls slowly after the last word (20–180 ms above its stop threshold on the bench's caller), so
    /// the silence that ends a turn would start late. Pipecat gates Silero by volume the same way. On a line whose
    /// noise is within that margin of the voice no frame is that quiet, and Silero alone decides.
    async fn voiced(&mut self, frame: &[f32]) -> bool {
        let energy = frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32;
        let db = 10.0 * energy.max(1e-12).log10();
        let loud = db > self.config.floor_dbfs.max(self.noise_db + self.config.margin_db);
        let quiet_for_this_voice = db < self.voice_db - QUIET_BELOW_VOICE_DB;
        if !loud {
            // The floor follows quiet frames down at once and up slowly (0.5 dB per frame).
            self.noise_db =
                if db < self.noise_db { db.max(-90.0) } else { self.noise_db + 0.5f32.min(db - self.noise_db) };
        }
        let Some(silero) = self.silero.as_mut() else { return loud };
        match silero.push(frame).await {
            Ok(probabilities) => {
                for p in probabilities {
                    let threshold =
                        if self.silero_speech { self.config.threshold - 0.15 } else { self.config.threshold };
                    self.silero_speech = p >= threshold;
                }
                if self.silero_speech {
                    self.voice_db = self.voice_db.max(db);
                }
                self.silero_speech && !(self.speaking && quiet_for_this_voice)
            }
            Err(e) => {
                tracing::warn!(error = %e, "Silero VAD failed; this call goes on with the energy detector");
                self.silero = None;
                loud
            }
        }
    }

    /// Whether an utterance is in progress.
    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// Feeds one frame (any length; Twilio sends 20 ms) and returns what it changed.
    pub async fn push(&mut self, frame: &[f32]) -> Option<VadEvent> {
        if frame.is_empty() {
            return None;
        }
        let frame_ms = (frame.len() as u64 * 1000 / self.rate as u64) as u32;
        let voiced = self.voiced(frame).await;
        if !self.speaking {
            self.lead_in.push_back(frame.to_vec());
            if self.lead_in.len() > LEAD_IN_FRAMES {
                self.lead_in.pop_front();
            }
            self.voiced_run = if voiced { self.voiced_run + 1 } else { 0 };
            if self.voiced_run == 0 {
                // Whatever was heard before was no utterance: its loudness is not this caller's voice.
                self.voice_db = f32::NEG_INFINITY;
            }
            if self.voiced_run >= self.config.start_frames {
                self.speaking = true;
                self.silent_run = 0;
                self.voiced_ms = self.voiced_run * frame_ms;
                self.utterance = self.lead_in.drain(..).flatten().collect();
                return Some(VadEvent::SpeechStarted);
            }
            return None;
        }
        self.utterance.extend_from_slice(frame);
        let resumed = voiced && std::mem::take(&mut self.pause_reported);
        if voiced {
            self.silent_run = 0;
            self.asked_at = None;
            self.voiced_ms += frame_ms;
        } else {
            self.silent_run += frame_ms;
        }
        let too_long = self.utterance.len() as u64 * 1000 / self.rate as u64 >= self.config.max_utterance_ms as u64;
        if too_long || (self.silent_run > 0 && self.turn_over().await) {
            self.speaking = false;
            self.voiced_run = 0;
            self.asked_at = None;
            self.pause_reported = false;
            let trailing_silence_ms = self.silent_run;
            let samples = std::mem::take(&mut self.utterance);
            if self.voiced_ms < self.config.min_speech_ms {
                return None;
            }
            return Some(VadEvent::SpeechEnded { samples, trailing_silence_ms });
        }
        if resumed {
            return Some(VadEvent::Resumed);
        }
        let pause_began = !voiced && self.silent_run >= PAUSE_MS && self.silent_run < PAUSE_MS + frame_ms;
        if pause_began && self.voiced_ms >= self.config.min_speech_ms {
            self.pause_reported = true;
            return Some(VadEvent::Paused { samples: self.utterance.clone() });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: u32, amp: f32) -> Vec<f32> {
        (0..ms * 8).map(|i| amp * (i as f32 * 2.0 * std::f32::consts::PI * 300.0 / 8000.0).sin()).collect()
    }

    async fn feed(vad: &mut Vad, audio: &[f32]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        for frame in audio.chunks(160) {
            events.extend(vad.push(frame).await);
        }
        events
    }

    #[tokio::test]
    async fn an_utterance_starts_on_speech_and_ends_after_the_silence() {
        let mut vad = Vad::new(VadConfig::default(), 8000, None);
        assert!(feed(&mut vad, &vec![0.0; 8000]).await.is_empty());
        let events = feed(&mut vad, &tone(1000, 0.3)).await;
        assert_eq!(events, vec![VadEvent::SpeechStarted]);
        assert!(vad.speaking());
        // A pause shorter than the silence setting does not end it: it is reported once, with the utterance so far,
        // and so is the caller going on.
        match feed(&mut vad, &vec![0.0; 8 * 200]).await.as_slice() {
            [VadEvent::Paused { samples }] => {
                let secs = samples.len() as f32 / 8000.0;
                assert!((1.1..1.5).contains(&secs), "1 s of speech, the lead-in and {PAUSE_MS} ms of pause: {secs}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(feed(&mut vad, &tone(500, 0.3)).await, vec![VadEvent::Resumed]);
        let events = feed(&mut vad, &vec![0.0; 8 * 600]).await;
        match events.as_slice() {
            [VadEvent::Paused { samples: so_far }, VadEvent::SpeechEnded { samples, trailing_silence_ms }] => {
                assert_eq!(*trailing_silence_ms, 400);
                // 1.7 s of speech and pause, the lead-in, and the trailing silence.
                let secs = samples.len() as f32 / 8000.0;
                assert!((1.9..2.4).contains(&secs), "{secs}");
                // The pause that ended it was reported with the same samples, less the silence after the report.
                assert_eq!(so_far[..], samples[..so_far.len()]);
                assert_eq!(samples.len() - so_far.len(), (400 - PAUSE_MS as usize) * 8);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn clicks_are_not_utterances_and_steady_noise_raises_the_floor() {
        let mut vad = Vad::new(VadConfig::default(), 8000, None);
        let mut click = tone(80, 0.5);
        click.extend(vec![0.0; 8 * 600]);
        let events = feed(&mut vad, &click).await;
        assert!(events.is_empty(), "a click is not an utterance, and does not interrupt the agent: {events:?}");
        // A cough-length burst (150 ms) neither.
        let mut cough = tone(150, 0.5);
        cough.extend(vec![0.0; 8 * 600]);
        assert!(feed(&mut vad, &cough).await.is_empty());
        // Quiet hum (-50 dBFS) is below the absolute floor: never speech.
        let mut vad = Vad::new(VadConfig::default(), 8000, None);
        assert!(feed(&mut vad, &tone(3000, 0.0045)).await.is_empty());
    }

    #[tokio::test]
    async fn speech_past_the_longest_utterance_is_cut_there() {
        let config = VadConfig { max_utterance_ms: 2000, ..VadConfig::default() };
        let mut vad = Vad::new(config, 8000, None);
        let events = feed(&mut vad, &tone(3000, 0.3)).await;
        assert!(matches!(&events[1], VadEvent::SpeechEnded { samples, .. } if samples.len() == 16_000), "{events:?}");
        // The speech goes on, so a new utterance starts right after the cut.
        assert_eq!(events[2..], [VadEvent::SpeechStarted]);
    }
}
