//! `kiln normalize` on a real Debian image (`debootstrap --variant=minbase bookworm`, made
//! once by benches/make-debian-image.sh and cached under target/tmp): skopeo reads the
//! result, `umoci unpack` gives the same file tree (content, modes, owners, links) as the
//! input, both input formats give one digest, `kiln diff --semantic` sees no difference,
//! and normalizing the result again changes nothing.
//!
//! Skipped, with a message, where the image cannot be made (no root, no debootstrap, no
//! Debian mirror) or skopeo/umoci are missing.

#[path = "normalize_images.rs"]
mod images;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use images::*;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The cached Debian image directory, or `None` (skip) with the reason printed.
fn debian() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("debian-bookworm");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/make-debian-image.sh");
    let st = Command::new("sh")
        .arg(&script)
        .arg(&dir)
        .status()
        .expect("run sh");
    match st.code() {
        Some(0) => Some(dir),
        Some(77) => {
            eprintln!("SKIPPED: the Debian image cannot be made here (see the message above)");
            None
        }
        other => panic!("{} failed: {other:?}", script.display()),
    }
}

/// Type, mode, uid, gid, size and link target of a path.
type Attrs = (String, u32, u32, u32, u64, Option<PathBuf>);

/// What `umoci unpack` made: the attributes of every path, and the hard link groups.
#[derive(Debug, PartialEq, Eq)]
struct Tree {
    entries: BTreeMap<PathBuf, Attrs>,
    links: Vec<Vec<PathBuf>>,
}

fn walk(root: &Path) -> Tree {
    let mut entries = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let ft = md.file_type();
            let kind = if ft.is_dir() {
                stack.push(p.clone());
                "dir"
            } else if ft.is_symlink() {
                "symlink"
            } else if ft.is_file() {
                "file"
            } else {
                "special"
            };
            let link = ft.is_symlink().then(|| std::fs::read_link(&p).unwrap());
            if ft.is_file() && md.nlink() > 1 {
                inodes.entry(md.ino()).or_default().push(rel.clone());
            }
            let size = if ft.is_file() { md.len() } else { 0 };
            entries.insert(
                rel,
                (
                    kind.to_string(),
                    md.mode() & 0o7777,
                    md.uid(),
                    md.gid(),
                    size,
                    link,
                ),
            );
        }
    }
    let mut links: Vec<Vec<PathBuf>> = inodes
        .into_values()
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    links.sort();
    Tree { entries, links }
}

fn same_contents(a: &Path, b: &Path, tree: &Tree) {
    for (rel, e) in &tree.entries {
        if e.0 == "file" {
            let (x, y) = (
                std::fs::read(a.join(rel)).unwrap(),
                std::fs::read(b.join(rel)).unwrap(),
            );
            assert!(x == y, "{} differs", rel.display());
        }
    }
}

fn unpack(layout: &Path, tag: &str, bundle: &Path) -> PathBuf {
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{tag}", layout.display()))
            .arg(bundle),
    );
    bundle.join("rootfs")
}

#[test]
fn debian_minbase_normalizes_faithfully() {
    let Some(deb) = debian() else { return };
    if !have("skopeo") || !have("umoci") {
        eprintln!("SKIPPED: skopeo and umoci are needed (apt-get install skopeo umoci)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let sde = ["--sde", "1700000000"];

    // From the docker archive, with kiln's gzip, read by skopeo.
    let gz = d.join("norm.tar");
    let digest_gz = normalize(&deb.join("debian.tar"), &gz, &sde);
    let inspect = run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("docker-archive:{}", gz.display())),
    );
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    run_ok(
        Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(format!("docker-archive:{}", gz.display()))
            .arg(format!("oci:{}:copied", d.join("copied").display())),
    );

    // From the OCI layout (gzip by Python's zlib), as a layout: the same image as from the
    // docker archive. (Uncompressed, to keep the debug-build test quick.)
    let layout = d.join("norm-layout");
    let oci = ["--sde", "1700000000", "--compression", "uncompressed"];
    let digest_layout = normalize(
        &deb.join("debian-oci"),
        &layout,
        &[&oci[..], &["--format", "oci-dir", "-t", "debian:norm"]].concat(),
    );
    let digest_oci = normalize(
        &deb.join("debian.tar"),
        &d.join("norm.oci.tar"),
        &[&oci[..], &["--format", "oci"]].concat(),
    );
    assert_eq!(
        digest_layout, digest_oci,
        "both input formats give one image"
    );
    assert_ne!(digest_gz, digest_oci, "docker and OCI media types differ");

    // umoci unpacks the same tree from the input and from the result.
    let before = unpack(&deb.join("debian-oci"), "bookworm", &d.join("before"));
    let after = unpack(&layout, "norm", &d.join("after"));
    let (tb, ta) = (walk(&before), walk(&after));
    assert!(tb.entries.len() > 6000, "{} entries", tb.entries.len());
    assert!(!tb.links.is_empty(), "the image has hard links");
    if tb != ta {
        let only: Vec<_> = tb
            .entries
            .iter()
            .filter(|(k, v)| ta.entries.get(*k) != Some(v))
            .take(10)
            .collect();
        panic!(
            "trees differ, e.g. {only:?}; links {:?} vs {:?}",
            tb.links, ta.links
        );
    }
    same_contents(&before, &after, &tb);

    // Semantically nothing changed; strictly, times and order did.
    let r = run(kiln()
        .args(["diff", "--semantic"])
        .arg(deb.join("debian.tar"))
        .arg(&gz));
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    let r = run(kiln().arg("diff").arg(deb.join("debian.tar")).arg(&gz));
    assert_eq!(r.status.code(), Some(1));

    // Idempotent on a real image.
    let again = normalize(&gz, &d.join("again.tar"), &sde);
    assert_eq!(again, digest_gz);
    assert_eq!(
        std::fs::read(&gz).unwrap(),
        std::fs::read(d.join("again.tar")).unwrap()
    );
}
