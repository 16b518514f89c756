//! GNU-format archives through BuildKit's rewrite-timestamp conversion: Go keeps the format
//! of a header it read, so a GNU layer comes out GNU (long name and long link entries,
//! base-256 numbers, access and change times). Expected bytes: Go 1.23's archive/tar, made by
//! testdata/tar-gnu/gen (one input written by GNU tar itself, one by Go in GNU format).

use std::path::PathBuf;

use kiln_layer::rewrite::rewrite_tar;
use kiln_layer::tar::{TarWriter, Timestamp};

fn data(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/tar-gnu")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn rewritten(input: &[u8]) -> Vec<u8> {
    let mut tw = TarWriter::new(Vec::new());
    rewrite_tar(input, Some(Timestamp::from_secs(1_700_000_000)), &mut tw).unwrap();
    tw.finish().unwrap()
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!("first difference at byte {i} (block {})", i / 512),
        None => format!("lengths {} and {}", a.len(), b.len()),
    }
}

#[test]
fn a_gnu_tar_archive_is_rewritten_as_go_writes_it() {
    let got = rewritten(&data("gnutar-made.tar"));
    let want = data("gnutar-made.rewritten.tar");
    assert!(got == want, "{}", first_difference(&got, &want));
}

#[test]
fn go_gnu_headers_are_rewritten_as_go_writes_them() {
    let got = rewritten(&data("go-written.tar"));
    let want = data("go-written.rewritten.tar");
    assert!(got == want, "{}", first_difference(&got, &want));
    // And a second pass changes nothing: kiln reads back what it wrote.
    assert!(rewritten(&got) == got);
}
