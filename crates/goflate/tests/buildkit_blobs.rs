//! Real layer blobs written by BuildKit v0.19.0 (Go 1.23 `compress/gzip`, default level):
//! goflate must recompress their contents to the identical bytes, both from one write and
//! from the writes a tar writer makes (512-byte headers, data in <= 32 KiB pieces, padding,
//! two zero blocks).

use flate2::read::GzDecoder;
use goflate::{GzipWriter, Level};
use kiln_digest::Digest;
use std::io::{Read, Write};
use std::path::PathBuf;

fn blobs() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/goflate/buildkit");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read testdata/goflate/buildkit") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("gz") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        out.push((name, std::fs::read(&path).expect("read blob")));
    }
    out.sort();
    out
}

/// The write sizes of a tar writer for `tar`: each header block, file data in pieces of at
/// most 32 KiB, the padding, then 512-byte zero blocks.
fn tar_writes(tar: &[u8]) -> Vec<usize> {
    let mut writes = Vec::new();
    let mut off = 0;
    while off + 512 <= tar.len() {
        let h = &tar[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            writes.push(512);
            off += 512;
            continue;
        }
        let size_field = std::str::from_utf8(&h[124..136]).expect("size field");
        let size = usize::from_str_radix(size_field.trim_matches(|c| c == '\0' || c == ' '), 8)
            .expect("octal size");
        writes.push(512);
        let mut rest = size;
        while rest > 0 {
            writes.push(rest.min(32768));
            rest -= rest.min(32768);
        }
        let pad = (512 - size % 512) % 512;
        if pad > 0 {
            writes.push(pad);
        }
        off += 512 + size + pad;
    }
    assert_eq!(off, tar.len(), "tar is not a whole number of blocks");
    writes
}

#[test]
fn buildkit_layer_blobs_are_reproduced() {
    let blobs = blobs();
    assert!(
        blobs.len() >= 20,
        "expected the BuildKit blobs, found {}",
        blobs.len()
    );
    assert!(
        blobs.iter().any(|(_, b)| b.len() > 1_000_000),
        "the 1 MB scratch-copy blob is missing"
    );
    for (name, blob) in &blobs {
        assert_eq!(
            Digest::of(blob).hex(),
            *name,
            "blob file name is its sha256"
        );
        let mut tar = Vec::new();
        GzDecoder::new(&blob[..])
            .read_to_end(&mut tar)
            .expect("gunzip");

        assert_eq!(
            goflate::gzip(&tar, Level::DEFAULT),
            *blob,
            "{name}: one write"
        );

        let mut w = GzipWriter::new(Vec::new(), Level::DEFAULT);
        let mut off = 0;
        for n in tar_writes(&tar) {
            w.write_all(&tar[off..off + n]).expect("write");
            off += n;
        }
        assert_eq!(w.finish().expect("finish"), *blob, "{name}: tar writes");
    }
}

#[test]
fn empty_layer_vector_from_the_spec() {
    // buildkit-format.md section 0: the canonical empty layer (1024 zero bytes).
    let out = goflate::gzip(&[0u8; 1024], Level::DEFAULT);
    let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "1f8b08000000000000ff621805a360148c5800080000ffff2eafb5ef00040000"
    );
    assert_eq!(
        Digest::of(&out).to_string(),
        "sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1"
    );
}
