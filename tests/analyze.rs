//! `kiln analyze`: index, every manifest (nested indexes too), config, platform, layers and
//! digests; --expected-image-digest prints ✓/✗ and exits 1 on a mismatch; --show-contents;
//! --json.

#[path = "normalize_images.rs"]
mod images;

use std::path::{Path, PathBuf};

use images::*;
use kiln_digest::Digest;
use serde_json::{json, Value};

fn fixture(case: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/fixtures")
        .join(case)
        .join(file)
}

fn expected_digest(case: &str, variant: &str) -> String {
    let e: Value =
        serde_json::from_slice(&std::fs::read(fixture(case, "expected.json")).unwrap()).unwrap();
    e["outputs"][variant]["manifest_digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn expected_digest_check() {
    let img = fixture("scratch-meta", "oci.tar");
    let want = expected_digest("scratch-meta", "oci");
    let r = run_ok(
        kiln()
            .args(["analyze", "--expected-image-digest", &want])
            .arg(&img),
    );
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains(&format!("Image digest: {want}")), "{text}");
    assert!(
        text.contains(&format!("✓ Image digest matches {want}")),
        "{text}"
    );
    // Without the algorithm, as repro-build accepts it.
    let bare = want.trim_start_matches("sha256:");
    run_ok(
        kiln()
            .args(["analyze", "--expected-image-digest", bare])
            .arg(&img),
    );

    let other = expected_digest("scratch-meta", "docker");
    let r = run(kiln()
        .args(["analyze", "--expected-image-digest", &other])
        .arg(&img));
    assert_eq!(r.status.code(), Some(1));
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains(&format!(
            "✗ Image digest {want} does not match the expected {other}"
        )),
        "{text}"
    );

    let r = run(kiln()
        .args(["analyze", "--expected-image-digest", "sha256:xyz"])
        .arg(&img));
    assert_eq!(r.status.code(), Some(2));
}

#[test]
fn shows_every_document_and_layer() {
    let img = fixture("add-tar", "oci.tar");
    let r = run_ok(kiln().arg("analyze").arg(&img));
    let text = String::from_utf8_lossy(&r.stdout);
    for want in [
        "The image has an index and 1 manifest(s).",
        "Index (index.json):",
        "Manifest 1 (blobs/sha256/",
        "Config (blobs/sha256/",
        "  Platform: linux/amd64",
        "  Media type: application/vnd.oci.image.manifest.v1+json",
        "Layers (2):",
        "diff_id sha256:",
        "characters omitted. Pass --show-contents",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    let full = run_ok(kiln().args(["analyze", "--show-contents"]).arg(&img));
    let full = String::from_utf8_lossy(&full.stdout);
    assert!(!full.contains("characters omitted"));
    assert!(full.contains("\"buildkit/rewritten-timestamp\": \"1677619260\""));

    let v = analyze(&img);
    let titles: Vec<&str> = v["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Index", "Manifest 1", "Config"]);
    assert_eq!(v["imageDigest"], expected_digest("add-tar", "oci"));
    assert_eq!(v["layers"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["layers"][0]["diffId"], v["config"]["rootfs"]["diff_ids"][0],
        "layers carry their diff_ids"
    );
    assert_eq!(v["documents"][2]["contents"]["architecture"], "amd64");
}

fn put(blobs: &Path, v: &Value) -> (Digest, usize) {
    let b = serde_json::to_vec(v).unwrap();
    let d = Digest::of(&b);
    std::fs::write(blobs.join(d.hex()), &b).unwrap();
    (d, b.len())
}

/// An OCI layout at `dir` whose index.json lists `copies` times an index of an amd64 and
/// an arm64 manifest: (that index's digest, the platform manifests' descriptors).
fn multi_layout(dir: &Path, copies: usize) -> (Digest, Vec<Value>) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let layer = tar(&[E::file("hello", b"hi\n", 0o644, 5)]);
    let ld = Digest::of(&layer);
    std::fs::write(blobs.join(ld.hex()), &layer).unwrap();
    let mut platform_manifests = Vec::new();
    for arch in ["amd64", "arm64"] {
        let mut cfg = config(&[ld], "2020-01-01T00:00:00Z", &[]);
        cfg["architecture"] = json!(arch);
        let (cd, cs) = put(&blobs, &cfg);
        let (md, ms) = put(
            &blobs,
            &json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cs},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": layer.len()}],
            }),
        );
        platform_manifests.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md.to_string(), "size": ms,
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let (id, is) = put(
        &blobs,
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": platform_manifests}),
    );
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": vec![
            json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": id.to_string(), "size": is});
            copies
        ]}))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    (id, platform_manifests)
}

/// `kiln analyze --platform linux/arm64 ARGS... DIR`, which must succeed: its stdout.
fn analyze_arm64(args: &[&str], dir: &Path) -> Vec<u8> {
    run_ok(
        kiln()
            .args(["analyze", "--platform", "linux/arm64"])
            .args(args)
            .arg(dir),
    )
    .stdout
}

#[test]
fn multi_platform_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("multi");
    let (id, platform_manifests) = multi_layout(&dir, 1);

    let out = analyze_arm64(&["--expected-image-digest", &id.to_string()], &dir);
    let text = String::from_utf8_lossy(&out);
    for want in [
        format!("Image digest: {id}"),
        "The image has an index and 3 manifest(s).".to_string(),
        "Manifest 1 (index) (blobs/sha256/".to_string(),
        "Manifest 2 (blobs/sha256/".to_string(),
        "  Platform: linux/arm64".to_string(),
        "✓ Image digest matches".to_string(),
    ] {
        assert!(text.contains(&want), "{want:?} in\n{text}");
    }
    let v: Value = serde_json::from_slice(&analyze_arm64(&["--json"], &dir)).unwrap();
    assert_eq!(v["platform"], "linux/arm64");
    assert_eq!(v["config"]["architecture"], "arm64");
    assert_eq!(v["manifestDigest"], platform_manifests[1]["digest"]);
    // The platform's manifest digest is accepted too.
    let platform_digest = platform_manifests[1]["digest"].as_str().unwrap();
    analyze_arm64(&["--expected-image-digest", platform_digest], &dir);
}

#[test]
fn manifests_listed_again_are_shown_once() {
    // The index listed three times: its contents and what it lists are shown the first
    // time only (nested indexes listing one another many times would otherwise multiply).
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("multi");
    let (id, _) = multi_layout(&dir, 3);
    let out = analyze_arm64(&[], &dir);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("The image has an index and 5 manifest(s)."),
        "{text}"
    );
    for n in [4, 5] {
        let want = format!(
            "Manifest {n} (index) (blobs/sha256/{}):\n  Digest: {id}\n  Media type: \
             application/vnd.oci.image.index.v1+json\n  Platform: -\n  Contents: the same as \
             manifest 1\n",
            id.hex()
        );
        assert!(text.contains(&want), "{want:?} in\n{text}");
    }
    assert!(!text.contains("Manifest 6"), "{text}");
    let v: Value = serde_json::from_slice(&analyze_arm64(&["--json"], &dir)).unwrap();
    let docs = v["documents"].as_array().unwrap();
    let same: Vec<&Value> = docs.iter().map(|d| &d["sameAs"]).collect();
    // Index, manifests 1-5, config.
    assert_eq!(
        same,
        [
            &Value::Null,
            &Value::Null,
            &Value::Null,
            &Value::Null,
            &json!(1),
            &json!(1),
            &Value::Null
        ]
    );
    assert_eq!(docs[4]["contents"], Value::Null);
}

#[test]
fn docker_save_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tar(&[E::file("a", b"a", 0o644, 1)]);
    let p = tmp.path().join("saved.tar");
    docker_save(
        &p,
        std::slice::from_ref(&t),
        &config(&[Digest::of(&t)], "2020-01-01T00:00:00Z", &[]),
    );
    let r = run_ok(kiln().arg("analyze").arg(&p));
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains("The image has no index and 1 manifest(s)."),
        "{text}"
    );
    assert!(
        text.contains("Manifest (made from manifest.json)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("diff_id {}", Digest::of(&t))),
        "{text}"
    );
}
