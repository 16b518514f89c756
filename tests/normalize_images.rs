//! Makes small test images in the shapes other tools write (OCI layouts, `docker save`
//! archives; gzip at any level or none; tar headers of any dialect), and reads results.
//! Included by the normalize/diff/analyze tests with `#[path]`; on its own it has no tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use kiln_digest::Digest;
use kiln_layer::tar::{typeflag, Header, TarReader, TarWriter, Timestamp};
use serde_json::{json, Value};

pub fn kiln() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run kiln")
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "command failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A tar entry: header and data.
#[derive(Clone)]
pub struct E {
    pub h: Header,
    pub data: Vec<u8>,
}

impl E {
    pub fn file(name: &str, data: &[u8], mode: i64, mtime: i64) -> E {
        E {
            h: Header {
                typeflag: typeflag::REG,
                name: name.as_bytes().to_vec(),
                size: data.len() as i64,
                mode,
                mtime: Some(Timestamp::from_secs(mtime)),
                ..Header::default()
            },
            data: data.to_vec(),
        }
    }

    pub fn dir(name: &str, mode: i64, mtime: i64) -> E {
        E {
            h: Header {
                typeflag: typeflag::DIR,
                name: name.as_bytes().to_vec(),
                mode,
                mtime: Some(Timestamp::from_secs(mtime)),
                ..Header::default()
            },
            data: Vec::new(),
        }
    }

    pub fn link(flag: u8, name: &str, target: &str, mtime: i64) -> E {
        E {
            h: Header {
                typeflag: flag,
                name: name.as_bytes().to_vec(),
                linkname: target.as_bytes().to_vec(),
                mode: 0o777,
                mtime: Some(Timestamp::from_secs(mtime)),
                ..Header::default()
            },
            data: Vec::new(),
        }
    }

    pub fn owner(mut self, uid: i64, gid: i64) -> E {
        self.h.uid = uid;
        self.h.gid = gid;
        self
    }
}

pub fn tar(entries: &[E]) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for e in entries {
        w.write_header(&e.h).unwrap();
        w.write_data(&e.data).unwrap();
    }
    w.finish().unwrap()
}

pub fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A config with these diff_ids and times.
pub fn config(diff_ids: &[Digest], created: &str, env: &[&str]) -> Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {"Env": env, "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "history": diff_ids.iter().map(|_| json!({"created": created, "created_by": "test"})).collect::<Vec<_>>(),
    })
}

fn put(blobs: &Path, bytes: &[u8]) -> Digest {
    let d = Digest::of(bytes);
    std::fs::write(blobs.join(d.hex()), bytes).unwrap();
    d
}

/// An OCI layout: layer blobs as given (media type by whether they are gzip).
pub fn oci_layout(dir: &Path, layers: &[Vec<u8>], config: &Value) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let cfg = serde_json::to_vec(config).unwrap();
    let cd = put(&blobs, &cfg);
    let layer_descs: Vec<Value> = layers
        .iter()
        .map(|b| {
            let mt = if b.starts_with(&[0x1f, 0x8b]) {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            } else {
                "application/vnd.oci.image.layer.v1.tar"
            };
            json!({"mediaType": mt, "digest": put(&blobs, b).to_string(), "size": b.len()})
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cfg.len()},
        "layers": layer_descs,
    }))
    .unwrap();
    let md = put(&blobs, &manifest);
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": manifest.len()}
        ]}))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// `docker save`'s older layout: `<id>/layer.tar` members named in manifest.json.
pub fn docker_save(path: &Path, layer_tars: &[Vec<u8>], config: &Value) {
    let mut w = TarWriter::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        w.write_header(&Header {
            typeflag: typeflag::REG,
            name: name.as_bytes().to_vec(),
            size: data.len() as i64,
            mode: 0o644,
            mtime: Some(Timestamp::from_secs(1_234_567_890)),
            ..Header::default()
        })
        .unwrap();
        w.write_data(data).unwrap();
    };
    let cfg = serde_json::to_vec_pretty(config).unwrap();
    let cfg_name = format!("{}.json", Digest::of(&cfg).hex());
    add(&cfg_name, &cfg);
    let mut names = Vec::new();
    for t in layer_tars {
        let n = format!("{}/layer.tar", Digest::of(t).hex());
        add(&n, t);
        names.push(n);
    }
    let mj = serde_json::to_vec(
        &json!([{"Config": cfg_name, "RepoTags": ["test:latest"], "Layers": names}]),
    )
    .unwrap();
    add("manifest.json", &mj);
    std::fs::write(path, w.finish().unwrap()).unwrap();
}

/// `kiln analyze --json` of an image.
pub fn analyze(image: &Path) -> Value {
    let out = run_ok(kiln().args(["analyze", "--json"]).arg(image));
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn image_digest(image: &Path) -> String {
    analyze(image)["imageDigest"].as_str().unwrap().to_string()
}

/// Normalizes `input` into `output` with `args`; returns the image digest.
pub fn normalize(input: &Path, output: &Path, args: &[&str]) -> String {
    run_ok(
        kiln()
            .args(["normalize", "--progress", "quiet", "-o"])
            .arg(output)
            .args(args)
            .arg(input),
    );
    image_digest(output)
}

/// An entry as (name, type, mode, uid:gid, mtime, linkname, data).
pub type Listed = (String, char, i64, String, i64, String, Vec<u8>);

/// The entries of a layer tar.
pub fn entries(layer_tar: &[u8]) -> Vec<Listed> {
    let mut r = TarReader::new(layer_tar);
    let mut out = Vec::new();
    while let Some(h) = r.next_header().unwrap() {
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut data).unwrap();
        out.push((
            String::from_utf8_lossy(&h.name).into_owned(),
            h.typeflag as char,
            h.mode,
            format!("{}:{}", h.uid, h.gid),
            h.mtime.map_or(0, |t| t.secs),
            String::from_utf8_lossy(&h.linkname).into_owned(),
            data,
        ));
    }
    out
}

/// The uncompressed layer tars of an OCI layout directory, in manifest order.
pub fn layout_layers(dir: &Path) -> Vec<Vec<u8>> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let md = index["manifests"][0]["digest"].as_str().unwrap();
    let blob = |d: &str| {
        std::fs::read(
            dir.join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let m: Value = serde_json::from_slice(&blob(md)).unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let b = blob(l["digest"].as_str().unwrap());
            if b.starts_with(&[0x1f, 0x8b]) {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&b[..]), &mut out)
                    .unwrap();
                out
            } else {
                b
            }
        })
        .collect()
}
