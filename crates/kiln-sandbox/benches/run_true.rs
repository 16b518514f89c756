//! Overhead of `RUN true` on the busybox base: set-up, run, change scan and teardown of one
//! sandbox, as kiln pays it per RUN instruction. Needs root.

use std::fs;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use kiln_sandbox::{Rootfs, RunSpec};

fn unpack_busybox(dest: &Path) {
    let blob = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/base/busybox/blobs/sha256")
        .join("bd12cd9dfdc46f65a573432ffaf203725a958eac3cd08f3c73a31974a58ed607");
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(fs::File::open(blob).unwrap()));
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_preserve_ownerships(true);
    ar.unpack(dest).unwrap();
}

fn run_true(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("base");
    unpack_busybox(&lower);
    let scratch = tmp.path().join("scratch");
    fs::create_dir(&scratch).unwrap();
    let mut n = 0u64;
    c.bench_function("RUN true (set-up, run, changes, teardown)", |b| {
        b.iter(|| {
            n += 1;
            let layer = tmp.path().join(format!("l{n}"));
            let (upper, work) = (layer.join("upper"), layer.join("work"));
            fs::create_dir_all(&upper).unwrap();
            fs::create_dir_all(&work).unwrap();
            let spec = RunSpec::new(
                Rootfs::Overlay {
                    lowers: vec![lower.clone()],
                    upper: upper.clone(),
                    work,
                },
                vec!["/bin/sh".into(), "-c".into(), "true".into()],
                scratch.clone(),
            );
            let outcome = kiln_sandbox::run(&spec, &mut |_: &[u8]| {}).unwrap();
            assert!(outcome.status.success());
            let changes = kiln_sandbox::changes(&[&lower], &upper).unwrap();
            assert_eq!(changes.len(), 3);
            kiln_sandbox::snapshot::remove_tree(&layer).unwrap();
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = run_true
}
criterion_main!(benches);
