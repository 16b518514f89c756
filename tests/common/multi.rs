//! A multi-platform OCI layout made of kiln-built images (linux/amd64 and linux/arm64 of one
//! small Dockerfile) under an image index, laid out as `docker buildx` and `skopeo copy --all`
//! do: index.json names the index blob. Included with `#[path]` by the tests that need it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

pub const PLATFORMS: [&str; 2] = ["linux/amd64", "linux/arm64"];

fn copy_blobs(from: &Path, to: &Path) {
    let dest = to.join("blobs/sha256");
    std::fs::create_dir_all(&dest).unwrap();
    for e in std::fs::read_dir(from.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dest.join(e.file_name())).unwrap();
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// Builds the layout in `dir/multi`; returns its path, the index digest and the manifest
/// descriptors of the platforms (in [`PLATFORMS`] order). With `attestation`, the index also
/// lists an attestation manifest as buildx writes it (a copy of the first image's manifest
/// under buildx's annotations).
pub fn layout(dir: &Path, attestation: bool) -> (PathBuf, String, Vec<Value>) {
    let ctx = dir.join("multi-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY a.txt /\n").unwrap();
    std::fs::write(ctx.join("a.txt"), "multi\n").unwrap();
    let multi = dir.join("multi");
    let mut entries = Vec::new();
    for platform in PLATFORMS {
        let out = dir.join(platform.replace('/', "-"));
        let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["build", "--progress", "quiet", "--sde", "1700000000"])
            .args(["--platform", platform, "--format", "oci-dir", "-o"])
            .arg(&out)
            .arg(&ctx)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        copy_blobs(&out, &multi);
        let index: Value =
            serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
        let mut m = index["manifests"][0].clone();
        m.as_object_mut().unwrap().remove("annotations");
        entries.push(m);
    }
    let mut listed = entries.clone();
    if attestation {
        let mut a = entries[0].clone();
        a["platform"] = json!({"architecture": "unknown", "os": "unknown"});
        a["annotations"] = json!({
            "vnd.docker.reference.digest": entries[0]["digest"],
            "vnd.docker.reference.type": "attestation-manifest",
        });
        listed.push(a);
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": listed,
    }))
    .unwrap();
    let digest = sha256(&index);
    std::fs::write(multi.join("blobs/sha256").join(&digest[7..]), &index).unwrap();
    std::fs::write(
        multi.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest, "size": index.len()}]}))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        multi.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    (multi, digest, entries)
}
