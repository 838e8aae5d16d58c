//! Word error rate: how far a transcript is from what was said, word by word, as speech benchmarks and tests
//! score it. Hand-written (a dozen lines of dynamic programming) rather than a crate: the scoring owns its own
//! normalisation of case, punctuation and spoken numbers.

/// The words of `text` as word error rate compares them: lower case, no punctuation, number words as digits
/// ("fifteenth" and "15th" are one word, "four thousand" and "4,000" too).
pub fn words(text: &str) -> Vec<String> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const ORDINALS: [(&str, &str); 6] = [
        ("first", "1st"),
        ("second", "2nd"),
        ("third", "3rd"),
        ("fifth", "5th"),
        ("eighth", "8th"),
        ("twelfth", "12th"),
    ];
    let mut out: Vec<String> = Vec::new();
    let cleaned: String = text
        .to_lowercase()
        .chars()
        .filter(|c| *c != ',' && *c != '$')
        .map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' })
        .collect();
    for word in cleaned.split_whitespace() {
        let word = word.trim_matches('\'');
        let number = UNITS.iter().position(|u| *u == word).map(|n| n.to_string()).or_else(|| {
            ORDINALS.iter().find(|(w, _)| *w == word).map(|(_, d)| d.to_string()).or_else(|| {
                let stem = word.strip_suffix("th")?;
                UNITS.iter().position(|u| *u == stem).map(|n| format!("{n}th"))
            })
        });
        match (word, out.last()) {
            ("thousand", Some(n)) if n.parse::<u32>().is_ok() => {
                let n = out.pop().unwrap_or_default();
                out.push(format!("{n}000"));
            }
            _ => out.push(number.unwrap_or_else(|| word.to_string())),
        }
    }
    out
}

/// Word-level edit distance (substitutions, insertions, deletions).
pub fn edit_distance(said: &[String], heard: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=heard.len()).collect();
    for (i, s) in said.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, h) in heard.iter().enumerate() {
            let substitution = diagonal + usize::from(s != h);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[heard.len()]
}

/// Word errors of `heard` against `said`, over the words `said` has (0 when both are empty).
pub fn word_error_rate(said: &str, heard: &str) -> f64 {
    let said = words(said);
    edit_distance(&said, &words(heard)) as f64 / said.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_compared_without_case_punctuation_or_spelled_numbers() {
        assert_eq!(
            words("On January fifteenth, about four thousand a month."),
            words("on january 15th about 4,000 a month")
        );
        assert_eq!(words("I'd like a two-bedroom!"), ["i'd", "like", "a", "2", "bedroom"]);
        let said = words("what is the pet policy");
        assert_eq!(edit_distance(&said, &words("what is the best policy")), 1);
        assert_eq!(edit_distance(&said, &words("what is the pet policy please")), 1);
        assert_eq!(edit_distance(&said, &words("the pet policy")), 2);
        assert_eq!(edit_distance(&said, &[]), 5);
        assert!((word_error_rate("The pet policy, please.", "the best policy please") - 0.25).abs() < 1e-9);
    }
}
