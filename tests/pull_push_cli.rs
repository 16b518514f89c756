//! `kiln pull` and `kiln push` usage and environment errors that need no registry: each is
//! refused with the contract's exit code (2 bad input, 3 environment) before anything is
//! written, and bad input is refused before the network is touched.

mod registry_common;

use registry_common::*;

/// A loopback port nothing listens on: reaching the network there would fail with exit 3.
const NOWHERE: &str = "127.0.0.1:1";

#[test]
fn bad_pull_arguments_are_refused_before_the_network() {
    let s = Scratch::new();
    let pinned = format!("{NOWHERE}/busybox@{BUSYBOX_MANIFEST}");

    Run::refused(s.kiln().args(["pull", &pinned]), &["--output"]);

    Run::refused(
        s.kiln()
            .args(["pull", "-o"])
            .arg(s.path("x.tar"))
            .arg("Bad/Name@sha256:zz"),
        &["Bad/Name@sha256:zz"],
    );

    let missing_dir = s.path("no/such/dir/x.tar");
    Run::refused(
        s.kiln()
            .args(["pull", "--cache-dir"])
            .arg(s.path("cache"))
            .arg("-o")
            .arg(&missing_dir)
            .arg(&pinned),
        &["does not exist"],
    );

    Run::refused(
        s.kiln()
            .args(["pull", "--platform", "linux/"])
            .arg("-o")
            .arg(s.path("x.tar"))
            .arg(&pinned),
        &[],
    );
    assert!(
        files_under(s.dir.path()).is_empty(),
        "{:?}",
        files_under(s.dir.path())
    );
}

#[test]
fn offline_pull_names_every_missing_digest() {
    let s = Scratch::new();
    let cache = s.path("cache");
    let r = Run::of(
        s.kiln()
            .args(["pull", "--offline", "--cache-dir"])
            .arg(&cache)
            .arg("-o")
            .arg(s.path("x.tar"))
            .arg(format!("{NOWHERE}/busybox@{BUSYBOX_MANIFEST}")),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("offline") && r.stderr.contains(BUSYBOX_MANIFEST),
        "{}",
        r.stderr
    );
    assert!(!s.path("x.tar").exists());
}

#[test]
fn unreachable_registry_is_an_environment_error() {
    let s = Scratch::new();
    let push = Run::of(
        s.kiln()
            .args(["push", "--progress", "quiet"])
            .arg(busybox_layout())
            .arg(format!("{NOWHERE}/busybox:latest")),
    );
    assert_eq!(push.code, 3, "{}", push.stderr);
    assert!(
        push.stderr.contains("cannot reach the registry") && push.stderr.contains(NOWHERE),
        "{}",
        push.stderr
    );
    let pull = Run::of(
        s.kiln()
            .args(["pull", "--progress", "quiet", "--cache-dir"])
            .arg(s.path("cache"))
            .arg("-o")
            .arg(s.path("x.tar"))
            .arg(format!("{NOWHERE}/busybox@{BUSYBOX_MANIFEST}")),
    );
    assert_eq!(pull.code, 3, "{}", pull.stderr);
    assert!(!s.path("x.tar").exists());
}

#[test]
fn pushing_something_that_is_not_an_image_is_bad_input() {
    let s = Scratch::new();
    let not_image = s.path("notes.txt");
    std::fs::write(&not_image, "not a tarball\n").unwrap();
    Run::refused(
        s.kiln()
            .arg("push")
            .arg(&not_image)
            .arg(format!("{NOWHERE}/x:latest")),
        &["notes.txt"],
    );

    let empty_dir = s.path("empty");
    std::fs::create_dir(&empty_dir).unwrap();
    Run::refused(
        s.kiln()
            .arg("push")
            .arg(&empty_dir)
            .arg(format!("{NOWHERE}/x:latest")),
        &["not an OCI layout"],
    );

    // A reference pinned to another digest than the image's.
    let other = format!("{NOWHERE}/x@sha256:{}", "0".repeat(64));
    Run::refused(
        s.kiln().arg("push").arg(busybox_layout()).arg(&other),
        &[BUSYBOX_MANIFEST],
    );

    Run::refused(
        s.kiln()
            .args(["push", "--chunk-size", "0"])
            .arg(busybox_layout())
            .arg(format!("{NOWHERE}/x:latest")),
        &[],
    );
}
