//! `kiln diff`: finds exactly the planted differences, nothing for equal images, and with
//! --semantic ignores what does not change the root file system (timestamps, layer
//! boundaries, compression, hard link direction).

#[path = "normalize_images.rs"]
mod images;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use images::*;
use kiln_digest::Digest;
use kiln_layer::tar::typeflag;
use serde_json::Value;

/// Every context time is later than this, so the build clamps them all to it.
const SDE: &str = "1000000000";

struct Ctx {
    config: &'static str,
    run_mode: u32,
    extra: bool,
    env: &'static str,
    /// An mtime (older than SDE, so kept) for data.txt.
    data_mtime: Option<u64>,
}

const A: Ctx = Ctx {
    config: "mode=v1\n",
    run_mode: 0o755,
    extra: false,
    env: "one",
    data_mtime: None,
};

fn context(dir: &Path, c: &Ctx) {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("config.txt"), c.config).unwrap();
    std::fs::write(app.join("run.sh"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(
        app.join("run.sh"),
        std::fs::Permissions::from_mode(c.run_mode),
    )
    .unwrap();
    std::fs::write(app.join("data.txt"), "data\n").unwrap();
    if c.extra {
        std::fs::write(app.join("new.txt"), "new\n").unwrap();
    }
    if let Some(t) = c.data_mtime {
        let f = std::fs::File::options()
            .write(true)
            .open(app.join("data.txt"))
            .unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(t))
            .unwrap();
    }
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY app /app/\nENV MODE={}\nCMD [\"/app/run.sh\"]\n",
            c.env
        ),
    )
    .unwrap();
}

fn build(root: &Path, name: &str, c: &Ctx) -> std::path::PathBuf {
    let ctx = root.join(format!("ctx-{name}"));
    context(&ctx, c);
    let out = root.join(format!("{name}.tar"));
    run_ok(
        kiln()
            .args(["build", "--progress", "quiet", "--sde", SDE, "-o"])
            .arg(&out)
            .arg(&ctx),
    );
    out
}

fn diff_json(a: &Path, b: &Path, extra: &[&str]) -> (i32, Value) {
    let r = run(kiln().arg("diff").arg("--json").args(extra).arg(a).arg(b));
    let v: Value = serde_json::from_slice(&r.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        )
    });
    (r.status.code().unwrap(), v)
}

/// (type, name, field) of each row.
fn rows(v: &Value) -> Vec<(String, String, String)> {
    v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["type"].as_str().unwrap().to_string(),
                d["name"].as_str().unwrap().to_string(),
                d["field"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn row(t: &str, n: &str, f: &str) -> (String, String, String) {
    (t.into(), n.into(), f.into())
}

#[test]
fn finds_exactly_the_planted_differences() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let a = build(d, "a", &A);
    let b = build(
        d,
        "b",
        &Ctx {
            config: "mode=v2\n",
            run_mode: 0o700,
            extra: true,
            env: "two",
            ..A
        },
    );

    // Semantic: the four planted differences and nothing else.
    let (code, v) = diff_json(&a, &b, &["--semantic"]);
    assert_eq!(code, 1);
    assert_eq!(v["equal"], false);
    assert_eq!(
        rows(&v),
        [
            row("Config", "config.Env[1]", ""),
            row("File", "app/config.txt", "content"),
            row("File", "app/new.txt", ""),
            row("File", "app/run.sh", "mode"),
        ]
    );
    let d0 = &v["differences"];
    assert_eq!(d0[0]["input0"], "MODE=one");
    assert_eq!(d0[0]["input1"], "MODE=two");
    assert_eq!(d0[1]["input0"], format!("{}", Digest::of(b"mode=v1\n")));
    assert_eq!(d0[1]["input1"], format!("{}", Digest::of(b"mode=v2\n")));
    assert_eq!(d0[2]["input0"], Value::Null);
    assert!(d0[2]["input1"]
        .as_str()
        .unwrap()
        .starts_with("file 0644 0:0 sha256:"));
    assert_eq!(
        (d0[3]["input0"].as_str(), d0[3]["input1"].as_str()),
        (Some("0755"), Some("0700"))
    );

    // Strict: the same file rows (in their layer), plus what follows from them: digests,
    // diff_ids, the history line of the ENV.
    let (code, v) = diff_json(&a, &b, &[]);
    assert_eq!(code, 1);
    let r = rows(&v);
    let files: Vec<_> = r.iter().filter(|x| x.0 == "File").cloned().collect();
    assert_eq!(
        files,
        [
            row("File", "layers[0]/app/config.txt", "content"),
            row("File", "layers[0]/app/new.txt", ""),
            row("File", "layers[0]/app/run.sh", "mode"),
        ]
    );
    for want in [
        row("Manifest", "digest", ""),
        row("Config", "config.Env[1]", ""),
        row("Config", "rootfs.diff_ids[0]", ""),
        row("Layer", "layers[0]", "diff_id"),
    ] {
        assert!(r.contains(&want), "{want:?} in {r:?}");
    }
    assert!(r
        .iter()
        .any(|x| x.0 == "Config" && x.1.starts_with("history[") && x.1.ends_with("created_by")));

    // The table: header, then one row per difference.
    let t = run(kiln().args(["diff", "--semantic"]).arg(&a).arg(&b));
    let text = String::from_utf8_lossy(&t.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with("TYPE") && lines[0].contains("NAME") && lines[0].contains("INPUT-0")
    );
    assert!(
        lines[4].starts_with("File")
            && lines[4].contains("app/run.sh")
            && lines[4].contains("mode=0755")
    );
}

#[test]
fn equal_images_give_no_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let a = build(tmp.path(), "a", &A);
    let a2 = build(tmp.path(), "a2", &A);
    for extra in [&[][..], &["--semantic"][..]] {
        let r = run(kiln().arg("diff").args(extra).arg(&a).arg(&a2));
        assert_eq!(r.status.code(), Some(0), "{extra:?}");
        assert!(
            r.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&r.stdout)
        );
    }
    let (code, v) = diff_json(&a, &a2, &[]);
    assert_eq!((code, &v["equal"]), (0, &Value::Bool(true)));
    assert_eq!(v["differences"].as_array().unwrap().len(), 0);
}

#[test]
fn timestamps_only_differ_strictly() {
    let tmp = tempfile::tempdir().unwrap();
    let a = build(
        tmp.path(),
        "a",
        &Ctx {
            data_mtime: Some(900_000_000),
            ..A
        },
    );
    let b = build(
        tmp.path(),
        "b",
        &Ctx {
            data_mtime: Some(900_000_100),
            ..A
        },
    );
    let (code, v) = diff_json(&a, &b, &[]);
    assert_eq!(code, 1);
    let files: Vec<_> = rows(&v).into_iter().filter(|x| x.0 == "File").collect();
    assert_eq!(files, [row("File", "layers[0]/app/data.txt", "mtime")]);
    let d = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "File")
        .unwrap();
    assert_eq!(d["input0"], "1998-07-09T16:00:00Z");
    let (code, v) = diff_json(&a, &b, &["--semantic"]);
    assert_eq!(code, 0, "{v}");
}

#[test]
fn layer_boundaries_compression_and_link_direction_are_not_semantic() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let file = |n: &str, data: &[u8]| E::file(n, data, 0o644, 5);
    // One layer: a, hard link b -> a, c.
    let one = tar(&[
        file("a", b"x"),
        E::link(typeflag::LINK, "b", "a", 5),
        file("c", b"c"),
    ]);
    oci_layout(
        &d.join("one"),
        &[gzip(&one, 6)],
        &config(&[Digest::of(&one)], "2020-01-01T00:00:00Z", &[]),
    );
    // Two layers, uncompressed: b holds the data and a links to it; c arrives in the
    // second layer, which also deletes a file the first had.
    let l1 = tar(&[
        file("b", b"x"),
        E::link(typeflag::LINK, "a", "b", 9),
        file("gone", b"g"),
    ]);
    let l2 = tar(&[file(".wh.gone", b""), file("c", b"c")]);
    oci_layout(
        &d.join("two"),
        &[l1.clone(), l2.clone()],
        &config(
            &[Digest::of(&l1), Digest::of(&l2)],
            "2021-01-01T00:00:00Z",
            &[],
        ),
    );
    let r = run(kiln()
        .args(["diff", "--semantic"])
        .arg(d.join("one"))
        .arg(d.join("two")));
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    // ... but breaking the link is a difference.
    let l3 = tar(&[file("a", b"x"), file("b", b"x"), file("c", b"c")]);
    let c3 = config(&[Digest::of(&l3)], "2020-01-01T00:00:00Z", &[]);
    oci_layout(&d.join("three"), &[l3], &c3);
    let (code, v) = diff_json(&d.join("one"), &d.join("three"), &["--semantic"]);
    assert_eq!(code, 1);
    assert_eq!(
        rows(&v),
        [
            row("File", "a", "hardlinked with"),
            row("File", "b", "hardlinked with")
        ]
    );
}

#[test]
fn report_dir_holds_both_sides() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let a = build(d, "a", &A);
    let b = build(
        d,
        "b",
        &Ctx {
            config: "mode=v2\n",
            extra: true,
            ..A
        },
    );
    let rep = d.join("report");
    std::fs::create_dir_all(rep.join("input-0/stale")).unwrap();
    let r = run(kiln()
        .args(["diff", "--semantic", "--report-dir"])
        .arg(&rep)
        .arg(&a)
        .arg(&b));
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(rep.join("input-0/app/config.txt")).unwrap(),
        "mode=v1\n"
    );
    assert_eq!(
        std::fs::read_to_string(rep.join("input-1/app/config.txt")).unwrap(),
        "mode=v2\n"
    );
    assert_eq!(
        std::fs::read_to_string(rep.join("input-1/app/new.txt")).unwrap(),
        "new\n"
    );
    assert!(!rep.join("input-0/app/new.txt").exists());
    assert!(
        !rep.join("input-0/stale").exists(),
        "old reports are replaced"
    );
    let j: Value =
        serde_json::from_slice(&std::fs::read(rep.join("report.json")).unwrap()).unwrap();
    assert_eq!(j["differences"].as_array().unwrap().len(), 2);

    let strict = d.join("strict");
    run(kiln()
        .args(["diff", "--report-dir"])
        .arg(&strict)
        .arg(&a)
        .arg(&b));
    assert_eq!(
        std::fs::read_to_string(strict.join("input-1/layers-0/app/config.txt")).unwrap(),
        "mode=v2\n"
    );
}
