//! An arbitrary file opened as an image tarball: indexing, loading the image (index.json,
//! manifest.json, configs) and reading its layer blobs back.
#![no_main]

use std::io::{Read, Write};

use kiln_image::import::{load, ImageSource, PlatformIndex};
use kiln_image::spec::Platform;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(data).unwrap();
    f.flush().unwrap();
    let path = f.path().to_str().unwrap().to_string();
    run(&path);
});

fn run(path: &str) {
    let source = match ImageSource::open(path) {
        Ok(s) => s,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    if let Err(e) = PlatformIndex::read(&source) {
        assert!(!e.to_string().is_empty());
    }
    let platform = Platform {
        os: "linux".into(),
        architecture: "amd64".into(),
        ..Platform::default()
    };
    for p in [None, Some(&platform)] {
        match load(&source, p, None) {
            Ok(img) => {
                for l in &img.manifest.layers {
                    let Ok(size) = u64::try_from(l.size) else {
                        continue;
                    };
                    if let Ok(mut r) = source.open_blob_verified(&l.digest, size) {
                        let mut sink = Vec::new();
                        let _ = r.read_to_end(&mut sink);
                    }
                }
                let _ = img.platform();
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}
