//! Every header of an arbitrary byte stream, and every entry's data to its end.
#![no_main]

use std::io::Read;

use kiln_layer::tar::TarReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = TarReader::new(data);
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
