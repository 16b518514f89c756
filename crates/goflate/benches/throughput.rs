//! Throughput of goflate (serial and parallel) at the default level, next to flate2
//! (zlib-rs) level 6, on a 64 MiB layer-tar-like input and 64 MiB of random bytes.
//! Go's own numbers for the same inputs: testdata/goflate/bench.sh.

#[path = "../tests/common/corpus.rs"]
mod corpus;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::io::Write;
use std::time::Duration;

const SIZE: usize = 64 << 20;

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    // The same specs as bench.sh gives Go: "tar:67108864:1" and "random:67108864:2".
    let (tar, _) = corpus::tar(&mut corpus::Rng::new(1), SIZE);
    let random = corpus::random(&mut corpus::Rng::new(2), SIZE);
    vec![("tar", tar), ("random", random)]
}

fn bench(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    for (name, data) in inputs() {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(100));
        g.measurement_time(Duration::from_secs(8));
        g.bench_function("goflate-serial", |b| {
            b.iter(|| goflate::gzip(&data, goflate::Level::DEFAULT).len())
        });
        g.bench_function(format!("goflate-parallel-{threads}"), |b| {
            b.iter(|| goflate::gzip_parallel(&data, goflate::Level::DEFAULT, threads).len())
        });
        g.bench_function("flate2-zlib-rs-6", |b| {
            b.iter(|| {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                e.write_all(&data).expect("compress");
                e.finish().expect("finish").len()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
