//! What the fuzz targets share: driving each parser of untrusted input to its end and
//! checking that every failure is an error with a message (a panic is the finding).

use std::io::{Read, Write};

use kiln_image::import::{load, ImageSource, PlatformIndex};
use kiln_image::spec::Platform;
use kiln_layer::Compression;
use kiln_normalize::{normalize_layer, Devices, Expected, LayerOptions, Scrubber};

/// Random bytes rarely carry a valid tar checksum, and then the reader stops at the first
/// header. Giving every 512-byte block the checksum of its bytes (data blocks too: it
/// changes nothing there) lets mutations reach the field parsers.
pub fn fix_checksums(data: &mut [u8]) {
    for blk in data.chunks_exact_mut(512) {
        blk[148..156].fill(b' ');
        let sum: u32 = blk.iter().map(|&b| b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        blk[148..156].copy_from_slice(s.as_bytes());
    }
}

/// Every header of `data` as a tar stream, and every entry's data to its end.
pub fn drain_tar(data: &[u8]) {
    kiln_testkit::tars::drain(data);
}

/// `normalize_layer` on `blob`. The bits of `mode` pick the options: devices kept or
/// refused, scrub rules, gzip output, and whether the blob is gzipped first (read_layer
/// sniffs compression, so the decompressing path is covered with valid streams too).
pub fn normalize(mode: u8, blob: &[u8]) {
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
        e.write_all(blob).unwrap();
        e.finish().unwrap()
    } else {
        blob.to_vec()
    };
    let spill = tempfile::tempfile().unwrap();
    if let Err(e) = normalize_layer(&input[..], &Expected::default(), spill, &opts, Vec::new()) {
        assert!(!e.message().is_empty());
    }
}

/// Opens `path` as an image (tarball or layout), reads its multi-platform index, loads the
/// image with and without a platform and reads its layer blobs back; with `config`, also
/// normalizes the loaded config.
pub fn load_image(path: &str, config: bool) {
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
                if config {
                    let _ = kiln_normalize::normalize_config(&img.config, Vec::new(), 0);
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

/// A Dockerfile from any bytes: parse, stage graph, every stage as a target, lint.
pub fn dockerfile(data: &[u8]) {
    for labs in [false, true] {
        let opts = kiln_dockerfile::ParseOptions { labs };
        let Ok(df) = kiln_dockerfile::parse_bytes(data, "Dockerfile", opts) else {
            continue;
        };
        if let Ok(graph) = kiln_dockerfile::StageGraph::new(&df, &kiln_dockerfile::NoEnv) {
            for i in 0..graph.len() {
                let _ = graph.dependencies(i);
            }
            let _ = graph.target(None);
        }
        let _ = kiln_lint::lint(&df, None, &kiln_lint::LintOptions::default());
    }
}

/// A .dockerignore from the first part of the input (up to a NUL), matched against each
/// line of the rest, as a file and as a directory.
pub fn dockerignore(data: &[u8]) {
    let (patterns, names) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(text) = std::str::from_utf8(patterns) else {
        return;
    };
    let Ok(m) = kiln_dockerfile::IgnoreMatcher::parse(text) else {
        return;
    };
    for name in String::from_utf8_lossy(names).lines() {
        let _ = m.is_excluded(name, false);
        let _ = m.is_excluded(name, true);
        let _ = m.matches_or_parent_matches(name);
        let _ = m.may_include_inside(name);
    }
}
