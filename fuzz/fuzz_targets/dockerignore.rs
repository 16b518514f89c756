//! Any text as a .dockerignore, matched against names taken from the same input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kiln_fuzz::dockerignore(data));
