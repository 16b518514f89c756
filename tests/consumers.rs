//! Real consumers read kiln's output: skopeo (docker-archive:, oci-archive:) and umoci
//! (unpack of the OCI layout gives the expected files, modes, owners and links).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::*;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn context(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("bin/tool"), "#!/bin/sh\necho tool\n").unwrap();
    std::fs::set_permissions(
        dir.join("bin/tool"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::fs::write(dir.join("secret.txt"), "s3cret\n").unwrap();
    std::fs::set_permissions(
        dir.join("secret.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(dir.join("data.txt"), "data\n").unwrap();
    std::fs::hard_link(dir.join("data.txt"), dir.join("data-link.txt")).unwrap();
    std::os::unix::fs::symlink("bin/tool", dir.join("tool-link")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY . /app/\nCOPY --chown=1000:1001 --chmod=0640 data.txt /home/owned.txt\nWORKDIR /srv\n",
    )
    .unwrap();
}

fn build(ctx: &Path, out: &Path, format: &str) {
    run_ok(
        kiln()
            .args([
                "build",
                "--progress",
                "quiet",
                "--sde",
                "1700000000",
                "-t",
                "kiln-test:1.0",
            ])
            .args(["--format", format, "-o"])
            .arg(out)
            .arg(ctx),
    );
}

#[test]
fn skopeo_reads_docker_and_oci_tarballs() {
    if !have("skopeo") {
        eprintln!("SKIPPED: skopeo is not installed (apt-get install skopeo)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    context(&ctx);
    let docker = tmp.path().join("image.tar");
    let oci = tmp.path().join("image.oci.tar");
    build(&ctx, &docker, "docker");
    build(&ctx, &oci, "oci");

    let out = run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("docker-archive:{}", docker.display())),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["Architecture"],
        std::env::consts::ARCH
            .replace("x86_64", "amd64")
            .replace("aarch64", "arm64")
    );
    assert_eq!(v["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(v["Created"], "2023-11-14T22:13:20Z");

    let copied = tmp.path().join("copied");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(format!("oci-archive:{}", oci.display()))
            .arg(format!("oci:{}:copied", copied.display())),
    );
    assert!(copied.join("index.json").is_file());
    // The manifest survives the copy unchanged: same digest in the new layout.
    let ours = run_ok(kiln().args(["analyze", "--json"]).arg(&oci));
    let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copied.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], ours["imageDigest"]);

    // docker-archive -> oci layout works too.
    run_ok(
        Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(format!("docker-archive:{}", docker.display()))
            .arg(format!("oci:{}:fromdocker", copied.display())),
    );
}

#[test]
fn umoci_unpacks_the_expected_tree() {
    if !have("umoci") || !is_root() {
        eprintln!("SKIPPED: umoci unpack needs umoci and root here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    context(&ctx);
    let layout = tmp.path().join("layout");
    build(&ctx, &layout, "oci-dir");
    let bundle = tmp.path().join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:1.0", layout.display()))
            .arg(&bundle),
    );
    let root = bundle.join("rootfs");
    let md = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("app/bin/tool")).unwrap(),
        "#!/bin/sh\necho tool\n"
    );
    assert_eq!(md("app/bin/tool").mode() & 0o7777, 0o4755);
    assert_eq!(md("app/secret.txt").mode() & 0o7777, 0o600);
    assert_eq!(
        (md("app/secret.txt").uid(), md("app/secret.txt").gid()),
        (0, 0)
    );
    assert_eq!(
        std::fs::read_link(root.join("app/tool-link")).unwrap(),
        Path::new("bin/tool")
    );
    assert_eq!(
        md("app/data.txt").ino(),
        md("app/data-link.txt").ino(),
        "hard link kept"
    );
    assert_eq!(md("home/owned.txt").mode() & 0o7777, 0o640);
    assert_eq!(
        (md("home/owned.txt").uid(), md("home/owned.txt").gid()),
        (1000, 1001)
    );
    assert_eq!(
        (md("home").uid(), md("home").gid()),
        (1000, 1001),
        "--chown owns created parents"
    );
    assert!(md("srv").is_dir());
    assert_eq!(
        md("app/data.txt").mtime(),
        1700000000.min(md("app/data.txt").mtime())
    );
}

/// A member of a tarball, through GNU tar.
fn member(tarball: &Path, name: &str) -> String {
    let out = run_ok(Command::new("tar").arg("-xOf").arg(tarball).arg(name));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_image_without_layers_has_buildkits_nulls_and_is_read() {
    // BuildKit's exporter appends layers and history to nil Go slices and always sets
    // `created`: a bare `FROM scratch` gives `null` for all four (read from BuildKit
    // v0.19.0's exporter/containerimage/writer.go and containerd's archive exporter).
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
    let out = dir.path().join("img.tar");
    build(&ctx, &out, "docker");
    let records: serde_json::Value = serde_json::from_str(&member(&out, "manifest.json")).unwrap();
    assert_eq!(records[0]["Layers"], serde_json::Value::Null);
    let index: serde_json::Value = serde_json::from_str(&member(&out, "index.json")).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest = member(&out, &format!("blobs/sha256/{}", &manifest_digest[7..]));
    assert!(manifest.contains("\"layers\": null"), "{manifest}");
    let config_name = records[0]["Config"].as_str().unwrap().to_owned();
    let config = member(&out, &config_name);
    assert!(
        config.contains(r#""created":null,"history":null,"os":"linux""#),
        "{config}"
    );
    if have("skopeo") {
        let o = run_ok(
            Command::new("skopeo")
                .arg("inspect")
                .arg(format!("docker-archive:{}", out.display())),
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["Layers"], serde_json::json!([]));
    }
}

/// Builds `ctx` with `busybox` bound to `source`, returning the command's output.
fn build_from(ctx: &Path, source: &str, out: &Path) -> std::process::Output {
    kiln()
        .args(["build", "--progress", "quiet", "--sde", "1700000000"])
        .arg("--build-context")
        .arg(format!("busybox={source}"))
        .arg("-o")
        .arg(out)
        .arg(ctx)
        .output()
        .unwrap()
}

#[test]
fn a_skopeo_docker_archive_is_a_base_like_the_layout_it_came_from() {
    if !have("skopeo") {
        eprintln!("SKIP: skopeo is not installed (scripts/test.sh installs it)");
        return;
    }
    // skopeo writes `docker save`'s legacy layout: manifest.json naming layer files by
    // path, no index.json. Its layers must open by digest like any blob.
    let dir = tempfile::tempdir().unwrap();
    let layout = repo().join("testdata/base/busybox");
    let archive = dir.path().join("busybox.tar");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(format!("oci:{}", layout.display()))
            .arg(format!("docker-archive:{}", archive.display())),
    );
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY Dockerfile /x\n").unwrap();
    let from_layout = dir.path().join("a.tar");
    let from_archive = dir.path().join("b.tar");
    let o = build_from(
        &ctx,
        &format!("oci-layout://{}", layout.display()),
        &from_layout,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = build_from(
        &ctx,
        &format!("docker-archive:{}", archive.display()),
        &from_archive,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(sha256_file(&from_layout), sha256_file(&from_archive));

    // It cannot be pushed with a digest of its own (its manifest is synthesised): refused
    // before any registry is contacted (nothing listens on port 9), with the ways out.
    let o = kiln()
        .args(["push", "--progress", "quiet"])
        .arg(&archive)
        .arg("127.0.0.1:9/x:y")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("old-style `docker save` archive"), "{err}");
    assert!(err.contains("kiln normalize"), "{err}");

    // The same archive with one layer byte flipped: refused, nothing written.
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked),
    );
    let records: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap()).unwrap();
    let layer = unpacked.join(records[0]["Layers"][0].as_str().unwrap());
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes[600] ^= 1;
    std::fs::remove_file(&layer).unwrap(); // may be a link to another member
    std::fs::write(&layer, &bytes).unwrap();
    let tampered = dir.path().join("tampered.tar");
    run_ok(
        Command::new("tar")
            .arg("-cf")
            .arg(&tampered)
            .arg("-C")
            .arg(&unpacked)
            .arg("."),
    );
    let out = dir.path().join("c.tar");
    let o = build_from(
        &ctx,
        &format!("docker-archive:{}", tampered.display()),
        &out,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("has digest"), "{err}");
    assert!(!out.exists());
}
