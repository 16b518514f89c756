//! The parallel encoder must give the serial encoder's bytes (checked against Go by the
//! other tests) for any input, thread count, chunk size and write split.

mod common;

use common::corpus;
use goflate::{GzipWriter, Level, ParallelGzipWriter};
use std::io::Write;

fn serial(data: &[u8], level: Level, writes: &[usize]) -> Vec<u8> {
    let mut w = GzipWriter::new(Vec::new(), level);
    let mut off = 0;
    for &n in writes {
        w.write_all(&data[off..off + n]).expect("write");
        off += n;
    }
    w.finish().expect("finish")
}

fn parallel(data: &[u8], level: Level, writes: &[usize], threads: usize, chunk: usize) -> Vec<u8> {
    let mut w = ParallelGzipWriter::with_chunk_size(Vec::new(), level, threads, chunk);
    let mut off = 0;
    for &n in writes {
        assert_eq!(w.write(&data[off..off + n]).expect("write"), n);
        off += n;
    }
    w.finish().expect("finish")
}

#[test]
fn one_shot_parallel_equals_serial() {
    let specs = [
        "bytes:",
        "bytes:61",
        "random:1000:1",
        "text:3000000:2",
        "random:2000000:3",
        "periodic:2000000:4:1000",
        "periodic:1500000:5:40000",
        "zeros:3000000:0",
        "mixed:3000000:6",
        "tar:3000000:7",
    ];
    for (k, spec) in specs.into_iter().enumerate() {
        let (data, _) = corpus::input(spec);
        // Every spec at the default level; levels 4 and 9 (other lazy parameters) on some.
        let levels: &[i32] = if k % 3 == 0 { &[-1, 4, 9] } else { &[-1] };
        for &level in levels {
            let level = Level::new(level).expect("level");
            let want = goflate::gzip(&data, level);
            for (threads, chunk) in [(2, 65536), (3, 100_000), (4, 1 << 20), (8, 131072)] {
                let got = goflate::gzip_parallel_chunked(&data, level, threads, chunk);
                assert!(
                    got == want,
                    "{spec} level {level} threads {threads} chunk {chunk}: differs"
                );
            }
        }
    }
}

#[test]
fn streaming_parallel_equals_serial_for_the_same_writes() {
    let cases = [
        ("tar:4000000:11", "tar"),
        ("mixed:3000000:12", "rand:5"),
        ("text:2500000:13", "fixed:1000"),
        ("periodic:2000000:14:3000", "rand:6"),
        ("random:1500000:15", "fixed:65535"),
        // Write splits whose output differs from a single write (see vectors.txt).
        ("copies:66536:1:32700-65274-16", "first:65535"),
        (
            "copies:65536:2:40000-65020-258.32600-65300-16",
            "first:65400",
        ),
    ];
    for (spec, split) in cases {
        let (data, tar_writes) = corpus::input(spec);
        let writes = corpus::splits(split, data.len(), tar_writes.as_deref());
        for level in [-1, 7] {
            let level = Level::new(level).expect("level");
            let want = serial(&data, level, &writes);
            for (threads, chunk) in [(2, 65536), (3, 200_000), (2, 1 << 20)] {
                let got = parallel(&data, level, &writes, threads, chunk);
                assert!(
                    got == want,
                    "{spec} {split} level {level} threads {threads} chunk {chunk}: differs"
                );
            }
        }
    }
}

#[test]
fn other_levels_fall_back_to_serial() {
    let (data, _) = corpus::input("mixed:400000:21");
    for level in [-2, 0, 1, 2, 3] {
        let level = Level::new(level).expect("level");
        assert_eq!(
            goflate::gzip_parallel(&data, level, 4),
            goflate::gzip(&data, level)
        );
        assert_eq!(
            parallel(&data, level, &[data.len()], 4, 65536),
            goflate::gzip(&data, level)
        );
    }
}

#[test]
fn random_parallel_cases() {
    let mut r = corpus::Rng::new(99);
    for case in 0..12 {
        let size = r.below(2_500_000) as usize;
        let seed = r.next() % 1000;
        let spec = match r.below(4) {
            0 => format!("tar:{size}:{seed}"),
            1 => format!("periodic:{size}:{seed}:{}", 1 + r.below(50_000)),
            2 => format!("text:{size}:{seed}"),
            _ => format!("mixed:{size}:{seed}"),
        };
        let (data, tar_writes) = corpus::input(&spec);
        let split = if tar_writes.is_some() {
            "tar".to_string()
        } else {
            format!("rand:{seed}")
        };
        let writes = corpus::splits(&split, data.len(), tar_writes.as_deref());
        let threads = 2 + r.below(4) as usize;
        let chunk = 65536 * (1 + r.below(8) as usize);
        let want = serial(&data, Level::DEFAULT, &writes);
        let got = parallel(&data, Level::DEFAULT, &writes, threads, chunk);
        assert!(
            got == want,
            "case {case}: {spec} {split} threads {threads} chunk {chunk}: differs"
        );
    }
}
