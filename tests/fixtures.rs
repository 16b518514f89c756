//! kiln against BuildKit v0.19.0's real outputs (testdata/fixtures, copied from
//! ../shared/fixtures/buildkit-v0.19.0): for the fixtures that need no base image and no RUN,
//! every output variant (docker, oci, docker-uncompressed, docker-named) must be BuildKit's
//! tarball byte for byte, and `kiln crosscheck` of BuildKit's docker and oci tarballs says
//! identical for every layer.

mod common;

use common::*;

const SCRATCH_CASES: &[&str] = &[
    "scratch-copy",
    "scratch-copy-sde0",
    "scratch-meta",
    "multistage",
    "add-tar",
    "xattr",
];

fn skip_unless_root() -> bool {
    if !is_root() {
        eprintln!("SKIPPED: fixture contexts need root (chown to other uids)");
        return true;
    }
    false
}

/// kiln flags for each BuildKit output variant.
const VARIANTS: &[(&str, &[&str])] = &[
    ("docker", &["--format", "docker"]),
    ("oci", &["--format", "oci"]),
    (
        "docker-uncompressed",
        &["--format", "docker", "--compression", "uncompressed"],
    ),
    (
        "docker-named",
        &[
            "--format",
            "docker",
            "-t",
            "docker.io/library/fixture:latest",
        ],
    ),
];

#[test]
fn every_output_variant_is_byte_identical_to_buildkit() {
    if skip_unless_root() {
        return;
    }
    let mut report = Vec::new();
    let mut checked = 0;
    for case in SCRATCH_CASES {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        make_context(case, &ctx);
        let e = expected(case);
        for (variant, flags) in VARIANTS {
            let Some(want) = e["outputs"][variant]["tarball_sha256"].as_str() else {
                continue;
            };
            let out = tmp.path().join(format!("{variant}.tar"));
            let r = build_fixture(case, &ctx, &out, flags);
            assert!(
                r.status.success(),
                "{case} {variant}: {}",
                String::from_utf8_lossy(&r.stderr)
            );
            checked += 1;
            let got = sha256_file(&out);
            if got != want {
                let reference = fixture_dir(case).join(format!("{variant}.tar"));
                let detail = match std::fs::read(&reference) {
                    Ok(b) => first_difference(&std::fs::read(&out).unwrap(), &b),
                    Err(_) => "(no reference tarball in testdata)".into(),
                };
                report.push(format!(
                    "{case} {variant}: sha256 {got} != {want}: {detail}"
                ));
            }
            if got == want && matches!(*variant, "docker" | "oci") {
                // This file is BuildKit's tarball byte for byte: crosscheck it as such.
                let sde = e["source_date_epoch"].as_i64().unwrap().to_string();
                let c = kiln()
                    .args(["crosscheck", "--progress", "quiet", "--sde", &sde, "-f"])
                    .arg(fixture_dir(case).join("Dockerfile"))
                    .arg("-o")
                    .arg(tmp.path().join(format!("crosscheck-{variant}.tar")))
                    .arg(&out)
                    .arg(&ctx)
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&c.stdout);
                if c.status.code() != Some(0) || !text.contains("verdict: identical") {
                    report.push(format!("{case} {variant}: crosscheck: {text}"));
                }
            }
            let digest = e["outputs"][variant]["manifest_digest"].as_str().unwrap();
            let stdout = String::from_utf8_lossy(&r.stdout);
            assert!(
                stdout.contains(digest),
                "{case} {variant}: summary lacks {digest}: {stdout}"
            );
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
    assert_eq!(
        checked,
        SCRATCH_CASES.len() * 3 + 1,
        "docker, oci, uncompressed for each; named for scratch-meta"
    );
}
