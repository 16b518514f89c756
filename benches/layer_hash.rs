//! Layer hashing throughput: writing a deterministic layer tar (Go-exact headers, file data
//! in io.Copy chunks) and computing its diff_id, over a generated tree of ~5,000 files /
//! ~200 MB, uncompressed — against `sha256sum` over the very same tar bytes.
//!
//! Run with `cargo bench --bench layer_hash`. The tree is generated once under
//! target/bench-data/ (deterministic contents).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kiln_build::copy::Touched;
use kiln_build::tree::Tree;
use kiln_layer::{Compression, LayerWriter};

const FILES: usize = 5_000;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/layer-hash-tree")
}

/// xorshift64* bytes: incompressible, reproducible.
fn fill(buf: &mut [u8], mut s: u64) {
    for chunk in buf.chunks_mut(8) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let v = s.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn generate(dir: &Path) -> u64 {
    let marker = dir.join(".complete");
    let mut total = 0u64;
    let sizes: Vec<usize> = (0..FILES)
        // Mostly small files, a few large ones: ~40 KiB on average, ~200 MB in all.
        .map(|i| {
            if i % 100 == 0 {
                1 << 20
            } else {
                (i * 7919) % (60 * 1024)
            }
        })
        .collect();
    if marker.exists() {
        return sizes.iter().map(|s| *s as u64).sum();
    }
    let _ = std::fs::remove_dir_all(dir);
    for (i, size) in sizes.iter().enumerate() {
        let sub = dir.join(format!("d{:02}/e{:02}", i % 50, (i / 50) % 20));
        std::fs::create_dir_all(&sub).unwrap();
        let mut buf = vec![0u8; *size];
        fill(&mut buf, i as u64 + 1);
        std::fs::File::create(sub.join(format!("f{i:05}.bin")))
            .unwrap()
            .write_all(&buf)
            .unwrap();
        total += *size as u64;
    }
    std::fs::write(&marker, b"").unwrap();
    total
}

fn layer_of(tree: &Tree, out: impl Write) -> (u64, String) {
    let empty = Tree::new();
    let touched: Touched = tree.walk().into_iter().map(|(p, _)| p).collect();
    let changes = kiln_build::emit::changes(&empty, tree, &touched);
    let mut lw = LayerWriter::new(out, Compression::Uncompressed);
    kiln_build::emit::write_layer(tree, &changes, kiln_layer::Timestamp::from_secs(0), &mut lw)
        .unwrap();
    let (_, info) = lw.finish().unwrap();
    (info.uncompressed_size, info.diff_id.to_string())
}

fn bench(c: &mut Criterion) {
    let dir = data_dir();
    let payload = generate(&dir);
    let tree = kiln_build::context::load(&dir, None).unwrap();
    // The tar once on disk, for sha256sum.
    let tar_path = dir.with_extension("tar");
    let (tar_len, diff_id) = layer_of(
        &tree,
        std::io::BufWriter::new(std::fs::File::create(&tar_path).unwrap()),
    );
    eprintln!("tree: {FILES} files, {payload} bytes of data; layer tar {tar_len} bytes, {diff_id}");

    let mut g = c.benchmark_group("layer-hash");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(tar_len));
    g.bench_function("kiln: tar + sha256 (diff_id)", |b| {
        b.iter(|| layer_of(&tree, std::io::sink()))
    });
    g.bench_function("sha256sum over the same tar", |b| {
        b.iter(|| {
            let out = Command::new("sha256sum").arg(&tar_path).output().unwrap();
            assert!(String::from_utf8_lossy(&out.stdout)
                .starts_with(diff_id.trim_start_matches("sha256:")));
        })
    });
    g.finish();

    // A plain summary line with the ratio, for the issue note.
    let t = Instant::now();
    for _ in 0..3 {
        layer_of(&tree, std::io::sink());
    }
    let kiln_s = t.elapsed().as_secs_f64() / 3.0;
    let t = Instant::now();
    for _ in 0..3 {
        Command::new("sha256sum").arg(&tar_path).output().unwrap();
    }
    let sum_s = t.elapsed().as_secs_f64() / 3.0;
    let mb = tar_len as f64 / 1e6;
    eprintln!(
        "summary: kiln {:.0} MB/s, sha256sum {:.0} MB/s, ratio kiln/sha256sum = {:.2}",
        mb / kiln_s,
        mb / sum_s,
        sum_s / kiln_s
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
