//! `kiln verify`: rebuild a BuildKit fixture and check it against BuildKit's digest or
//! image; on a mismatch, the first differing layer and its files.

mod common;

use std::path::Path;

use common::*;

const CASE: &str = "scratch-meta";

fn verify(ctx: &Path, out: &Path, sde: &str, extra: &[&str]) -> std::process::Output {
    kiln()
        .args([
            "verify",
            "--progress",
            "quiet",
            "--compression",
            "uncompressed",
            "--sde",
            sde,
            "-f",
        ])
        .arg(fixture_dir(CASE).join("Dockerfile"))
        .arg("-o")
        .arg(out)
        .args(extra)
        .arg(ctx)
        .output()
        .expect("run kiln")
}

#[test]
fn reproduces_buildkits_image() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    make_context(CASE, &ctx);
    let e = expected(CASE);
    let sde = e["source_date_epoch"].to_string();
    let want = e["outputs"]["docker-uncompressed"]["manifest_digest"]
        .as_str()
        .unwrap();
    let out = tmp.path().join("rebuilt.tar");

    let r = verify(&ctx, &out, &sde, &["--expected-image-digest", want]);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(
        stdout.contains(&format!("✓ reproduced: {want}")),
        "{stdout}"
    );
    assert!(out.is_file(), "the rebuilt image is kept at -o");

    let target = fixture_dir(CASE).join("docker-uncompressed.tar");
    let target = target.to_str().unwrap();
    let r = verify(&ctx, &out, &sde, &["--target-image", target]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
}

#[test]
fn a_mismatch_shows_the_first_differing_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    make_context(CASE, &ctx);
    let e = expected(CASE);
    let sde = (e["source_date_epoch"].as_i64().unwrap() + 60).to_string();
    let out = tmp.path().join("rebuilt.tar");
    let target = fixture_dir(CASE).join("docker-uncompressed.tar");
    let r = verify(
        &ctx,
        &out,
        &sde,
        &["--target-image", target.to_str().unwrap()],
    );
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("✗ not reproduced"), "{stdout}");
    assert!(
        stdout.contains("first differing layer: 1 (rebuild sha256:"),
        "{stdout}"
    );
    // Directories the build made carry the epoch: a minute later than BuildKit's.
    assert!(
        stdout.lines().any(|l| l.starts_with("File")
            && l.contains("layers[0]/srv")
            && l.contains("mtime=2023-02-28T21:22:00Z")),
        "{stdout}"
    );
    assert!(
        stdout.contains("config differences:") && stdout.contains("Config    created"),
        "{stdout}"
    );

    // Against a digest alone there is nothing to compare with.
    let want = e["outputs"]["docker-uncompressed"]["manifest_digest"]
        .as_str()
        .unwrap();
    let r = verify(&ctx, &out, &sde, &["--expected-image-digest", want]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stdout).contains("pass --target-image"));
}

#[test]
fn needs_something_to_compare_with() {
    let tmp = tempfile::tempdir().unwrap();
    let r = kiln().arg("verify").arg(tmp.path()).output().unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--expected-image-digest"));
    // A missing target image fails before any build.
    let r = kiln()
        .args(["verify", "--target-image"])
        .arg(tmp.path().join("nope.tar"))
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("nope.tar"));
}
