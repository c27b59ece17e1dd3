//! Prompt words. A prompt is a bag of words; each known word is a row of `prompt_embed`.

use std::collections::HashMap;

use crate::config::MAX_VOCAB;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vocab {
    words: Vec<String>,
    index: HashMap<String, u32>,
}

/// Words longer than this get no spelling suggestions: the edit distance costs the product of
/// the two lengths, and no vocabulary word is within two edits of a long typo anyway.
const MAX_SUGGESTED_LEN: usize = 64;
/// How much of an unknown word an error message shows.
const SHOWN_CHARS: usize = 40;

impl Vocab {
    /// A vocabulary from its words, in `prompt_embed` row order. Errors name entries by
    /// position, never by content: the words may come from a file the user did not write.
    pub fn new(words: Vec<String>) -> Result<Self> {
        Self::build(words.into_iter().enumerate().map(|(i, w)| (format!("entry {i}"), w)), "vocabulary")
    }

    /// A vocabulary file's text: one word per line, blank lines skipped; `what` names the file.
    pub fn parse(text: &str, what: &str) -> Result<Self> {
        let lines = text.lines().enumerate().map(|(i, l)| (format!("line {}", i + 1), l.trim().to_string()));
        Self::build(lines.filter(|(_, w)| !w.is_empty()), what)
    }

    /// [`Vocab::parse`] of raw bytes, which must be UTF-8.
    pub fn from_file_bytes(bytes: &[u8], what: &str) -> Result<Self> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::checkpoint(what, format!("the vocabulary is not UTF-8 (byte {})", e.valid_up_to())))?;
        Self::parse(text, what)
    }

    fn build(entries: impl Iterator<Item = (String, String)>, what: &str) -> Result<Self> {
        let (mut words, mut index) = (Vec::new(), HashMap::new());
        let mut first_seen: HashMap<String, String> = HashMap::new();
        for (place, word) in entries {
            if words.len() == MAX_VOCAB {
                return Err(Error::checkpoint(what, format!("more than {MAX_VOCAB} words")));
            }
            if word.is_empty() || word.chars().any(|c| !c.is_alphanumeric()) {
                return Err(Error::checkpoint(
                    what,
                    format!("{place} is not a single word (letters and digits only, {} chars)", word.chars().count()),
                ));
            }
            let key = word.to_lowercase();
            if let Some(first) = first_seen.get(&key) {
                return Err(Error::checkpoint(what, format!("{place} repeats the word of {first}")));
            }
            first_seen.insert(key.clone(), place);
            index.insert(key, words.len() as u32 + 1);
            words.push(word);
        }
        Ok(Vocab { words, index })
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The words of a prompt, lower-cased, split on anything that is not a letter or digit.
    pub fn split(prompt: &str) -> Vec<String> {
        prompt.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
    }

    /// The words of a prompt; a prompt that is not blank but has no word (only emoji or
    /// punctuation, say) is an error rather than a silent unconditional sample.
    pub fn prompt_words(prompt: &str) -> Result<Vec<String>> {
        let words = Self::split(prompt);
        if words.is_empty() && !prompt.trim().is_empty() {
            return Err(Error::NoPromptWords { prompt: shown(prompt) });
        }
        Ok(words)
    }

    /// `prompt_embed` rows of a prompt's words (row 0, the empty prompt, is never returned).
    pub fn encode(&self, prompt: &str) -> Result<Vec<u32>> {
        Self::prompt_words(prompt)?
            .into_iter()
            .map(|word| match self.index.get(&word) {
                Some(&row) => Ok(row),
                None => Err(Error::UnknownWord { suggestions: self.closest(&word, 3), word: shown(&word) }),
            })
            .collect()
    }

    /// Up to `count` vocabulary words within edit distance 2 of `word`, nearest first.
    pub fn closest(&self, word: &str, count: usize) -> Vec<String> {
        let len = word.chars().count();
        if len > MAX_SUGGESTED_LEN {
            return Vec::new();
        }
        let mut scored: Vec<(usize, &String)> = self
            .words
            .iter()
            // The distance is at least the difference in length.
            .filter(|w| w.chars().count().abs_diff(len) <= 2)
            .map(|w| (edit_distance(word, w), w))
            .filter(|(d, w)| *d <= 2.min(w.len().max(1)))
            .collect();
        scored.sort();
        scored.into_iter().take(count).map(|(_, w)| w.clone()).collect()
    }
}

/// The start of a user's text, for an error message.
fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocab {
        Vocab::new(["hippo", "red", "heart", "cat", "hat"].map(String::from).to_vec()).unwrap()
    }

    #[test]
    fn prompt_words_map_to_rows_after_the_empty_row() {
        assert_eq!(vocab().encode("Red  HEART!").unwrap(), vec![2, 3]);
        assert_eq!(vocab().encode("  ").unwrap(), Vec::<u32>::new());
    }

    #[test]
    fn unknown_word_is_named_with_close_suggestions() {
        let err = vocab().encode("red hipo").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`hipo`") && msg.contains("`hippo`"), "{msg}");
        let Error::UnknownWord { suggestions, .. } = vocab().encode("cot").unwrap_err() else { panic!() };
        assert_eq!(suggestions, vec!["cat".to_string(), "hat".to_string()]);
    }

    #[test]
    fn edit_distance_matches_hand_counts() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("flaw", "lawn"), 2);
    }

    #[test]
    fn bad_vocabularies_are_refused() {
        assert!(Vocab::new(vec!["a b".into()]).is_err());
        assert!(Vocab::new(vec!["x".into(), "x".into()]).is_err());
        assert!(Vocab::new(vec![String::new()]).is_err());
    }

    #[test]
    fn vocabulary_file_errors_name_lines_but_never_echo_the_contents() {
        let secret = "hippo\n\nroot:$6$saltsalt$hashhash:19000:0:99999:7:::\n";
        let msg = Vocab::parse(secret, "vocab.txt").unwrap_err().to_string();
        assert!(msg.contains("vocab.txt") && msg.contains("line 3"), "{msg}");
        assert!(!msg.contains("root") && !msg.contains("salt"), "{msg}");
        let msg = Vocab::parse("Secret\nother\nsecret\n", "v.txt").unwrap_err().to_string();
        assert!(msg.contains("line 3 repeats the word of line 1") && !msg.to_lowercase().contains("secret"), "{msg}");
        let msg = Vocab::from_file_bytes(b"ok\n\xff\xfe", "v.txt").unwrap_err().to_string();
        assert!(msg.contains("not UTF-8 (byte 3)"), "{msg}");
        assert_eq!(Vocab::parse(" a \n\n b\n", "v").unwrap().words(), ["a", "b"]);
    }

    #[test]
    fn prompt_of_only_emoji_or_punctuation_is_an_error_but_blank_is_unconditional() {
        for bad in ["🦛", "🦛 ❤️", "!!!", "  -- "] {
            let err = vocab().encode(bad).unwrap_err();
            assert!(matches!(err, Error::NoPromptWords { .. }), "{bad}: {err}");
        }
        assert_eq!(vocab().encode("").unwrap(), Vec::<u32>::new());
        assert_eq!(vocab().encode(" \t ").unwrap(), Vec::<u32>::new());
        assert_eq!(vocab().encode("🦛 hippo").unwrap(), vec![1]);
    }

    #[test]
    fn suggestions_for_a_huge_word_return_at_once() {
        let words: Vec<String> = (0..5000).map(|i| format!("word{i}")).collect();
        let big = Vocab::new(words).unwrap();
        let huge = "a".repeat(130_000);
        let start = std::time::Instant::now();
        let err = big.encode(&huge).unwrap_err();
        // The quadratic distance over 5,000 words would take minutes; the length filter makes it
        // a scan. 1 s leaves room for a loaded machine.
        assert!(start.elapsed() < std::time::Duration::from_secs(1), "{:?}", start.elapsed());
        let Error::UnknownWord { word, suggestions } = err else { panic!("{err}") };
        assert!(suggestions.is_empty() && word.chars().count() == SHOWN_CHARS + 1, "{word}");
        // Near-length words are still suggested.
        assert_eq!(big.closest("wrd12", 1), vec!["word12".to_string()]);
    }
}
