//! The WTS1 reader, then config inference and checkpoint validation of whatever it returns.
#![no_main]

use favicon_diffusor::convert::{self, Hints};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if convert::wts1::read(data, "fuzz").is_ok() {
        let _ = convert::import_bytes(data, "fuzz", &Hints::default(), None);
    }
});
