//! `kiln crosscheck` against BuildKit v0.19.0's own images (the reference tarballs kept in
//! testdata/fixtures: add-tar, multistage, scratch-meta, xattr), and against a copy of one
//! with a file changed inside a layer.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use kiln_digest::Digest;
use kiln_layer::tar::{Header, TarReader, TarWriter};

/// The fixtures whose BuildKit tarballs are in testdata.
const CASES: &[&str] = &["add-tar", "multistage", "scratch-meta", "xattr"];

fn skip_unless_root() -> bool {
    if !is_root() {
        eprintln!("SKIPPED: fixture contexts need root (chown to other uids)");
        return true;
    }
    false
}

fn crosscheck(image: &Path, case: &str, ctx: &Path, extra: &[&str]) -> Output {
    kiln()
        .args(["crosscheck", "--progress", "quiet"])
        .args(extra)
        .arg(image)
        .arg("-f")
        .arg(fixture_dir(case).join("Dockerfile"))
        .arg(ctx)
        .env_remove("SOURCE_DATE_EPOCH")
        // A private cache: a root-owned ~/.cache/kiln would get in other tests' way.
        .env("KILN_CACHE_DIR", ctx.with_extension("cache"))
        .output()
        .unwrap()
}

fn layer_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("layer ")).collect()
}

#[test]
fn uncompressed_references_are_identical_layer_by_layer() {
    if skip_unless_root() {
        return;
    }
    for case in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        make_context(case, &ctx);
        let r = crosscheck(
            &fixture_dir(case).join("docker-uncompressed.tar"),
            case,
            &ctx,
            &[],
        );
        let out = String::from_utf8_lossy(&r.stdout);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(0), "{case}:\n{out}\n{err}");
        let e = &expected(case)["outputs"]["docker-uncompressed"];
        let layers = layer_lines(&out);
        let want = e["layers"].as_array().unwrap();
        assert_eq!(layers.len(), want.len(), "{case}: {out}");
        for (i, (line, l)) in layers.iter().zip(want).enumerate() {
            assert_eq!(
                *line,
                format!(
                    "layer {}/{}: identical  {}",
                    i + 1,
                    want.len(),
                    l["digest"].as_str().unwrap()
                ),
                "{case}"
            );
        }
        let digest = e["manifest_digest"].as_str().unwrap();
        assert!(
            out.ends_with(&format!("verdict: identical: kiln reproduces {digest}\n")),
            "{case}: {out}"
        );
        // The epoch came from the image, since none was given.
        assert!(
            err.contains(
                "kiln: SOURCE_DATE_EPOCH 1677619260 (2023-02-28T21:21:00Z), from the BuildKit \
                 image's org.opencontainers.image.created annotation"
            ),
            "{case}: {err}"
        );
    }
}

#[test]
fn gzip_references_are_reproduced_layer_for_layer() {
    if skip_unless_root() {
        return;
    }
    // kiln's gzip is Go's byte for byte (goflate): every layer blob, the config and the
    // image digest must be BuildKit's, with exit code 0.
    for case in CASES {
        for variant in ["docker", "oci"] {
            let tmp = tempfile::tempdir().unwrap();
            let ctx = tmp.path().join("ctx");
            make_context(case, &ctx);
            let e = &expected(case)["outputs"][variant];
            let r = crosscheck(
                &fixture_dir(case).join(format!("{variant}.tar")),
                case,
                &ctx,
                &["--sde", "1677619260"],
            );
            let out = String::from_utf8_lossy(&r.stdout);
            let want = e["layers"].as_array().unwrap();
            let layers = layer_lines(&out);
            assert_eq!(layers.len(), want.len(), "{case} {variant}: {out}");
            for (line, l) in layers.iter().zip(want) {
                let digest = l["digest"].as_str().unwrap();
                let diff_id = l["diff_id"].as_str().unwrap();
                assert!(
                    line.ends_with(&format!(": identical  {digest}")),
                    "{case} {variant}: {line} (diff_id {diff_id})"
                );
            }
            assert!(
                out.contains(&format!(
                    "config: identical  {}",
                    e["config_digest"].as_str().unwrap()
                )),
                "{case} {variant}: {out}"
            );
            let digest = e["manifest_digest"].as_str().unwrap();
            assert_eq!(r.status.code(), Some(0), "{case} {variant}: {out}");
            assert!(out.contains(&format!("verdict: identical: kiln reproduces {digest}")));
        }
    }
}

/// A copy of an image tarball whose layer `layer` has the first byte of `file` flipped,
/// with blob names, diff_id, config, manifest and indexes rewritten to match, so that it
/// is a valid image that differs from BuildKit's in exactly that file.
fn with_changed_file(src: &Path, dst: &Path, layer: usize, file: &str) {
    let mut members: Vec<(Header, Vec<u8>)> = Vec::new();
    let mut tr = TarReader::new(std::fs::File::open(src).unwrap());
    while let Some(h) = tr.next_header().unwrap() {
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut tr, &mut data).unwrap();
        members.push((h, data));
    }
    let find = |members: &[(Header, Vec<u8>)], name: &str| {
        members
            .iter()
            .position(|(h, _)| h.name == name.as_bytes())
            .unwrap_or_else(|| panic!("{name} not in {}", src.display()))
    };
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
    let index_at = find(&members, "index.json");
    let mut index = json(&members[index_at].1);
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest_at = find(&members, &blob(&manifest_digest));
    let mut manifest = json(&members[manifest_at].1);
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let config_at = find(&members, &blob(&config_digest));
    let mut config = json(&members[config_at].1);
    let layer_digest = manifest["layers"][layer]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let layer_at = find(&members, &blob(&layer_digest));

    // Patch the layer's tar stream.
    let raw = members[layer_at].1.clone();
    let gzip = raw.starts_with(&[0x1f, 0x8b]);
    let mut tar = if gzip {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut v).unwrap();
        v
    } else {
        raw
    };
    let mut lr = TarReader::new(&tar[..]);
    let mut at = None;
    while let Some(h) = lr.next_header().unwrap() {
        if h.name == file.as_bytes() {
            assert!(h.size > 0, "{file} is empty");
            at = Some(lr.offset() as usize);
            break;
        }
    }
    let at = at.unwrap_or_else(|| panic!("{file} not in layer {layer}"));
    tar[at] ^= 0x20;
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    let new_blob = if gzip {
        use std::io::Write;
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        g.write_all(&tar).unwrap();
        g.finish().unwrap()
    } else {
        tar
    };
    let new_digest = format!("sha256:{}", sha256_hex(&new_blob));
    config["rootfs"]["diff_ids"][layer] = diff_id.into();
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let new_config = format!("sha256:{}", sha256_hex(&config_bytes));
    manifest["layers"][layer]["digest"] = new_digest.clone().into();
    manifest["layers"][layer]["size"] = new_blob.len().into();
    manifest["config"]["digest"] = new_config.clone().into();
    manifest["config"]["size"] = config_bytes.len().into();
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let new_manifest = format!("sha256:{}", sha256_hex(&manifest_bytes));
    index["manifests"][0]["digest"] = new_manifest.clone().into();
    index["manifests"][0]["size"] = manifest_bytes.len().into();

    let mut replace = |at: usize, name: String, data: Vec<u8>| {
        members[at].0.name = name.into_bytes();
        members[at].1 = data;
    };
    replace(layer_at, blob(&new_digest), new_blob);
    replace(config_at, blob(&new_config), config_bytes);
    replace(manifest_at, blob(&new_manifest), manifest_bytes);
    replace(
        index_at,
        "index.json".into(),
        serde_json::to_vec(&index).unwrap(),
    );
    if let Some(mj_at) = members.iter().position(|(h, _)| h.name == b"manifest.json") {
        let mut mj = json(&members[mj_at].1);
        mj[0]["Config"] = blob(&new_config).into();
        mj[0]["Layers"][layer] = blob(&new_digest).into();
        members[mj_at].1 = serde_json::to_vec(&mj).unwrap();
    }
    let mut tw = TarWriter::new(std::fs::File::create(dst).unwrap());
    for (mut h, data) in members {
        h.size = data.len() as i64;
        h.pax_records.clear();
        tw.write_header(&h).unwrap();
        tw.write_data(&data).unwrap();
    }
    tw.finish().unwrap();
    // The copy is a valid image with another digest.
    let d: Digest = new_manifest.parse().unwrap();
    let a = run_ok(kiln().args(["analyze", "--json"]).arg(dst));
    let a: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(a["imageDigest"], d.to_string());
}

#[test]
fn a_changed_file_inside_a_layer_is_named() {
    if skip_unless_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    make_context("multistage", &ctx);
    for variant in ["docker-uncompressed", "docker"] {
        let changed = tmp.path().join(format!("{variant}-changed.tar"));
        with_changed_file(
            &fixture_dir("multistage").join(format!("{variant}.tar")),
            &changed,
            1,
            "out-all/b.txt",
        );
        let r = crosscheck(&changed, "multistage", &ctx, &[]);
        let out = String::from_utf8_lossy(&r.stdout);
        assert_eq!(
            r.status.code(),
            Some(1),
            "{variant}: {out}\n{}",
            String::from_utf8_lossy(&r.stderr)
        );
        let e = &expected("multistage")["outputs"][variant];
        let lines: Vec<&str> = out.lines().collect();
        let first = lines
            .iter()
            .position(|l| l.starts_with("layer 1/2"))
            .unwrap();
        // Layer 1 is untouched.
        assert!(
            lines[first].contains(e["layers"][0]["diff_id"].as_str().unwrap())
                || lines[first].contains(e["layers"][0]["digest"].as_str().unwrap()),
            "{variant}: {out}"
        );
        assert!(!lines[first].contains("differs"), "{variant}: {out}");
        // Layer 2 differs in exactly that file, by content only.
        let ours = e["layers"][1]["diff_id"].as_str().unwrap();
        assert!(
            lines[first + 1].starts_with("layer 2/2: differs: diff_id sha256:")
                && lines[first + 1].ends_with(&format!(" (BuildKit) vs {ours} (kiln)")),
            "{variant}: {out}"
        );
        assert!(
            lines[first + 2].starts_with("    out-all/b.txt: content sha256:"),
            "{variant}: {out}"
        );
        assert!(!lines[first + 2].contains("size"), "{variant}: {out}");
        assert!(!lines[first + 3].starts_with("    "), "one entry: {out}");
        assert!(
            out.contains("config: differs: rootfs.diff_ids"),
            "{variant}: {out}"
        );
        assert!(
            out.contains("verdict: differs: image sha256:"),
            "{variant}: {out}"
        );
    }
}

#[test]
fn a_build_kiln_cannot_do_natively_cannot_be_crosschecked() {
    let r = kiln()
        .args(["crosscheck", "--progress", "quiet"])
        .arg(fixture_dir("scratch-meta").join("docker.tar"))
        .arg(repo().join("testdata/fallback/cache-mount"))
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "error: the native rebuild failed: 1 step needs BuildKit, and a cross-check only \
             rebuilds natively:\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("Dockerfile:2: RUN --mount=type=cache"),
        "{err}"
    );
}

#[test]
fn a_missing_or_broken_image_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let r = kiln()
        .args(["crosscheck"])
        .arg(tmp.path().join("nope.tar"))
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("nope.tar"));
    let junk = tmp.path().join("junk.tar");
    std::fs::write(&junk, b"not a tarball at all").unwrap();
    let r = kiln()
        .args(["crosscheck"])
        .arg(&junk)
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("junk.tar"));
}
