//! Hostile images (testdata/malicious, see its README): `kiln normalize` exits 2 with a
//! message naming the layer and the entry, and writes nothing anywhere; `kiln diff`
//! refuses them too.

#[path = "normalize_images.rs"]
mod images;

use std::path::{Path, PathBuf};

use images::*;

const CASES: &[(&str, &str)] = &[
    ("dotdot", "entry \"../../../../tmp/kiln-escape-dotdot\": contains a \"..\" component"),
    ("absolute", "entry \"/tmp/kiln-escape-absolute\": is an absolute path"),
    ("symlink-escape", "entry \"etc/evil\": symlink to \"../../../../tmp\" leads out of the image root"),
    (
        "symlink-write-through",
        "entry \"escape/kiln-escape-through\": is inside \"escape\", which is a symlink in this layer",
    ),
    ("hardlink-escape", "entry \"passwd\": hard link target \"../../../etc/passwd\" contains a \"..\" component"),
    ("hardlink-absolute", "entry \"shadow\": hard link target \"/etc/shadow\" is an absolute path"),
    ("device", "entry \"dev/kmsg\": is a character device node (1:11)"),
    (
        "huge-size",
        "entry \"big\": the header says 1099511627776 bytes of data, but the layer ends after 1000",
    ),
    ("duplicate", "entry \"etc/passwd\": appears twice in the layer"),
    ("digest-mismatch", "(corrupt or tampered)"),
];

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/malicious")
        .join(format!("{name}.tar"))
}

fn escapes() -> Vec<PathBuf> {
    [
        "kiln-escape-dotdot",
        "kiln-escape-absolute",
        "kiln-escape-through",
    ]
    .iter()
    .map(|n| std::env::temp_dir().join(n))
    .collect()
}

#[test]
fn normalize_refuses_each_hostile_image_and_writes_nothing() {
    for (name, message) in CASES {
        for format in ["docker", "oci-dir"] {
            let tmp = tempfile::tempdir().unwrap();
            let out = tmp.path().join("out");
            let r = run(kiln()
                .args(["normalize", "--progress", "quiet", "--format", format, "-o"])
                .arg(&out)
                .arg(case(name)));
            let stderr = String::from_utf8_lossy(&r.stderr);
            assert_eq!(r.status.code(), Some(2), "{name}: {stderr}");
            assert!(
                stderr.contains(message),
                "{name}: expected {message:?} in {stderr}"
            );
            assert!(
                stderr.contains(&format!("{name}.tar: layer 1 (sha256:")),
                "{name}: names the image and layer: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
            let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
            assert!(left.is_empty(), "{name}: left behind {left:?}");
        }
    }
    for p in escapes() {
        assert!(!p.exists(), "{} was written", p.display());
    }
}

#[test]
fn device_nodes_pass_when_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run_ok(
        kiln()
            .args([
                "normalize",
                "--progress",
                "quiet",
                "--allow-device-nodes",
                "--format",
                "oci-dir",
            ])
            .args(["--compression", "uncompressed", "-o"])
            .arg(&out)
            .arg(case("device")),
    );
    let e = entries(&layout_layers(&out)[0]);
    assert_eq!((e[0].0.as_str(), e[0].1), ("dev/kmsg", '3'));
}

#[test]
fn diff_refuses_hostile_layers() {
    let clean = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fixtures/add-tar/oci.tar");
    for name in [
        "dotdot",
        "absolute",
        "hardlink-escape",
        "huge-size",
        "digest-mismatch",
    ] {
        let r = run(kiln().arg("diff").arg(&clean).arg(case(name)));
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains("layer 1 (sha256:"), "{name}: {stderr}");
    }
}
