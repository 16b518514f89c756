//! Every header of an arbitrary byte stream, and every entry's data to its end.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kiln_fuzz::drain_tar(data));
