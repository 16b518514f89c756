//! `normalize_layer` on an arbitrary blob. The first byte picks the options: devices kept or
//! refused, scrub rules, gzip output, and whether the rest is gzipped first (read_layer
//! sniffs compression, so the decompressing path is covered with valid streams too).
#![no_main]

use std::io::Write;

use kiln_layer::Compression;
use kiln_normalize::{normalize_layer, Devices, Expected, LayerOptions, Scrubber};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let scrub = if mode & 2 != 0 {
        Scrubber::parse("all").unwrap()
    } else {
        Scrubber::none()
    };
    let opts = LayerOptions {
        epoch: 1_700_000_000,
        scrub: &scrub,
        devices: if mode & 1 != 0 {
            Devices::Keep
        } else {
            Devices::Refuse
        },
        compression: if mode & 4 != 0 {
            Compression::Gzip
        } else {
            Compression::Uncompressed
        },
    };
    let input: Vec<u8> = if mode & 8 != 0 {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(rest).unwrap();
        e.finish().unwrap()
    } else {
        rest.to_vec()
    };
    let spill = tempfile::tempfile().unwrap();
    if let Err(e) = normalize_layer(&input[..], &Expected::default(), spill, &opts, Vec::new()) {
        assert!(!e.message().is_empty());
    }
});
