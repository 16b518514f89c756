//! Differential test against a real Go 1.23 toolchain: random inputs, levels and write
//! splits, compressed by Go's `compress/gzip` (testdata/goflate/gen) and by goflate.
//!
//! Runs only where Go is available: `GOFLATE_GO` names the `go` binary, else `go` on PATH.
//! Without it the test passes after printing why it skipped. `GOFLATE_DIFF_CASES` sets the
//! number of cases (default 40) and `GOFLATE_DIFF_SEED` the seed (default fixed).

mod common;

use common::corpus::{self, Rng};
use goflate::{GzipWriter, Level, ParallelGzipWriter};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Builds the Go reference program, or says why it cannot.
fn build_go_reference(dir: &Path) -> Result<PathBuf, String> {
    let go = std::env::var("GOFLATE_GO").unwrap_or_else(|_| "go".to_string());
    let version = Command::new(&go)
        .arg("version")
        .env("GOTOOLCHAIN", "local")
        .output()
        .map_err(|e| format!("no Go toolchain ({go}: {e}); set GOFLATE_GO to run this test"))?;
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    if !version.contains("go1.2") || version.contains("go1.27") {
        return Err(format!(
            "{go} is {version}: need Go 1.21 to 1.26 (1.23 recommended)"
        ));
    }
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/goflate/gen");
    let bin = dir.join("gen");
    let out = Command::new(&go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(&src)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .output()
        .map_err(|e| format!("go build: {e}"))?;
    if !out.status.success() {
        panic!(
            "go build of the reference failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("Go reference: {}", version.trim());
    Ok(bin)
}

pub fn go_gzip(bin: &Path, dir: &Path, data: &[u8], level: i32, writes: &[usize]) -> Vec<u8> {
    let splits = dir.join("splits.txt");
    let text: String = writes.iter().map(|w| format!("{w}\n")).collect();
    std::fs::write(&splits, text).expect("write splits");
    let mut child = Command::new(bin)
        .arg("compress")
        .arg(level.to_string())
        .arg(&splits)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run Go reference");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = data.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("Go reference output");
    feeder.join().expect("feeder").expect("feed Go reference");
    assert!(
        out.status.success(),
        "Go reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A random input spec (see corpus.rs) and split spec.
fn random_case(r: &mut Rng) -> (String, String) {
    let size = match r.below(10) {
        0 => r.below(300),
        1..=6 => r.below(300_000),
        _ => r.below(3_000_000),
    };
    let seed = r.next() % 1_000_000;
    let input = match r.below(7) {
        0 => format!("text:{size}:{seed}"),
        1 => format!("random:{size}:{seed}"),
        2 => format!("periodic:{size}:{seed}:{}", 1 + r.below(40_000)),
        3 => format!("tar:{size}:{seed}"),
        _ => format!("mixed:{size}:{seed}"),
    };
    let split = match r.below(5) {
        0 => "one".to_string(),
        1 if input.starts_with("tar") => "tar".to_string(),
        2 => format!("fixed:{}", 1 + r.below(70_000)),
        _ => format!("rand:{}", r.next() % 1_000_000),
    };
    (input, split)
}

#[test]
fn goflate_matches_go_on_random_inputs_and_splits() {
    let dir = std::env::temp_dir().join(format!("goflate-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bin = match build_go_reference(&dir) {
        Ok(bin) => bin,
        Err(why) => {
            eprintln!("SKIPPED goflate_matches_go_on_random_inputs_and_splits: {why}");
            return;
        }
    };
    let cases = env_num("GOFLATE_DIFF_CASES", 40);
    let mut r = Rng::new(env_num("GOFLATE_DIFF_SEED", 20250101));
    let levels = [-2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    let mut total = 0;
    for case in 0..cases {
        let (input, split) = random_case(&mut r);
        let level = if r.below(2) == 0 {
            -1
        } else {
            levels[r.below(levels.len() as u64) as usize]
        };
        let (data, tar_writes) = corpus::input(&input);
        let writes = corpus::splits(&split, data.len(), tar_writes.as_deref());
        let want = go_gzip(&bin, &dir, &data, level, &writes);
        let mut w = GzipWriter::new(Vec::new(), Level::new(level).expect("level"));
        let mut off = 0;
        for &n in &writes {
            w.write_all(&data[off..off + n]).expect("write");
            off += n;
        }
        let got = w.finish().expect("finish");
        total += data.len();
        assert!(
            got == want,
            "case {case}: input {input} split {split} level {level}: goflate {} bytes, Go {} bytes",
            got.len(),
            want.len()
        );
        let threads = 2 + r.below(3) as usize;
        let chunk = 65536 * (1 + r.below(6) as usize);
        let mut w = ParallelGzipWriter::with_chunk_size(
            Vec::new(),
            Level::new(level).expect("level"),
            threads,
            chunk,
        );
        let mut off = 0;
        for &n in &writes {
            w.write_all(&data[off..off + n]).expect("write");
            off += n;
        }
        let got = w.finish().expect("finish");
        assert!(
            got == want,
            "case {case}: input {input} split {split} level {level} threads {threads} chunk {chunk}: parallel goflate differs from Go"
        );
    }
    eprintln!("{cases} cases, {total} input bytes: goflate == Go");
    let _ = std::fs::remove_dir_all(&dir);
}
