//! `normalize_layer` on an arbitrary blob; the first byte picks the options (see
//! `kiln_fuzz::normalize`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&mode, rest)) = data.split_first() {
        kiln_fuzz::normalize(mode, rest);
    }
});
