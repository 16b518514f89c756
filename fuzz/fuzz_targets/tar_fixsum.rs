//! The tar reader, and BuildKit's rewrite-timestamp conversion (read, clamp, write again),
//! on input whose header checksums are made valid (see `kiln_fuzz::fix_checksums`).
#![no_main]

use kiln_layer::rewrite::rewrite_tar;
use kiln_layer::tar::{TarWriter, Timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    kiln_fuzz::fix_checksums(&mut data);
    let mut w = TarWriter::new(Vec::new());
    if let Err(e) = rewrite_tar(&data[..], Some(Timestamp::from_secs(1_700_000_000)), &mut w) {
        assert!(!e.to_string().is_empty());
    }
    kiln_fuzz::drain_tar(&data);
});
