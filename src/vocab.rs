//! Prompt words. A prompt is a bag of words; each known word is a row of `prompt_embed`.

use std::collections::HashMap;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vocab {
    words: Vec<String>,
    index: HashMap<String, u32>,
}

impl Vocab {
    pub fn new(words: Vec<String>) -> Result<Self> {
        let mut index = HashMap::with_capacity(words.len());
        for (i, word) in words.iter().enumerate() {
            if word.is_empty() || word.chars().any(|c| !c.is_alphanumeric()) {
                return Err(Error::checkpoint(
                    "vocabulary",
                    format!("entry {i} `{word}` is not a single lower-case word"),
                ));
            }
            if index.insert(word.to_lowercase(), i as u32 + 1).is_some() {
                return Err(Error::checkpoint("vocabulary", format!("word `{word}` appears twice")));
            }
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

    /// `prompt_embed` rows of a prompt's words (row 0, the empty prompt, is never returned).
    pub fn encode(&self, prompt: &str) -> Result<Vec<u32>> {
        Self::split(prompt)
            .into_iter()
            .map(|word| match self.index.get(&word) {
                Some(&row) => Ok(row),
                None => Err(Error::UnknownWord { suggestions: self.closest(&word, 3), word }),
            })
            .collect()
    }

    /// Up to `count` vocabulary words within edit distance 2 of `word`, nearest first.
    pub fn closest(&self, word: &str, count: usize) -> Vec<String> {
        let mut scored: Vec<(usize, &String)> = self
            .words
            .iter()
            .map(|w| (edit_distance(word, w), w))
            .filter(|(d, w)| *d <= 2.min(w.len().max(1)))
            .collect();
        scored.sort();
        scored.into_iter().take(count).map(|(_, w)| w.clone()).collect()
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
}
