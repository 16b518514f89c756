//! Registries that lie or break, played by a scripted loopback server, through the `kiln`
//! binary: `kiln pull` and `kiln build` must fail with a clear message and the contract's exit
//! code (2 bad input: wrong content, not found, oversized or unknown manifest; 3 environment:
//! a transfer that keeps breaking), and leave nothing in the cache or the output directory.

mod registry_common;

use std::path::Path;

use registry_common::hostile::{Hostile, Reply, Request};
use registry_common::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// How the server misbehaves.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// The layer's bytes, one flipped: same size, wrong digest.
    WrongBlob,
    /// The layer with a full Content-Length but only half the bytes, every time (and no Range
    /// support).
    TruncatedBlob,
    /// 404 for the manifest.
    NoManifest,
    /// A manifest body over the 4 MiB cap (streamed, no Content-Length).
    HugeManifest,
    /// The manifest with a media type kiln does not know.
    UnknownMediaType,
}

/// Serves the fixtures' busybox image as `busybox`, with one lie.
fn serve(lie: Lie) -> Hostile {
    let manifest = busybox_blob(BUSYBOX_MANIFEST);
    let config = busybox_blob(BUSYBOX_CONFIG);
    let layer = busybox_blob(BUSYBOX_LAYER);
    Hostile::start(move |req: &Request| {
        let path = req.path();
        if path == format!("/v2/busybox/manifests/{BUSYBOX_MANIFEST}") {
            return match lie {
                Lie::NoManifest => Reply::new(404)
                    .header("Content-Type", "application/json")
                    .body(
                        r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
                    ),
                Lie::HugeManifest => {
                    let mut body = b"{\"schemaVersion\":2,\"x\":\"".to_vec();
                    body.resize(4 * 1024 * 1024 + 100, b'a');
                    Reply::new(200)
                        .header("Content-Type", OCI_MANIFEST)
                        .body(body)
                        .no_length()
                }
                Lie::UnknownMediaType => Reply::new(200)
                    .header("Content-Type", "application/vnd.example.weird+json")
                    .header("Docker-Content-Digest", BUSYBOX_MANIFEST)
                    .body(manifest.clone()),
                _ => Reply::new(200)
                    .header("Content-Type", OCI_MANIFEST)
                    .header("Docker-Content-Digest", BUSYBOX_MANIFEST)
                    .body(manifest.clone()),
            };
        }
        if path == format!("/v2/busybox/blobs/{BUSYBOX_CONFIG}") {
            return Reply::new(200).body(config.clone());
        }
        if path == format!("/v2/busybox/blobs/{BUSYBOX_LAYER}") {
            return match lie {
                Lie::WrongBlob => {
                    let mut bad = layer.clone();
                    bad[1000] ^= 0xff;
                    Reply::new(200).body(bad)
                }
                Lie::TruncatedBlob => Reply::new(200)
                    .body(layer.clone())
                    .cut_after(layer.len() / 2),
                _ => Reply::new(200).body(layer.clone()),
            };
        }
        Reply::new(404)
    })
}

/// What each lie must produce: exit code and a phrase of the message.
fn expectation(lie: Lie) -> (i32, &'static str) {
    match lie {
        Lie::WrongBlob => (2, "content does not match its digest"),
        Lie::TruncatedBlob => (3, "transfer cut short"),
        Lie::NoManifest => (2, "not found"),
        Lie::HugeManifest => (2, "larger than the 4194304-byte limit"),
        Lie::UnknownMediaType => (
            2,
            "unsupported manifest media type \"application/vnd.example.weird+json\"",
        ),
    }
}

/// Nothing is left in `dir` but what the test put there.
fn assert_no_output(dir: &Path, allowed: &[&str]) {
    let files: Vec<String> = files_under(dir)
        .into_iter()
        .filter(|f| !allowed.iter().any(|a| f.starts_with(a)))
        .collect();
    assert!(files.is_empty(), "left behind: {files:?}");
}

fn check(lie: Lie) {
    let server = serve(lie);
    let s = Scratch::new();
    let (code, phrase) = expectation(lie);
    let pinned = format!("{}/busybox@{BUSYBOX_MANIFEST}", server.addr);
    let bad_blob = matches!(lie, Lie::WrongBlob | Lie::TruncatedBlob);

    // kiln pull
    let out_dir = s.path("pull-out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let cache = s.path("pull-cache");
    let pull = Run::of(
        s.kiln()
            .args(["pull", "--progress", "quiet", "--cache-dir"])
            .arg(&cache)
            .arg("-o")
            .arg(out_dir.join("image.tar"))
            .arg(&pinned),
    );
    eprint!("{lie:?}: kiln pull exit {}: {}", pull.code, pull.stderr);
    assert_eq!(pull.code, code, "{lie:?} pull: {}", pull.stderr);
    assert!(
        pull.stderr.contains(phrase),
        "{lie:?} pull: {}",
        pull.stderr
    );
    assert!(pull.stderr.starts_with("error: "), "{}", pull.stderr);
    assert!(pull.stdout.is_empty(), "{}", pull.stdout);
    assert_no_output(&out_dir, &[]);
    let cached = assert_cache_clean(&cache);
    assert!(!cached.contains(&BUSYBOX_LAYER.to_string()), "{cached:?}");
    if !bad_blob {
        assert!(cached.is_empty(), "{lie:?}: {cached:?}");
    }
    if bad_blob {
        assert!(
            pull.stderr.contains(BUSYBOX_LAYER),
            "the message names the blob: {}",
            pull.stderr
        );
    }

    // kiln build FROM the same reference
    let ctx = s.copy_context("ctx", &pinned);
    let build_cache = s.path("build-cache");
    let build_out = s.path("build-out");
    std::fs::create_dir_all(&build_out).unwrap();
    let build = Run::of(
        s.kiln()
            .args(["build", "--progress", "quiet", "--cache-dir"])
            .arg(&build_cache)
            .arg("-o")
            .arg(build_out.join("image.tar"))
            .arg(&ctx),
    );
    eprint!("{lie:?}: kiln build exit {}: {}", build.code, build.stderr);
    assert_eq!(build.code, code, "{lie:?} build: {}", build.stderr);
    assert!(
        build.stderr.contains(phrase),
        "{lie:?} build: {}",
        build.stderr
    );
    assert_no_output(&build_out, &[]);
    let cached = assert_cache_clean(&build_cache);
    assert!(!cached.contains(&BUSYBOX_LAYER.to_string()), "{cached:?}");
}

#[test]
fn a_blob_whose_bytes_do_not_match_its_digest() {
    check(Lie::WrongBlob);
}

#[test]
fn a_truncated_blob() {
    check(Lie::TruncatedBlob);
}

#[test]
fn a_missing_manifest() {
    check(Lie::NoManifest);
}

#[test]
fn a_manifest_over_the_cap() {
    check(Lie::HugeManifest);
}

#[test]
fn a_manifest_of_unknown_media_type() {
    check(Lie::UnknownMediaType);
}

/// A registry that answers correctly: the same harness serves a pull that works, so the
/// failures above are the lies' doing.
#[test]
fn the_honest_server_serves_a_working_pull() {
    let server = Hostile::start({
        let manifest = busybox_blob(BUSYBOX_MANIFEST);
        let config = busybox_blob(BUSYBOX_CONFIG);
        let layer = busybox_blob(BUSYBOX_LAYER);
        move |req: &Request| match req.path() {
            p if p.ends_with(&format!("/manifests/{BUSYBOX_MANIFEST}")) => Reply::new(200)
                .header("Content-Type", OCI_MANIFEST)
                .body(manifest.clone()),
            p if p.ends_with(&format!("/blobs/{BUSYBOX_CONFIG}")) => {
                Reply::new(200).body(config.clone())
            }
            p if p.ends_with(&format!("/blobs/{BUSYBOX_LAYER}")) => {
                Reply::new(200).body(layer.clone())
            }
            _ => Reply::new(404),
        }
    });
    let s = Scratch::new();
    let r = Run::ok(
        s.kiln()
            .args(["pull", "--progress", "quiet", "--cache-dir"])
            .arg(s.path("cache"))
            .arg("-o")
            .arg(s.path("image.tar"))
            .arg(format!("{}/busybox@{BUSYBOX_MANIFEST}", server.addr)),
    );
    assert_eq!(r.image_digest(), BUSYBOX_MANIFEST);
    assert_eq!(
        assert_cache_clean(&s.path("cache")),
        vec![
            BUSYBOX_MANIFEST.to_string(),
            BUSYBOX_LAYER.to_string(),
            BUSYBOX_CONFIG.to_string()
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert_eq!(server.count("GET /v2/busybox/blobs/"), 2);
}
