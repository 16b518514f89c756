//! The tar reader, and BuildKit's rewrite-timestamp conversion (read, clamp, write again),
//! on input whose header checksums are made valid (see fixsum.rs).
#![no_main]

use std::io::Read;

use kiln_layer::rewrite::rewrite_tar;
use kiln_layer::tar::{TarReader, TarWriter, Timestamp};
use libfuzzer_sys::fuzz_target;

mod fixsum;

fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    fixsum::fix_checksums(&mut data);
    let mut w = TarWriter::new(Vec::new());
    if let Err(e) = rewrite_tar(&data[..], Some(Timestamp::from_secs(1_700_000_000)), &mut w) {
        assert!(!e.to_string().is_empty());
    }
    let mut r = TarReader::new(&data[..]);
    let mut buf = [0u8; 4096];
    loop {
        match r.next_header() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                break;
            }
        }
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    return;
                }
            }
        }
    }
});
