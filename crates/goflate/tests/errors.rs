//! Bad levels and failing writers give errors, not panics or silent truncation.

use goflate::{DeflateWriter, GzipWriter, Level, ParallelGzipWriter};
use std::io::{self, Write};

#[test]
fn invalid_levels_are_rejected_with_go_s_message() {
    for bad in [-3, 10, 100, i32::MIN] {
        let err = Level::new(bad).expect_err("must be rejected");
        assert_eq!(
            err.to_string(),
            format!("goflate: invalid compression level {bad}: want value in range [-2, 9]")
        );
    }
    for ok in -2..=9 {
        assert_eq!(Level::new(ok).map(Level::get), Ok(ok));
    }
    assert_eq!(Level::default(), Level::DEFAULT);
    assert_eq!(Level::try_from(9), Ok(Level::BEST_COMPRESSION));
}

#[test]
fn gzip_header_carries_go_s_xfl() {
    for (level, xfl) in [(-1, 0), (1, 4), (6, 0), (9, 2), (0, 0), (-2, 0)] {
        let out = goflate::gzip(b"x", Level::new(level).expect("level"));
        assert_eq!(
            &out[..10],
            &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 0xff],
            "level {level}"
        );
    }
}

/// Accepts `budget` bytes, then fails.
struct Failing {
    budget: usize,
}

impl Write for Failing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.budget {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "disk full"));
        }
        self.budget -= buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9e3779b97f4a7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn inner_write_errors_surface_and_stick() {
    let data = noise(1 << 20);
    let mut w = GzipWriter::new(Failing { budget: 1000 }, Level::DEFAULT);
    let err = w.write_all(&data).expect_err("inner writer fails");
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    let again = w.write(b"more").expect_err("poisoned");
    assert!(again.to_string().contains("failed earlier"), "{again}");
    assert!(w.finish().is_err());

    let mut w = DeflateWriter::new(Failing { budget: 10 }, Level::BEST_SPEED);
    w.write_all(b"short").expect("buffered");
    assert_eq!(
        w.finish().map(|_| ()).expect_err("fails at finish").kind(),
        io::ErrorKind::BrokenPipe
    );

    let mut w =
        ParallelGzipWriter::with_chunk_size(Failing { budget: 1000 }, Level::DEFAULT, 2, 65536);
    let mut failed = false;
    for piece in data.chunks(4096) {
        if w.write_all(piece).is_err() {
            failed = true;
            break;
        }
    }
    assert!(
        failed || w.finish().is_err(),
        "the parallel writer must report the failure"
    );
}

#[test]
fn flush_does_not_change_the_stream_but_sync_flush_does() {
    let data = noise(200_000);
    let plain = goflate::gzip(&data, Level::DEFAULT);
    let mut w = GzipWriter::new(Vec::new(), Level::DEFAULT);
    w.write_all(&data).expect("write");
    w.flush().expect("flush");
    assert_eq!(w.finish().expect("finish"), plain);

    let mut w = GzipWriter::new(Vec::new(), Level::DEFAULT);
    w.write_all(&data).expect("write");
    w.sync_flush().expect("sync_flush");
    let flushed = w.finish().expect("finish");
    assert_ne!(flushed, plain);
    // The sync marker: an empty stored block, then the final one.
    let body = &flushed[..flushed.len() - 8];
    assert!(
        body.ends_with(&[0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff]),
        "{:x?}",
        &body[body.len() - 12..]
    );
}
