//! Keyword relevance: Okapi BM25 over a scope's memories, with exactly the analyzer of LanceDB's full-text index
//! (split on non-alphanumerics, lower-case, English Snowball stemming, English stop words removed, ASCII folding), so
//! the exact path (scopes scored in Rust) and the index path (LanceDB's FTS) agree on what a term is.
//!
//! Small scopes are scored here rather than through the index because the index's statistics are global: a term
//! that is rare in one caller's memories but common across all callers (their own name, a building they asked about)
//! would be weighted by everyone's memories instead of the caller's.

use std::sync::OnceLock;

use lancedb::index::scalar::FtsIndexBuilder;

/// BM25 term-frequency saturation (Lucene's default; the dev set's optimum is flat between 0.9 and 1.5).
const K1: f32 = 1.2;
/// BM25 length normalisation (Lucene's default; flat between 0.5 and 0.8 on the dev set).
const B: f32 = 0.75;

/// The analyzer settings of the full-text index, shared by the index and by [`terms`]: LanceDB's defaults, with
/// NLTK's English stop words (from the `stop-words` crate) and their stems as the stop list. LanceDB stems before
/// it drops stop words, so its own list misses stemmed forms ("was" → "wa", "this" → "thi") and those flood every
/// document; +0.005 evidence recall@10 on the LoCoMo dev set.
pub(crate) fn fts_params() -> FtsIndexBuilder {
    static STOP: OnceLock<Vec<String>> = OnceLock::new();
    let stop = STOP.get_or_init(|| {
        let words = stop_words::get("en");
        let mut stemmer = FtsIndexBuilder::default()
            .remove_stop_words(false)
            .build()
            .expect("the default full-text analyzer is valid");
        let mut all: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        for word in words {
            let mut stream = stemmer.token_stream_for_doc(word);
            while let Ok(Some(token)) = stream.try_next() {
                all.push(token.text.clone());
            }
        }
        all.sort();
        all.dedup();
        all
    });
    FtsIndexBuilder::default().custom_stop_words(Some(stop.clone()))
}

/// The index's analyzer, built once.
fn analyzer() -> &'static dyn Fn(&str) -> Vec<String> {
    static ANALYZER: OnceLock<Box<dyn Fn(&str) -> Vec<String> + Send + Sync>> = OnceLock::new();
    ANALYZER.get_or_init(|| {
        let prototype = fts_params().build().expect("the default full-text analyzer is valid");
        Box::new(move |text: &str| {
            let mut tokenizer = prototype.clone();
            let mut stream = tokenizer.token_stream_for_doc(text);
            let mut out = Vec::new();
            while let Ok(Some(token)) = stream.try_next() {
                out.push(token.text.clone());
            }
            out
        })
    })
}

/// The index terms of `text`, in order.
pub(crate) fn terms(text: &str) -> Vec<String> {
    analyzer()(text)
}

/// Most memories whose terms [`TermCache`] keeps (about 1 KiB each); when full it starts over.
const TERM_CACHE_ENTRIES: usize = 50_000;

/// The terms of stored memories by text hash, so a search does not re-analyze a scope's every memory each time
/// (680 memories cost ~6 ms of analysis per search).
#[derive(Default)]
pub(crate) struct TermCache {
    terms: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Vec<String>>>>,
}

impl TermCache {
    /// The terms of `text`, whose sha256 is `hash`.
    pub fn get(&self, hash: &str, text: &str) -> std::sync::Arc<Vec<String>> {
        let mut terms = self.terms.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = terms.get(hash) {
            return found.clone();
        }
        if terms.len() >= TERM_CACHE_ENTRIES {
            terms.clear();
        }
        let analyzed = std::sync::Arc::new(self::terms(text));
        terms.insert(hash.to_string(), analyzed.clone());
        analyzed
    }
}

/// BM25 scores of `docs` (each a list of terms) for the query terms, with document frequencies and lengths taken
/// from `docs` themselves. Repeated query terms count once.
pub(crate) fn bm25<S: AsRef<str>>(query: &[String], docs: &[Vec<S>]) -> Vec<f32> {
    let mut unique: Vec<&str> = query.iter().map(String::as_str).collect();
    unique.sort_unstable();
    unique.dedup();
    if unique.is_empty() || docs.is_empty() {
        return vec![0.0; docs.len()];
    }
    let n = docs.len() as f32;
    let avg_len = docs.iter().map(Vec::len).sum::<usize>() as f32 / n;
    // Term frequencies of the query terms only: nothing else matters for the score.
    let tf: Vec<Vec<u16>> = docs
        .iter()
        .map(|d| {
            unique.iter().map(|q| d.iter().filter(|t| t.as_ref() == *q).count().min(u16::MAX as usize) as u16).collect()
        })
        .collect();
    let idf: Vec<f32> = (0..unique.len())
        .map(|j| {
            let df = tf.iter().filter(|row| row[j] > 0).count() as f32;
            (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
        })
        .collect();
    docs.iter()
        .zip(&tf)
        .map(|(d, row)| {
            let norm = K1 * (1.0 - B + B * d.len() as f32 / avg_len.max(1e-6));
            row.iter()
                .zip(&idf)
                .filter(|(f, _)| **f > 0)
                .map(|(f, idf)| {
                    let f = *f as f32;
                    idf * f * (K1 + 1.0) / (f + norm)
                })
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_stemmed_lower_case_without_stop_words() {
        assert_eq!(terms("Caroline: The Dogs were RUNNING to the park!"), ["carolin", "dog", "run", "park"]);
        // Stop words are dropped in their stemmed forms too.
        assert_eq!(terms("This was his idea; does she?"), ["idea"]);
    }

    #[test]
    fn rarer_terms_weigh_more_and_absent_terms_nothing() {
        let docs: Vec<Vec<String>> =
            ["the cat sat", "a dog barked", "the cat and the dog", "nothing here"].iter().map(|t| terms(t)).collect();
        let s = bm25(&terms("cat"), &docs);
        assert!(s[0] > 0.0 && s[2] > 0.0);
        assert_eq!((s[1], s[3]), (0.0, 0.0));
        let both = bm25(&terms("cat barked"), &docs);
        assert!(both[1] > both[2], "barked is rarer than cat: {both:?}");
    }
}
