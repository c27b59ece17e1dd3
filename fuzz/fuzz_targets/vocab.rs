//! The vocabulary file parser, then prompts encoded against what it accepted: the word split,
//! the lookup, and the spelling suggestions (whose cost -timeout bounds).
#![no_main]

use favicon_diffusor::vocab::Vocab;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is the prompt; the rest is the vocabulary file.
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (prompt, file) = data.split_at(split);
    let Ok(vocab) = Vocab::from_file_bytes(file, "fuzz") else { return };
    let prompt = String::from_utf8_lossy(prompt);
    if let Ok(rows) = vocab.encode(&prompt) {
        assert!(rows.iter().all(|&r| r >= 1 && r as usize <= vocab.len()));
    }
});
