//! How a search ranks memories: vector similarity and keyword relevance (BM25) fused, the conversation around a
//! memory, who said it, and the period a query names, with each part kept for `explain`.
//!
//! Every weight here is a measured choice: `tourdesk bench recall --dataset ../shared/eval/locomo_dev.json`
//! (five LoCoMo conversations, every turn a memory) and a grid over them in a Python prototype. The optimum is a
//! plateau: each weight below can move one step (±0.1) and evidence recall@10 changes by at most 0.008.
//! Reciprocal-rank fusion instead of score fusion lost 0.03–0.04; a dense-only ranking scored 0.51, BM25 alone 0.62.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::time::{memory_time, TimeCue};
use super::types::MemoryItem;

/// Weight of vector similarity, min-max normalised over the candidates.
const VECTOR_WEIGHT: f32 = 0.6;
/// Weight of BM25, min-max normalised over the candidates (0.3–0.5 is flat; 0.6 and up loses multi-hop recall).
const KEYWORD_WEIGHT: f32 = 0.4;
/// Share of the better neighbour's fused score a memory gets: in a conversation the turn before or after the one
/// that matches is often the answer ("What did she adopt?" → "Guess what I adopted!" / "A puppy!"). +0.026 R@10.
const CONTEXT_WEIGHT: f32 = 0.4;
/// Bonus when the memory's speaker (`"Name: …"`) is named in the query. +0.02 R@10, +0.06 on multi-hop questions.
const SPEAKER_BONUS: f32 = 0.3;
/// Bonus at full time affinity (see [`TimeCue::affinity`]) when the query names a period. +0.02 R@10.
const TIME_WEIGHT: f32 = 0.5;
/// Penalty for a memory that is itself a question: it asks rather than tells. +0.005 R@10.
const QUESTION_PENALTY: f32 = 0.1;
/// Longest speaker prefix recognised, in characters.
const MAX_SPEAKER_CHARS: usize = 40;

/// Why a memory scored what it did (`explain`). `score` is the sum of every part but `similarity`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScoreDetails {
    /// Cosine similarity of the query and the memory (what `threshold` applies to).
    pub similarity: f32,
    /// Vector part: 0.6 × similarity, min-max normalised over the candidates.
    pub vector: f32,
    /// Keyword part: 0.4 × BM25 (over the memory and the one before it), min-max normalised.
    pub keyword: f32,
    /// Context part: 0.4 × the better fused score of the memories just before and after it in its conversation.
    pub context: f32,
    /// 0.3 when the memory's speaker is named in the query.
    pub speaker: f32,
    /// Up to 0.5 when the memory happened in the period the query names.
    pub time: f32,
    /// −0.1 when the memory is a question.
    pub question: f32,
    /// Cross-encoder relevance, when a reranker ran (none ships yet: no package on PyPI carries one's weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank: Option<f32>,
}

impl ScoreDetails {
    /// The fused score.
    pub fn total(&self) -> f32 {
        self.vector + self.keyword + self.context + self.speaker + self.time + self.question
    }
}

/// What a query says beyond its embedding and terms.
pub(crate) struct QueryCues {
    /// Its words, lower-cased (for speaker names).
    words: HashSet<String>,
    /// The period it names.
    time: Option<TimeCue>,
}

impl QueryCues {
    /// Reads `query`; `time` is the period it names, if any.
    pub fn new(query: &str, time: Option<TimeCue>) -> Self {
        Self { words: lower_words(query).collect(), time }
    }
}

fn lower_words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

/// A memory found by one or both retrievers, with its raw scores.
pub(crate) struct Candidate {
    pub item: MemoryItem,
    /// Cosine similarity to the query.
    pub similarity: f32,
    /// Raw BM25 (0 when the memory has no query term).
    pub bm25: f32,
}

/// Scores candidates and sorts them, best first. `neighbours[i]` are the candidates just before and after
/// candidate `i` in its conversation, when known.
pub(crate) fn rank(
    candidates: Vec<Candidate>,
    neighbours: Option<&[(Option<usize>, Option<usize>)]>,
    cues: &QueryCues,
) -> Vec<(MemoryItem, ScoreDetails)> {
    let vector = min_max(candidates.iter().map(|c| c.similarity));
    let keyword = min_max(candidates.iter().map(|c| c.bm25));
    let fused: Vec<f32> = vector.iter().zip(&keyword).map(|(v, k)| VECTOR_WEIGHT * v + KEYWORD_WEIGHT * k).collect();
    let mut ranked: Vec<(MemoryItem, ScoreDetails)> = candidates
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let context = neighbours.map_or(0.0, |n| {
                let (before, after) = n[i];
                CONTEXT_WEIGHT * before.map_or(0.0, |j| fused[j]).max(after.map_or(0.0, |j| fused[j]))
            });
            let (speaker, utterance) = split_speaker(&c.item.memory);
            let named = speaker.is_some_and(|s| {
                let mut names = lower_words(s).peekable();
                names.peek().is_some() && names.all(|w| cues.words.contains(&w))
            });
            let time = cues
                .time
                .map_or(0.0, |cue| TIME_WEIGHT * cue.affinity(memory_time(&c.item.metadata, c.item.created_at)));
            let details = ScoreDetails {
                similarity: c.similarity,
                vector: VECTOR_WEIGHT * vector[i],
                keyword: KEYWORD_WEIGHT * keyword[i],
                context,
                speaker: if named { SPEAKER_BONUS } else { 0.0 },
                time,
                question: if is_question(utterance) { -QUESTION_PENALTY } else { 0.0 },
                rerank: None,
            };
            (c.item, details)
        })
        .collect();
    // Stable: equal scores keep creation order.
    ranked.sort_by(|a, b| b.1.total().total_cmp(&a.1.total()));
    ranked
}

/// `(x − min) / (max − min)`; all zeros when every value is the same.
fn min_max(values: impl Iterator<Item = f32>) -> Vec<f32> {
    let values: Vec<f32> = values.collect();
    let (lo, hi) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    if hi > lo {
        values.iter().map(|v| (v - lo) / (hi - lo)).collect()
    } else {
        vec![0.0; values.len()]
    }
}

/// A transcript line's speaker and utterance: `"Caroline: I went…"` → (Some("Caroline"), "I went…"). A prefix
/// counts as a speaker when it is short and has no sentence punctuation.
fn split_speaker(text: &str) -> (Option<&str>, &str) {
    match text.split_once(':') {
        Some((name, rest))
            if !name.trim().is_empty()
                && name.len() <= MAX_SPEAKER_CHARS
                && !name.contains(['.', '?', '!', ',', '"', '\n']) =>
        {
            (Some(name.trim()), rest)
        }
        _ => (None, text),
    }
}

/// Whether an utterance asks (ignoring a trailing `[shares …]` image caption).
fn is_question(utterance: &str) -> bool {
    let said = match utterance.rfind(" [shares ") {
        Some(i) if utterance.trim_end().ends_with(']') => &utterance[..i],
        _ => utterance,
    };
    said.trim_end().ends_with('?')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speakers_and_questions_are_read_from_transcript_lines() {
        assert_eq!(split_speaker("Caroline: I went to a group."), (Some("Caroline"), " I went to a group."));
        assert_eq!(split_speaker("Note the time: 5 pm").0, Some("Note the time"));
        assert_eq!(split_speaker("Hello, world: nope").0, None);
        assert_eq!(split_speaker("No colon here").0, None);
        assert!(is_question(" How are you? [shares a photo of a dog]"));
        assert!(is_question(" Really?"));
        assert!(!is_question(" Sure. [shares what is this?]"));
    }

    #[test]
    fn min_max_spreads_scores_over_zero_to_one() {
        assert_eq!(min_max([2.0, 4.0, 3.0].into_iter()), [0.0, 1.0, 0.5]);
        assert_eq!(min_max([1.0, 1.0].into_iter()), [0.0, 0.0]);
    }
}
