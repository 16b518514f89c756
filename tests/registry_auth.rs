//! The registry round trip behind htpasswd basic auth: credentials come from
//! `$DOCKER_CONFIG/config.json`; without them (or with a wrong password) kiln fails with an
//! environment error (exit 3) that names the registry, and leaves nothing behind. Credential
//! helpers (`credHelpers`, `credsStore`) run by Docker's protocol.

mod registry_common;

use registry_common::registry::Registry;
use registry_common::*;

#[test]
fn push_pull_build_push_with_basic_auth() {
    let Some(reg) = Registry::start(Some(("kiln", "s3cret"))) else {
        return;
    };
    let s = Scratch::new();
    let busybox = format!("{}/busybox", reg.addr);
    let pinned = format!("{busybox}@{BUSYBOX_MANIFEST}");

    // No credentials: exit 3, the registry and where credentials were looked for are named.
    let anonymous = Run::of(
        s.kiln()
            .args(["push", "--progress", "quiet"])
            .arg(busybox_layout())
            .arg(format!("{busybox}:latest")),
    );
    assert_eq!(anonymous.code, 3, "{}", anonymous.stderr);
    assert!(
        anonymous.stderr.contains("authentication failed") && anonymous.stderr.contains(&reg.addr),
        "{}",
        anonymous.stderr
    );

    // A wrong password: refused the same way.
    s.login(&reg.addr, "kiln", "wrong");
    let wrong = Run::of(
        s.kiln()
            .args(["pull", "--progress", "quiet", "--cache-dir"])
            .arg(s.path("wrong-cache"))
            .arg("-o")
            .arg(s.path("wrong.tar"))
            .arg(&pinned),
    );
    assert_eq!(wrong.code, 3, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("HTTP 401"), "{}", wrong.stderr);
    assert!(!s.path("wrong.tar").exists());
    assert!(assert_cache_clean(&s.path("wrong-cache")).is_empty());

    // The right one.
    s.login(&reg.addr, "kiln", "s3cret");
    let creds = Some("kiln:s3cret");
    let pushed = Run::ok(
        s.kiln()
            .args(["push", "--progress", "quiet", "--chunk-size", "300000"])
            .arg(busybox_layout())
            .arg(format!("{busybox}:latest")),
    );
    assert_eq!(pushed.image_digest(), BUSYBOX_MANIFEST);
    if let Some(json) = skopeo_inspect(&format!("docker://{busybox}:latest"), creds) {
        assert_eq!(json["Digest"], BUSYBOX_MANIFEST);
    }

    let pulled = Run::ok(
        s.kiln()
            .args(["pull", "--progress", "quiet", "--format", "oci"])
            .arg("--cache-dir")
            .arg(s.path("pull-cache"))
            .arg("-o")
            .arg(s.path("pulled.tar"))
            .arg(&pinned),
    );
    assert_eq!(pulled.image_digest(), BUSYBOX_MANIFEST);

    // Build through the cache; the second build downloads no blob.
    let ctx = s.copy_context("ctx", &pinned);
    let cache = s.path("build-cache");
    let build = |out: &str| {
        Run::of(
            s.kiln()
                .args(["build", "--progress", "quiet", "--sde", "1677619260"])
                .arg("--cache-dir")
                .arg(&cache)
                .arg("-o")
                .arg(s.path(out))
                .arg(&ctx),
        )
    };
    let gets = reg.blob_gets().len();
    let b1 = build("first.tar");
    assert_eq!(b1.code, 0, "{}", b1.stderr);
    assert_eq!(reg.blob_gets().len(), gets + 2, "{:?}", reg.blob_gets());
    let b2 = build("second.tar");
    assert_eq!(b2.code, 0, "{}", b2.stderr);
    assert_eq!(
        reg.blob_gets().len(),
        gets + 2,
        "the second build fetched blobs: {:?}",
        reg.blob_gets()
    );
    assert_eq!(b1.image_digest(), b2.image_digest());
    assert_eq!(
        sha256_file(&s.path("first.tar")),
        sha256_file(&s.path("second.tar"))
    );

    // Push the result; the registry and skopeo agree on its digest.
    let result = format!("{}/result:v1", reg.addr);
    let p = Run::ok(
        s.kiln()
            .args(["push", "--progress", "quiet"])
            .arg(s.path("first.tar"))
            .arg(&result),
    );
    assert_eq!(p.image_digest(), b1.image_digest());
    if let Some(json) = skopeo_inspect(&format!("docker://{result}"), creds) {
        assert_eq!(json["Digest"], b1.image_digest().as_str());
    }
}

/// A Docker credential helper (the protocol: `docker-credential-NAME get`, the server on
/// stdin, JSON on stdout), standing in for ecr-login, gcloud or pass: it knows the test
/// registry's password, logs what it was asked, and knows nothing else.
fn helper(s: &Scratch, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = s.path("helpers");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(
        &path,
        format!(
            r#"#!/bin/sh
[ "$1" = get ] || exit 1
read -r server
echo "$server" >> {log}
case "$server" in
    127.0.0.1:*) printf '{{"ServerURL":"%s","Username":"kiln","Secret":"s3cret"}}' "$server" ;;
    *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#,
            log = s.path("helper.log").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn credentials_from_a_credential_helper() {
    let Some(reg) = Registry::start(Some(("kiln", "s3cret"))) else {
        return;
    };
    let s = Scratch::new();
    let dir = helper(&s, "kilntest");
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let config = s.path("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let push = |target: &str| {
        Run::of(
            s.kiln()
                .env("PATH", &path)
                .args(["push", "--progress", "quiet"])
                .arg(busybox_layout())
                .arg(target),
        )
    };

    // credHelpers names the helper for this registry.
    std::fs::write(
        config.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"kilntest"}}}}"#, reg.addr),
    )
    .unwrap();
    let pushed = push(&format!("{}/busybox:helper", reg.addr));
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    assert_eq!(pushed.image_digest(), BUSYBOX_MANIFEST);
    let asked = std::fs::read_to_string(s.path("helper.log")).unwrap();
    assert!(asked.lines().all(|l| l == reg.addr), "{asked}");

    // credsStore: the same helper for every registry; it has nothing for `localhost`, so
    // kiln goes anonymous there and the registry refuses (exit 3).
    std::fs::write(config.join("config.json"), r#"{"credsStore":"kilntest"}"#).unwrap();
    let pushed = push(&format!("{}/busybox:store", reg.addr));
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    let port = reg.addr.rsplit(':').next().unwrap();
    let refused = push(&format!("localhost:{port}/busybox:anon"));
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("authentication failed"),
        "{}",
        refused.stderr
    );
    let asked = std::fs::read_to_string(s.path("helper.log")).unwrap();
    assert!(
        asked.lines().any(|l| l == format!("localhost:{port}")),
        "{asked}"
    );

    // A helper that is not installed: a clear error naming it and the config.
    std::fs::write(config.join("config.json"), r#"{"credsStore":"absent"}"#).unwrap();
    let missing = push(&format!("{}/busybox:missing", reg.addr));
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("docker-credential-absent")
            && missing.stderr.contains("config.json"),
        "{}",
        missing.stderr
    );
}
