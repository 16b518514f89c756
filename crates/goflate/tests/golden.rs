//! Golden vectors: goflate must reproduce Go 1.23.4's `compress/gzip` output, recorded in
//! testdata/goflate/vectors.txt by testdata/goflate/gen, for every input, write split and
//! level listed there.

mod common;

use common::corpus;
use goflate::{GzipWriter, Level, ParallelGzipWriter};
use kiln_digest::Digest;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/goflate")
}

struct Vector {
    level: i32,
    len: usize,
    sha256: String,
    hex: Option<String>,
}

/// (input spec, split spec) -> vectors, in file order of first appearance.
fn load() -> Vec<((String, String), Vec<Vector>)> {
    let text = std::fs::read_to_string(testdata().join("vectors.txt")).expect("read vectors.txt");
    let mut order = Vec::new();
    let mut map: BTreeMap<(String, String), Vec<Vector>> = BTreeMap::new();
    for (lineno, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(' ').collect();
        assert!(
            f.len() == 5 || f.len() == 6,
            "vectors.txt:{}: bad line",
            lineno + 1
        );
        let key = (f[0].to_string(), f[1].to_string());
        if !map.contains_key(&key) {
            order.push(key.clone());
        }
        map.entry(key).or_default().push(Vector {
            level: f[2].parse().expect("level"),
            len: f[3].parse().expect("len"),
            sha256: f[4].to_string(),
            hex: f.get(5).map(|s| s.to_string()),
        });
    }
    order
        .into_iter()
        .map(|k| {
            let v = map.remove(&k).unwrap_or_default();
            (k, v)
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn gzip_with_writes(data: &[u8], level: Level, writes: &[usize]) -> Vec<u8> {
    gzip_with_writes_and_flushes(data, level, writes, false)
}

/// With `flush`, Go's `Flush` follows every write (split specs "flush:K").
fn gzip_with_writes_and_flushes(
    data: &[u8],
    level: Level,
    writes: &[usize],
    flush: bool,
) -> Vec<u8> {
    let mut w = GzipWriter::new(Vec::new(), level);
    let mut off = 0;
    for &n in writes {
        assert_eq!(w.write(&data[off..off + n]).expect("write"), n);
        if flush {
            w.sync_flush().expect("sync_flush");
        }
        off += n;
    }
    assert_eq!(off, data.len());
    w.finish().expect("finish")
}

#[test]
fn all_golden_vectors_match_go() {
    let groups = load();
    assert!(groups.len() > 50, "vectors.txt looks truncated");
    let mut checked = 0;
    let mut failures = Vec::new();
    for ((input, split), vectors) in &groups {
        let (data, tar_writes) = corpus::input(input);
        let writes = corpus::splits(split, data.len(), tar_writes.as_deref());
        for v in vectors {
            let level = Level::new(v.level).expect("level");
            let out =
                gzip_with_writes_and_flushes(&data, level, &writes, split.starts_with("flush:"));
            let got = Digest::of(&out).hex();
            checked += 1;
            if out.len() != v.len || got != v.sha256 {
                failures.push(format!(
                    "{input} {split} level {}: got {} bytes {got}, want {} bytes {}",
                    v.level,
                    out.len(),
                    v.len,
                    v.sha256
                ));
            }
            if let Some(want) = &v.hex {
                assert_eq!(&hex(&out), want, "{input} {split} level {}", v.level);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} vectors differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn parallel_gzip_with_writes(data: &[u8], level: Level, writes: &[usize]) -> Vec<u8> {
    // Small chunks, so that even the 64 KiB vectors are split between threads.
    let mut w = ParallelGzipWriter::with_chunk_size(Vec::new(), level, 3, 65536);
    let mut off = 0;
    for &n in writes {
        assert_eq!(w.write(&data[off..off + n]).expect("write"), n);
        off += n;
    }
    w.finish().expect("finish")
}

#[test]
fn all_golden_vectors_match_go_in_parallel() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for ((input, split), vectors) in &load() {
        if split.starts_with("flush:") {
            // Go's Flush is only offered by the serial writers.
            continue;
        }
        let (data, tar_writes) = corpus::input(input);
        let writes = corpus::splits(split, data.len(), tar_writes.as_deref());
        for v in vectors {
            let level = Level::new(v.level).expect("level");
            let out = parallel_gzip_with_writes(&data, level, &writes);
            checked += 1;
            if out.len() != v.len || Digest::of(&out).hex() != v.sha256 {
                failures.push(format!("{input} {split} level {}", v.level));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} vectors differ in parallel:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn one_shot_functions_match_the_writer() {
    let (data, _) = corpus::input("mixed:300000:31");
    for level in [-2, -1, 0, 1, 4, 9] {
        let level = Level::new(level).expect("level");
        let streamed = gzip_with_writes(&data, level, &[data.len()]);
        assert_eq!(goflate::gzip(&data, level), streamed);
        let raw = goflate::deflate(&data, level);
        assert_eq!(&streamed[10..streamed.len() - 8], &raw[..]);
    }
}
