//! kiln against BuildKit v0.19.0's real outputs (testdata/fixtures, copied from
//! ../shared/fixtures/buildkit-v0.19.0): for the fixtures that need no base image and no RUN,
//! kiln's uncompressed docker tarball must be BuildKit's byte for byte, and the gzip outputs
//! must have BuildKit's config blob and diff_ids.

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

#[test]
fn uncompressed_docker_tarballs_are_byte_identical_to_buildkit() {
    if skip_unless_root() {
        return;
    }
    let mut report = Vec::new();
    for case in SCRATCH_CASES {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        make_context(case, &ctx);
        let out = tmp.path().join("out.tar");
        let r = build_fixture(case, &ctx, &out, &["--compression", "uncompressed"]);
        assert!(
            r.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let e = expected(case);
        let want = e["outputs"]["docker-uncompressed"]["tarball_sha256"]
            .as_str()
            .unwrap();
        let got = sha256_file(&out);
        if got != want {
            let reference = fixture_dir(case).join("docker-uncompressed.tar");
            let detail = match std::fs::read(&reference) {
                Ok(b) => first_difference(&std::fs::read(&out).unwrap(), &b),
                Err(_) => "(no reference tarball in testdata)".into(),
            };
            report.push(format!("{case}: sha256 {got} != {want}: {detail}"));
        }
        let stdout = String::from_utf8_lossy(&r.stdout);
        let digest = e["outputs"]["docker-uncompressed"]["manifest_digest"]
            .as_str()
            .unwrap();
        assert!(
            stdout.contains(digest),
            "{case}: summary lacks {digest}: {stdout}"
        );
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn gzip_outputs_have_buildkits_config_and_diff_ids() {
    if skip_unless_root() {
        return;
    }
    for case in SCRATCH_CASES {
        for (format, variant) in [("docker", "docker"), ("oci", "oci")] {
            let tmp = tempfile::tempdir().unwrap();
            let ctx = tmp.path().join("ctx");
            make_context(case, &ctx);
            let out = tmp.path().join("out.tar");
            let r = build_fixture(case, &ctx, &out, &["--format", format]);
            assert!(
                r.status.success(),
                "{case}: {}",
                String::from_utf8_lossy(&r.stderr)
            );
            let a = run_ok(kiln().args(["analyze", "--json"]).arg(&out));
            let got: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
            let e = &expected(case)["outputs"][variant];
            assert_eq!(
                got["configDigest"], e["config_digest"],
                "{case} {format}: config"
            );
            let want_diff: Vec<&serde_json::Value> = e["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| &l["diff_id"])
                .collect();
            let got_diff: Vec<&serde_json::Value> = got["config"]["rootfs"]["diff_ids"]
                .as_array()
                .unwrap()
                .iter()
                .collect();
            assert_eq!(got_diff, want_diff, "{case} {format}: diff_ids");
            let media: Vec<&serde_json::Value> = got["manifest"]["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| &l["mediaType"])
                .collect();
            let want_media: Vec<&serde_json::Value> = e["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| &l["mediaType"])
                .collect();
            assert_eq!(media, want_media, "{case} {format}: layer media types");
        }
    }
}
