//! Any bytes as a Dockerfile: parsed (with and without the labs syntax), its stage graph
//! built and every target resolved, and linted, which expands every instruction.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kiln_fuzz::dockerfile(data));
