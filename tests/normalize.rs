//! `kiln normalize`: canonical (images that differ only in what normalizing removes give
//! one digest), idempotent, a fixed point for BuildKit's own rewrite-timestamp images, and
//! scrub rules applied as documented.

#[path = "normalize_images.rs"]
mod images;

use std::path::Path;

use images::*;
use kiln_digest::Digest;
use kiln_layer::tar::{typeflag, Format, Timestamp};

const EPOCH: i64 = 1_700_000_000;
const OLD: i64 = 1_000_000_000;

/// The same two-layer file tree, written differently: `later` is the mtime of everything
/// the build touched (after the epoch), `reverse` flips entry order (and which name of the
/// hard-linked pair holds the data), `dialect` adds user names, PAX times, `./` prefixes.
fn layers(later: i64, reverse: bool, dialect: bool, old: i64) -> Vec<Vec<u8>> {
    let mut cap = E::file("app/bin/ping", b"\x7fELF", 0o755, later);
    cap.h.pax_records.insert(
        b"SCHILY.xattr.security.capability".to_vec(),
        b"\x01\x00\x00\x02\x00\x20\x00\x00".to_vec(),
    );
    let (first, second) = if reverse {
        ("app/hello.txt", "app/hard")
    } else {
        ("app/hard", "app/hello.txt")
    };
    let mut one = vec![
        E::dir("app/", 0o755, later),
        E::dir("app/bin/", 0o755, later),
        cap,
        E::file("app/bin/run", b"#!/bin/sh\necho run\n", 0o4755, later).owner(1000, 1000),
        E::file(first, b"hello\n", 0o644, later),
        E::link(typeflag::LINK, second, first, later),
        E::link(typeflag::SYMLINK, "app/link", "hello.txt", later),
        E::file("app/old.txt", b"old\n", 0o600, old),
    ];
    let mut two = vec![
        E::dir("app/", 0o755, later),
        E::file("app/.wh.old.txt", b"", 0o644, later),
        E::dir("etc/", 0o755, later),
        E::file("etc/conf", b"k=v\n", 0o644, later),
    ];
    for l in [&mut one, &mut two] {
        if reverse {
            l.reverse();
            // A hard link needs its target first, so the reversed layer keeps that pair in
            // order (with the names' roles swapped above).
            if let (Some(f), Some(k)) = (
                l.iter().position(|e| e.h.name == first.as_bytes()),
                l.iter().position(|e| e.h.name == second.as_bytes()),
            ) {
                if k < f {
                    l.swap(f, k);
                }
            }
        }
        if dialect {
            for e in l.iter_mut() {
                e.h.uname = b"root".to_vec();
                e.h.gname = b"wheel".to_vec();
                e.h.format = Format::PAX;
                e.h.atime = Some(Timestamp::from_secs(later + 7));
                e.h.mtime = e.h.mtime.map(|t| Timestamp {
                    secs: t.secs,
                    nanos: 250_000_000,
                });
                let mut n = b"./".to_vec();
                n.extend_from_slice(&e.h.name);
                e.h.name = n;
            }
        }
    }
    vec![tar(&one), tar(&two)]
}

fn diff_ids(tars: &[Vec<u8>]) -> Vec<Digest> {
    tars.iter().map(|t| Digest::of(t)).collect()
}

#[test]
fn different_writers_of_one_tree_normalize_to_one_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A: OCI layout, gzip -9, times an hour after the epoch, forward order, plain USTAR.
    let a = layers(EPOCH + 3600, false, false, OLD);
    let a_blobs: Vec<Vec<u8>> = a.iter().map(|t| gzip(t, 9)).collect();
    oci_layout(
        &d.join("a"),
        &a_blobs,
        &config(&diff_ids(&a), "2030-01-01T00:00:00Z", &["A=1"]),
    );
    // B: `docker save` archive, uncompressed, one second after, reversed, PAX dialect.
    let b = layers(EPOCH + 1, true, true, OLD);
    docker_save(
        &d.join("b.tar"),
        &b,
        &config(&diff_ids(&b), "2040-05-05T05:05:05.5Z", &["A=1"]),
    );
    // C: OCI layout, gzip -1, like A but differently compressed and timed.
    let c = layers(EPOCH + 99, false, true, OLD);
    let c_blobs: Vec<Vec<u8>> = c.iter().map(|t| gzip(t, 1)).collect();
    oci_layout(
        &d.join("c"),
        &c_blobs,
        &config(&diff_ids(&c), "2031-01-01T00:00:00Z", &["A=1"]),
    );

    let sde = EPOCH.to_string();
    for format in ["docker", "oci", "oci-dir"] {
        for compression in ["gzip", "uncompressed"] {
            let args = [
                "--sde",
                &sde,
                "--format",
                format,
                "--compression",
                compression,
            ];
            let out = |n: &str| d.join(format!("{n}-{format}-{compression}"));
            let da = normalize(&d.join("a"), &out("a"), &args);
            let db = normalize(&d.join("b.tar"), &out("b"), &args);
            let dc = normalize(&d.join("c"), &out("c"), &args);
            assert_eq!(da, db, "{format} {compression}: A and B");
            assert_eq!(da, dc, "{format} {compression}: A and C");
        }
    }

    // What the canonical layer holds.
    let out = d.join("a-oci-dir-uncompressed");
    let l = layout_layers(&out);
    let e = entries(&l[0]);
    let names: Vec<(&str, char)> = e.iter().map(|x| (x.0.as_str(), x.1)).collect();
    assert_eq!(
        names,
        [
            ("app/", '5'),
            ("app/bin/", '5'),
            ("app/bin/ping", '0'),
            ("app/bin/run", '0'),
            ("app/hard", '0'),
            ("app/hello.txt", '1'),
            ("app/link", '2'),
            ("app/old.txt", '0'),
        ]
    );
    assert_eq!(
        e[5].5, "app/hard",
        "the first name in layer order holds the data"
    );
    assert_eq!(e[3].2, 0o4755);
    assert_eq!(e[3].3, "1000:1000");
    assert_eq!(e[0].4, EPOCH, "later times are clamped");
    assert_eq!(e[7].4, OLD, "older times are kept");
    let whiteout = &entries(&l[1])[1];
    assert_eq!(
        (whiteout.0.as_str(), whiteout.2, whiteout.4),
        ("app/.wh.old.txt", 0, 0)
    );
    // Config: every time is the epoch.
    let info = analyze(&out);
    assert_eq!(info["config"]["created"], "2023-11-14T22:13:20Z");
    for h in info["config"]["history"].as_array().unwrap() {
        assert_eq!(h["created"], "2023-11-14T22:13:20Z");
    }

    // Older mtimes are content: a different one gives a different image.
    let x = layers(EPOCH + 3600, false, false, OLD + 1);
    oci_layout(
        &d.join("x"),
        &x,
        &config(&diff_ids(&x), "2030-01-01T00:00:00Z", &["A=1"]),
    );
    let args = ["--sde", &sde];
    assert_ne!(
        normalize(&d.join("x"), &d.join("x.tar"), &args),
        normalize(&d.join("a"), &d.join("a2.tar"), &args)
    );
}

#[test]
fn normalizing_twice_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let b = layers(EPOCH + 1, true, true, OLD);
    docker_save(
        &d.join("in.tar"),
        &b,
        &config(&diff_ids(&b), "2040-05-05T05:05:05Z", &[]),
    );
    let sde = EPOCH.to_string();
    for format in ["docker", "oci"] {
        let args = ["--sde", &sde, "--format", format, "-t", "example.com/app:1"];
        let once = d.join(format!("once-{format}.tar"));
        let twice = d.join(format!("twice-{format}.tar"));
        normalize(&d.join("in.tar"), &once, &args);
        normalize(&once, &twice, &args);
        assert_eq!(
            std::fs::read(&once).unwrap(),
            std::fs::read(&twice).unwrap(),
            "{format}: the tarball is byte-identical"
        );
    }
}

/// `-q` is `--progress quiet`, as in docker buildx: nothing on stderr, the summary still on
/// stdout; naming both is a usage error.
#[test]
fn quiet_flag_silences_progress_but_not_the_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let b = layers(EPOCH + 1, false, false, OLD);
    docker_save(
        &d.join("in.tar"),
        &b,
        &config(&diff_ids(&b), "2040-05-05T05:05:05Z", &[]),
    );
    let sde = EPOCH.to_string();
    let plain = run_ok(
        kiln()
            .args(["normalize", "--progress", "plain", "--sde", &sde, "-o"])
            .arg(d.join("p.tar"))
            .arg(d.join("in.tar")),
    );
    assert!(String::from_utf8_lossy(&plain.stderr).contains("#normalized layer 1/2"));
    let quiet = run_ok(
        kiln()
            .args(["normalize", "-q", "--sde", &sde, "-o"])
            .arg(d.join("q.tar"))
            .arg(d.join("in.tar")),
    );
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    assert!(String::from_utf8_lossy(&quiet.stdout).starts_with("image digest:"));
    assert_eq!(
        std::fs::read(d.join("p.tar")).unwrap(),
        std::fs::read(d.join("q.tar")).unwrap()
    );
    let both = run(kiln()
        .args(["normalize", "-q", "--progress", "plain", "-o"])
        .arg(d.join("b.tar"))
        .arg(d.join("in.tar")));
    assert_eq!(both.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"));
    assert!(!d.join("b.tar").exists());
}

fn fixture_epoch(case: &str) -> (String, serde_json::Value) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/fixtures")
        .join(case);
    let e: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.join("expected.json")).unwrap()).unwrap();
    (e["source_date_epoch"].to_string(), e)
}

#[test]
fn buildkit_rewrite_timestamp_images_are_fixed_points() {
    // BuildKit's own outputs are canonical already: whatever their format or compression,
    // they normalize (uncompressed, docker format) to BuildKit's uncompressed image.
    let tmp = tempfile::tempdir().unwrap();
    for case in ["add-tar", "multistage", "scratch-meta", "xattr"] {
        let (sde, e) = fixture_epoch(case);
        let want = e["outputs"]["docker-uncompressed"]["manifest_digest"]
            .as_str()
            .unwrap();
        for input in ["docker-uncompressed.tar", "docker.tar", "oci.tar"] {
            let src = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/fixtures")
                .join(case)
                .join(input);
            let out = tmp.path().join(format!("{case}-{input}"));
            let got = normalize(
                &src,
                &out,
                &["--sde", &sde, "--compression", "uncompressed"],
            );
            assert_eq!(got, want, "{case} from {input}");
        }
    }
}

#[test]
fn scrub_rules_remove_and_rewrite() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let t = tar(&[
        E::dir("etc/", 0o755, EPOCH),
        E::file(
            "etc/machine-id",
            b"4f2c2b0d9c6e4a1e8f0b1c2d3e4f5a6b\n",
            0o444,
            EPOCH,
        ),
        E::file("etc/shadow", b"root:*:19500:0:99999:7:::\n", 0o640, EPOCH).owner(0, 42),
        E::dir("usr/lib/python3/__pycache__/", 0o755, EPOCH),
        E::file(
            "usr/lib/python3/__pycache__/x.cpython-311.pyc",
            b"\x00pyc",
            0o644,
            EPOCH,
        ),
        E::file("usr/lib/python3/x.py", b"print(1)\n", 0o644, EPOCH),
        E::dir("var/log/apt/", 0o755, EPOCH),
        E::file(
            "var/log/apt/history.log",
            b"Start-Date: 2024-01-01\n",
            0o644,
            EPOCH,
        ),
        E::file("var/log/dpkg.log", b"2024-01-01 install\n", 0o644, EPOCH),
        E::file("var/cache/ldconfig/aux-cache", b"inodes", 0o600, EPOCH),
    ]);
    let cfg = config(&[Digest::of(&t)], "2024-01-01T00:00:00Z", &[]);
    oci_layout(&d.join("in"), &[t], &cfg);
    let out = d.join("out");
    let r = run_ok(
        kiln()
            .args([
                "normalize",
                "--sde",
                "1700000000",
                "--format",
                "oci-dir",
                "--compression",
                "uncompressed",
            ])
            .args([
                "--scrub",
                "apt-logs,machine-id,pycache",
                "--scrub",
                "shadow-dates,ldconfig-cache",
                "-o",
            ])
            .arg(&out)
            .arg(d.join("in")),
    );
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("scrub apt-logs: removed var/log/apt/history.log"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&r.stdout).contains("7 scrubbed"));
    let e = entries(&layout_layers(&out)[0]);
    let got: Vec<(&str, &[u8])> = e.iter().map(|x| (x.0.as_str(), x.6.as_slice())).collect();
    assert_eq!(
        got,
        [
            ("etc/", &b""[..]),
            ("etc/machine-id", b""),
            ("etc/shadow", b"root:*:19675:0:99999:7:::\n"),
            ("usr/lib/python3/x.py", b"print(1)\n"),
            ("var/log/apt/", b""),
        ]
    );
    assert_eq!(e[2].3, "0:42", "rewritten files keep their owner");

    // Unknown rules are refused; --help documents every rule.
    let r = run(kiln()
        .args(["normalize", "--scrub", "apt-logs,bogus", "-o"])
        .arg(d.join("x"))
        .arg(d.join("in")));
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("unknown scrub rule \"bogus\""));
    let help = run_ok(kiln().args(["normalize", "--help"]));
    let help = String::from_utf8_lossy(&help.stdout);
    for rule in kiln_normalize::scrub::RULES {
        assert!(help.contains(rule.name), "--help lists {}", rule.name);
    }
}

#[test]
fn layers_are_normalized_in_parallel_deterministically() {
    // Many layers, one worker or four: the same bytes.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let tars: Vec<Vec<u8>> = (0..9)
        .map(|i| {
            let data = format!("layer {i}\n").repeat(1000 * (i + 1));
            tar(&[
                E::dir(&format!("l{i}/"), 0o755, EPOCH + 5),
                E::file(&format!("l{i}/data"), data.as_bytes(), 0o644, EPOCH + 5),
            ])
        })
        .collect();
    let blobs: Vec<Vec<u8>> = tars.iter().map(|t| gzip(t, 6)).collect();
    oci_layout(
        &d.join("in"),
        &blobs,
        &config(&diff_ids(&tars), "2030-01-01T00:00:00Z", &[]),
    );
    let one = normalize(
        &d.join("in"),
        &d.join("one.tar"),
        &["--sde", "1700000000", "-j", "1"],
    );
    let four = normalize(
        &d.join("in"),
        &d.join("four.tar"),
        &["--sde", "1700000000", "-j", "4"],
    );
    assert_eq!(one, four);
    assert_eq!(
        std::fs::read(d.join("one.tar")).unwrap(),
        std::fs::read(d.join("four.tar")).unwrap()
    );
}

#[path = "common/multi.rs"]
mod multi;

/// `kiln normalize` with `args`; returns the digest it printed.
fn normalize_printed(input: &Path, output: &Path, args: &[&str]) -> (String, String) {
    let out = run_ok(
        kiln()
            .args([
                "normalize",
                "--progress",
                "quiet",
                "--sde",
                &EPOCH.to_string(),
                "-o",
            ])
            .arg(output)
            .args(args)
            .arg(input),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let digest = stdout
        .lines()
        .find_map(|l| l.strip_prefix("image digest:"))
        .map(|d| d.trim().to_string())
        .unwrap_or_else(|| panic!("no digest in {stdout}"));
    (digest, stdout)
}

#[test]
fn every_platform_of_a_multi_platform_image_is_normalized_under_a_new_index() {
    let dir = tempfile::tempdir().unwrap();
    let (multi, _, _) = multi::layout(dir.path(), true);
    let all = dir.path().join("all");
    let (index_digest, stdout) =
        normalize_printed(&multi, &all, &["--all-platforms", "--format", "oci-dir"]);
    assert!(stdout.contains("attestations:       1 dropped"), "{stdout}");

    // The new index lists, in order, exactly what normalizing each platform alone gives.
    let top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(all.join("index.json")).unwrap()).unwrap();
    assert_eq!(top["manifests"][0]["digest"], index_digest.as_str());
    let index_bytes = std::fs::read(all.join("blobs/sha256").join(&index_digest[7..])).unwrap();
    assert_eq!(Digest::of(&index_bytes).to_string(), index_digest);
    let index: serde_json::Value = serde_json::from_slice(&index_bytes).unwrap();
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), multi::PLATFORMS.len());
    for (platform, entry) in multi::PLATFORMS.iter().zip(listed) {
        let single = dir
            .path()
            .join(format!("{}.tar", platform.replace('/', "-")));
        let (digest, _) = normalize_printed(
            &multi,
            &single,
            &["--platform", platform, "--format", "oci"],
        );
        assert_eq!(entry["digest"], digest.as_str(), "{platform}");
        let (os, arch) = platform.split_once('/').unwrap();
        assert_eq!(entry["platform"]["os"], os);
        assert_eq!(entry["platform"]["architecture"], arch);
    }

    // skopeo reads the index (the bytes it serves have our digest) and copies every image.
    if let Ok(raw) = std::process::Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}", all.display()))
        .output()
    {
        assert!(
            raw.status.success(),
            "{}",
            String::from_utf8_lossy(&raw.stderr)
        );
        assert_eq!(Digest::of(&raw.stdout).to_string(), index_digest);
        let copied = std::process::Command::new("skopeo")
            .args(["copy", "-q", "--all"])
            .arg(format!("oci:{}", all.display()))
            .arg(format!("oci:{}", dir.path().join("copied").display()))
            .status()
            .unwrap();
        assert!(copied.success());
    }

    // Normalizing the result again changes nothing; the tarball form holds the same index.
    let again = dir.path().join("again");
    let (again_digest, _) =
        normalize_printed(&all, &again, &["--all-platforms", "--format", "oci-dir"]);
    assert_eq!(again_digest, index_digest);
    let tar = dir.path().join("all.tar");
    let (tar_digest, _) = normalize_printed(&multi, &tar, &["--all-platforms", "--format", "oci"]);
    assert_eq!(tar_digest, index_digest);

    // A docker-format tarball cannot hold an index: refused before any work.
    let refused = run(kiln()
        .args(["normalize", "--all-platforms", "-o"])
        .arg(dir.path().join("x.tar"))
        .arg(&multi));
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--format oci"));
    assert!(!dir.path().join("x.tar").exists());
}
