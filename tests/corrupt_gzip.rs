//! A layer whose gzip stream is truncated or corrupted — in an image whose manifest is
//! otherwise consistent (the broken blob is what the manifest names) — is refused with exit 2
//! naming the blob, by analyze --verify-layers, normalize and build; never a panic.

mod common;

use std::path::Path;

use common::*;

const LAYER: &str = "bd12cd9dfdc46f65a573432ffaf203725a958eac3cd08f3c73a31974a58ed607";

/// A copy of the busybox layout whose layer blob is replaced by `blob`, with the manifest,
/// and index rewritten so that every digest and size matches the new blob.
fn layout_with_layer(dir: &Path, blob: &[u8]) {
    let src = repo().join("testdata/base/busybox");
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::copy(src.join("oci-layout"), dir.join("oci-layout")).unwrap();
    let new_hex = sha256_hex(blob);
    std::fs::write(dir.join("blobs/sha256").join(&new_hex), blob).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("blobs/sha256").join(mdigest)).unwrap())
            .unwrap();
    let cfg = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    std::fs::copy(
        src.join("blobs/sha256").join(&cfg),
        dir.join("blobs/sha256").join(&cfg),
    )
    .unwrap();
    manifest["layers"][0]["digest"] = format!("sha256:{new_hex}").into();
    manifest["layers"][0]["size"] = blob.len().into();
    let mbytes = serde_json::to_vec(&manifest).unwrap();
    let mhex = sha256_hex(&mbytes);
    std::fs::write(dir.join("blobs/sha256").join(&mhex), &mbytes).unwrap();
    let mut index = index;
    index["manifests"][0]["digest"] = format!("sha256:{mhex}").into();
    index["manifests"][0]["size"] = mbytes.len().into();
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn truncated_and_corrupted_gzip_layers_exit_2_naming_the_blob() {
    let good = std::fs::read(
        repo()
            .join("testdata/base/busybox/blobs/sha256")
            .join(LAYER),
    )
    .unwrap();
    let mut corrupted = good.clone();
    corrupted[good.len() / 2] ^= 0x55;
    corrupted[good.len() / 2 + 1] ^= 0xaa;
    let truncated = good[..good.len() / 3].to_vec();
    for (name, blob) in [("truncated", truncated), ("corrupted", corrupted)] {
        let tmp = tempfile::tempdir().unwrap();
        let layout = tmp.path().join("layout");
        layout_with_layer(&layout, &blob);
        let hex = sha256_hex(&blob);
        let out = tmp.path().join("out.tar");
        let ctx = tmp.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY Dockerfile /\n").unwrap();
        let runs = [
            kiln()
                .args(["analyze", "--verify-layers"])
                .arg(&layout)
                .output()
                .unwrap(),
            kiln()
                .args(["normalize", "--progress", "quiet"])
                .arg(&layout)
                .arg("-o")
                .arg(&out)
                .output()
                .unwrap(),
            kiln()
                .args(["build", "--progress", "quiet", "--build-context"])
                .arg(format!("busybox=oci-layout://{}", layout.display()))
                .arg("-o")
                .arg(&out)
                .arg(&ctx)
                .output()
                .unwrap(),
        ];
        for r in runs {
            let err = String::from_utf8_lossy(&r.stderr);
            assert_eq!(r.status.code(), Some(2), "{name}: {err}");
            assert!(
                err.contains(&hex[..12]),
                "{name}: the message names the blob: {err}"
            );
            assert!(!err.contains("panicked"), "{name}: {err}");
        }
        assert!(!out.exists(), "{name}: no output left behind");
    }
}
