//! The BuildKit fixtures built on the busybox base: pulled from a real registry (or, for
//! busybox-run-ocilayout, read from an OCI layout named with `--build-context`), the base is
//! carried exactly as BuildKit v0.19.0 did: every output variant (docker, oci,
//! docker-uncompressed, docker-named) is BuildKit's tarball byte for byte, and each layer's
//! config, diff_id, media type and base blob is checked on its own for clear reports.
//!
//! The fixture contexts (chown to other uids) and RUN need root: skipped with a message
//! otherwise.

mod common;
mod registry_common;

use std::path::Path;

use common::{expected, first_difference, fixture_dir, is_root, make_context};
use registry_common::registry::Registry;
use registry_common::{
    busybox_layout, sha256_file, Run, Scratch, BUSYBOX_LAYER, BUSYBOX_MANIFEST, FIXTURE_REGISTRY,
};

const REGISTRY_CASES: &[&str] = &[
    "busybox-run",
    "busybox-copy-run",
    "busybox-run-args",
    "busybox-empty-layers",
    "busybox-chown-names",
];

fn skip_unless_root() -> bool {
    if !is_root() {
        eprintln!("SKIPPED: the busybox fixtures need root (contexts chown to other uids; RUN)");
        return true;
    }
    false
}

/// One fixture case, ready to build: its context and its Dockerfile (FROM pointing at the
/// test registry).
struct Case {
    name: &'static str,
    ctx: std::path::PathBuf,
    dockerfile: std::path::PathBuf,
    expected: serde_json::Value,
}

fn prepare(s: &Scratch, name: &'static str, registry: Option<&str>) -> Case {
    let dir = s.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let ctx = dir.join("ctx");
    make_context(name, &ctx);
    let text = std::fs::read_to_string(fixture_dir(name).join("Dockerfile")).unwrap();
    let text = match registry {
        Some(addr) => {
            assert!(text.contains(FIXTURE_REGISTRY), "{name}: {text}");
            text.replace(FIXTURE_REGISTRY, addr)
        }
        None => text,
    };
    let dockerfile = dir.join("Dockerfile");
    std::fs::write(&dockerfile, text).unwrap();
    Case {
        name,
        ctx,
        dockerfile,
        expected: expected(name),
    }
}

fn build(s: &Scratch, case: &Case, out: &Path, cache: &Path, extra: &[&str]) -> Run {
    let sde = case.expected["source_date_epoch"]
        .as_i64()
        .unwrap()
        .to_string();
    Run::of(
        s.kiln()
            .args(["build", "--progress", "quiet", "--sde", &sde, "-f"])
            .arg(&case.dockerfile)
            .arg("--cache-dir")
            .arg(cache)
            .arg("-o")
            .arg(out)
            .args(extra)
            .arg(&case.ctx),
    )
}

/// Builds `case` uncompressed and gzip (docker and OCI) and returns what differs from
/// BuildKit's outputs (empty when everything matches).
fn check_case(s: &Scratch, case: &Case, cache: &Path, extra: &[&str]) -> Vec<String> {
    let mut report = Vec::new();
    let name = case.name;
    let out = s.path(name).join("uncompressed.tar");
    let mut args = vec!["--compression", "uncompressed"];
    args.extend_from_slice(extra);
    let r = build(s, case, &out, cache, &args);
    assert_eq!(r.code, 0, "{name}: {}", r.stderr);
    let want = &case.expected["outputs"]["docker-uncompressed"];
    let got = sha256_file(&out);
    if got != want["tarball_sha256"].as_str().unwrap() {
        let reference = fixture_dir(name).join("docker-uncompressed.tar");
        let detail = match std::fs::read(&reference) {
            Ok(b) => first_difference(&std::fs::read(&out).unwrap(), &b),
            Err(_) => "(no reference tarball in testdata)".into(),
        };
        report.push(format!(
            "{name} uncompressed: sha256 {got} != {}: {detail}",
            want["tarball_sha256"]
        ));
    }
    if r.image_digest() != want["manifest_digest"].as_str().unwrap() {
        report.push(format!(
            "{name} uncompressed: image digest {} != {}",
            r.image_digest(),
            want["manifest_digest"]
        ));
    }

    for format in ["docker", "oci", "docker-named"] {
        let Some(want_tar) = case.expected["outputs"][format]["tarball_sha256"].as_str() else {
            continue;
        };
        let out = s.path(name).join(format!("{format}.tar"));
        let mut args = match format {
            "docker-named" => vec![
                "--format",
                "docker",
                "-t",
                "docker.io/library/fixture:latest",
            ],
            f => vec!["--format", f],
        };
        args.extend_from_slice(extra);
        let r = build(s, case, &out, cache, &args);
        assert_eq!(r.code, 0, "{name} {format}: {}", r.stderr);
        let got_tar = sha256_file(&out);
        if got_tar != want_tar {
            let reference = fixture_dir(name).join(format!("{format}.tar"));
            let detail = match std::fs::read(&reference) {
                Ok(b) => first_difference(&std::fs::read(&out).unwrap(), &b),
                Err(_) => "(no reference tarball in testdata)".into(),
            };
            report.push(format!(
                "{name} {format}: sha256 {got_tar} != {want_tar}: {detail}"
            ));
        }
        if got_tar == want_tar && format != "docker-named" {
            // This file is BuildKit's tarball, byte for byte: crosschecking it is crosschecking
            // BuildKit's own output (whose big tarballs are not copied into testdata).
            let sde = case.expected["source_date_epoch"]
                .as_i64()
                .unwrap()
                .to_string();
            let c = Run::of(
                s.kiln()
                    .args(["crosscheck", "--progress", "quiet", "--sde", &sde, "-f"])
                    .arg(&case.dockerfile)
                    .arg("--cache-dir")
                    .arg(cache)
                    .arg("-o")
                    .arg(s.path(name).join(format!("crosscheck-{format}.tar")))
                    .args(extra)
                    .arg(&out)
                    .arg(&case.ctx),
            );
            if c.code != 0 || !c.stdout.contains("verdict: identical") {
                report.push(format!(
                    "{name} {format}: crosscheck exit {}: {}{}",
                    c.code, c.stdout, c.stderr
                ));
            }
        }
        let want_digest = case.expected["outputs"][format]["manifest_digest"]
            .as_str()
            .unwrap();
        if r.image_digest() != want_digest {
            report.push(format!(
                "{name} {format}: image digest {} != {want_digest}",
                r.image_digest()
            ));
        }
        let a = Run::ok(s.kiln().args(["analyze", "--json"]).arg(&out));
        let got: serde_json::Value = serde_json::from_str(&a.stdout).unwrap();
        let want = &case.expected["outputs"][format];
        if got["configDigest"] != want["config_digest"] {
            report.push(format!(
                "{name} {format}: config {} != {}",
                got["configDigest"], want["config_digest"]
            ));
        }
        let got_layers = got["manifest"]["layers"].as_array().unwrap();
        let want_layers = want["layers"].as_array().unwrap();
        let diff_ids = got["config"]["rootfs"]["diff_ids"].as_array().unwrap();
        if got_layers.len() != want_layers.len() || diff_ids.len() != want_layers.len() {
            report.push(format!(
                "{name} {format}: {} layers, {} diff_ids; BuildKit has {}",
                got_layers.len(),
                diff_ids.len(),
                want_layers.len()
            ));
            continue;
        }
        for (i, (g, w)) in got_layers.iter().zip(want_layers).enumerate() {
            if diff_ids[i] != w["diff_id"] || g["mediaType"] != w["mediaType"] {
                report.push(format!(
                    "{name} {format}: layer {i}: diff_id {} type {} != {} {}",
                    diff_ids[i], g["mediaType"], w["diff_id"], w["mediaType"]
                ));
            }
            // Base layers are BuildKit's own blobs: identical whatever the gzip encoder.
            if w["digest"] == BUSYBOX_LAYER && g["digest"] != w["digest"] {
                report.push(format!(
                    "{name} {format}: base layer {i} is {}, not {BUSYBOX_LAYER}",
                    g["digest"]
                ));
            }
        }
    }
    report
}

#[test]
fn busybox_fixtures_from_a_registry_match_buildkit() {
    if skip_unless_root() {
        return;
    }
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let s = Scratch::new();
    Run::ok(
        s.kiln()
            .args(["push", "--progress", "quiet"])
            .arg(busybox_layout())
            .arg(format!("{}/busybox@{BUSYBOX_MANIFEST}", reg.addr)),
    );
    let cache = s.path("cache");
    let gets = reg.blob_gets().len();
    let mut report = Vec::new();
    for name in REGISTRY_CASES {
        let case = prepare(&s, name, Some(&reg.addr));
        report.extend(check_case(&s, &case, &cache, &[]));
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
    assert_eq!(
        reg.blob_gets().len() - gets,
        2,
        "16 builds, one download each of config and layer: {:?}",
        reg.blob_gets()
    );
}

#[test]
fn busybox_from_a_named_oci_layout_context_matches_buildkit() {
    if skip_unless_root() {
        return;
    }
    let s = Scratch::new();
    let case = prepare(&s, "busybox-run-ocilayout", None);
    let named = format!(
        "busybox=oci-layout://{}@{BUSYBOX_MANIFEST}",
        busybox_layout().display()
    );
    let report = check_case(
        &s,
        &case,
        &s.path("cache"),
        &["--offline", "--build-context", &named],
    );
    assert!(report.is_empty(), "{}", report.join("\n"));
    assert!(
        registry_common::files_under(&s.path("cache")).is_empty(),
        "a named layout needs no cache"
    );
}
