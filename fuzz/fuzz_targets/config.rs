//! The config parser and validator, then everything sized by a config that passed: the tensor
//! list, its byte count, the position embedding and the inline vocabulary. With the 512 MiB
//! malloc limit, a config that validates yet asks for more is a crash.
#![no_main]

use favicon_diffusor::limits::f32_bytes;
use favicon_diffusor::model::position_embedding;
use favicon_diffusor::vocab::Vocab;
use favicon_diffusor::weights::expected_tensors;
use favicon_diffusor::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::from_json(text, "fuzz") else { return };
    let rows = config.vocab.as_ref().map(|v| v.len() + 1);
    let tensors = expected_tensors(&config, rows);
    let _ = tensors.iter().try_fold(0u64, |sum, (_, shape)| f32_bytes(shape)?.checked_add(sum));
    assert_eq!(position_embedding(&config).len(), config.tokens() * config.dim);
    if let Some(words) = config.vocab.clone() {
        let _ = Vocab::new(words);
    }
});
