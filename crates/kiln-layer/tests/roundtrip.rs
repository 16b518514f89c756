//! Go-compatibility of the tar reader and writer, checked on a real layer: the busybox base
//! image of the BuildKit fixtures (written by umoci with Go's archive/tar).

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use kiln_digest::Digest;
use kiln_layer::rewrite::rewrite_tar;
use kiln_layer::tar::{TarReader, TarWriter, Timestamp};

fn busybox_layer_tar() -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../testdata/base/busybox/blobs/sha256/bd12cd9dfdc46f65a573432ffaf203725a958eac3cd08f3c73a31974a58ed607",
    );
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(File::open(p).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn reading_and_rewriting_reproduces_the_original_bytes() {
    let tar = busybox_layer_tar();
    assert_eq!(
        Digest::of(&tar).to_string(),
        "sha256:36975381a6b29cfef561f64992255c136267061793fd935285360c3d52212bed"
    );
    let mut w = TarWriter::new(Vec::new());
    let stats = rewrite_tar(&tar[..], None, &mut w).unwrap();
    assert_eq!(stats.entries, 35);
    assert_eq!(w.finish().unwrap(), tar);
}

#[test]
fn clamping_to_the_epoch_gives_buildkits_rewritten_base_layer() {
    // BuildKit rewrote this layer when the base came in as an oci-layout named context
    // (fixture busybox-run-ocilayout): only /etc/motd (mtime 1700000000) changes.
    let tar = busybox_layer_tar();
    let mut w = TarWriter::new(Vec::new());
    let stats = rewrite_tar(&tar[..], Some(Timestamp::from_secs(1677619260)), &mut w).unwrap();
    assert_eq!(stats.clamped, 1);
    let out = w.finish().unwrap();
    assert_eq!(
        Digest::of(&out).to_string(),
        "sha256:aa0fc0cdde229688c03761887ddaaf53c73a2818d7776eabf8bcc0e3735fc262"
    );
}

#[test]
fn reader_reports_entries_like_go() {
    let tar = busybox_layer_tar();
    let mut r = TarReader::new(&tar[..]);
    let first = r.next_header().unwrap().unwrap();
    assert_eq!(first.name, b".");
    assert_eq!(first.typeflag, b'5');
    let mut names = vec![];
    while let Some(h) = r.next_header().unwrap() {
        names.push(String::from_utf8(h.name).unwrap());
    }
    assert!(names.contains(&"etc/motd".to_string()));
    assert_eq!(names.last().unwrap(), "tmp/");
}
