//! `normalize_layer` on a blob whose header checksums are made valid; the first byte picks
//! the options (see `kiln_fuzz::normalize`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&mode, rest)) = data.split_first() {
        let mut rest = rest.to_vec();
        kiln_fuzz::fix_checksums(&mut rest);
        kiln_fuzz::normalize(mode, &rest);
    }
});
