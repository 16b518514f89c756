//! Helpers shared by the end-to-end tests: the kiln binary, fixture contexts and their
//! expected digests (copied from BuildKit v0.19.0's outputs into testdata/).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn kiln() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
}

/// `kiln build --progress quiet EXTRA... -o OUT CTX`: its exit code and stderr.
pub fn build_quietly(extra: &[&str], out: &Path, ctx: &Path) -> (Option<i32>, String) {
    let r = kiln()
        .args(["build", "--progress", "quiet"])
        .args(extra)
        .arg("-o")
        .arg(out)
        .arg(ctx)
        .output()
        .unwrap();
    (
        r.status.code(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    )
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture_dir(case: &str) -> PathBuf {
    repo().join("testdata/fixtures").join(case)
}

pub fn is_root() -> bool {
    // SAFETY-free check: /proc/self/status names the effective uid.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Re-creates a fixture's build context (bytes, modes, mtimes, owners, links) in `dest`.
pub fn make_context(case: &str, dest: &Path) {
    let out = Command::new("python3")
        .arg(fixture_dir(case).join("make-context.py"))
        .arg(dest)
        .output()
        .expect("python3 is needed to re-create fixture contexts");
    assert!(
        out.status.success(),
        "make-context.py for {case} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn expected(case: &str) -> serde_json::Value {
    let p = fixture_dir(case).join("expected.json");
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

pub fn sha256_file(p: &Path) -> String {
    sha256_hex(&std::fs::read(p).unwrap())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "command failed ({:?}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `kiln build` of a fixture case into `out`.
pub fn build_fixture(case: &str, ctx: &Path, out: &Path, extra: &[&str]) -> Output {
    let e = expected(case);
    let sde = e["source_date_epoch"].as_i64().unwrap().to_string();
    let mut c = kiln();
    c.args(["build", "--progress", "quiet", "--sde", &sde, "-f"])
        .arg(fixture_dir(case).join("Dockerfile"))
        .arg("-o")
        .arg(out)
        .args(extra)
        .arg(ctx);
    c.output().expect("run kiln")
}

/// The first difference between two tarballs, for failure messages: offset and the outer
/// member it falls in.
pub fn first_difference(a: &[u8], b: &[u8]) -> String {
    let n = a.iter().zip(b).position(|(x, y)| x != y);
    match n {
        None if a.len() == b.len() => "identical".into(),
        None => format!("same prefix, lengths {} vs {}", a.len(), b.len()),
        Some(off) => {
            let block = off / 512 * 512;
            let hdr = |t: &[u8]| {
                String::from_utf8_lossy(&t[block..(block + 100).min(t.len())])
                    .trim_end_matches('\0')
                    .to_string()
            };
            format!(
                "first difference at byte {off} (block at {block}: ours {:?}, expected {:?})",
                hdr(a),
                hdr(b)
            )
        }
    }
}
