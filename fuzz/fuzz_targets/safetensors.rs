//! The safetensors loader: the checkpoint validator against a fixed tiny config, and the
//! porting path that infers a config from whatever shapes the file claims.
#![no_main]

use favicon_diffusor::convert::{self, Format, Hints};
use favicon_diffusor::{Checkpoint, Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = Config {
        image_size: 8,
        patch_size: 4,
        dim: 8,
        depth: 1,
        heads: 2,
        head_dim: 4,
        mlp_mult: 2,
        time_dim: 4,
        ..Config::default()
    };
    let _ = Checkpoint::from_safetensors_bytes(config, None, data, "fuzz");
    if let Ok(tensors) = convert::read_tensors(data, Format::Safetensors, "fuzz") {
        let _ = convert::infer_config(&tensors, &Hints::default());
    }
});
