//! The PyTorch loader. Inputs starting with `PK` go through the whole zip path; anything else is
//! a bare pickle stream, wrapped into a torch.save-shaped archive so the guard, candle's
//! interpreter and the state-dict walk all see it.
#![no_main]

use favicon_diffusor::convert::pth;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.starts_with(b"PK") {
        let _ = pth::read(data, "fuzz");
    } else {
        let _ = pth::read_pickle(data, "fuzz");
    }
});
