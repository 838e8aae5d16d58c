//! The agent's phrases, kept once spoken. A leasing agent asks the same questions on every call ("When are you
//! hoping to move in?"); a sentence synthesized once is played again without waiting on the synthesizer, which is
//! most of what a caller waits for after they stop talking.

use std::sync::Arc;

use async_trait::async_trait;

use super::audio::Pcm;
use super::tts::TextToSpeech;
use crate::inference::InferenceError;

/// Audio kept by default, bytes: about 100 seconds of a 22 kHz voice, a few hundred short sentences.
pub const DEFAULT_PHRASE_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// A voice that remembers what it has said: the same text gives the same audio, synthesized once. Which phrases are
/// kept within the byte budget is moka's call (recently and frequently used ones), so one-off sentences with a
/// caller's name or a date do not push out the questions every call asks.
pub struct PhraseCache {
    voice: Arc<dyn TextToSpeech>,
    spoken: moka::sync::Cache<String, Arc<Pcm>>,
}

impl PhraseCache {
    /// `voice`, keeping at most `max_bytes` of its audio.
    pub fn new(voice: Arc<dyn TextToSpeech>, max_bytes: u64) -> Self {
        let spoken = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|text: &String, pcm: &Arc<Pcm>| {
                u32::try_from(text.len() + pcm.samples.len() * size_of::<f32>()).unwrap_or(u32::MAX)
            })
            .build();
        Self { voice, spoken }
    }
}

#[async_trait]
impl TextToSpeech for PhraseCache {
    async fn synthesize(&self, text: &str) -> Result<Pcm, InferenceError> {
        if let Some(pcm) = self.spoken.get(text) {
            tracing::debug!(chars = text.len(), "tts phrase from the cache");
            return Ok(Pcm::clone(&pcm));
        }
        let pcm = self.voice.synthesize(text).await?;
        self.spoken.insert(text.to_string(), Arc::new(pcm.clone()));
        Ok(pcm)
    }
}
