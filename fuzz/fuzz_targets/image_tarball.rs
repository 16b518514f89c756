//! An arbitrary file opened as an image tarball: indexing, loading the image (index.json,
//! manifest.json, configs) and reading its layer blobs back.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(data).unwrap();
    f.flush().unwrap();
    kiln_fuzz::load_image(f.path().to_str().unwrap(), false);
});
