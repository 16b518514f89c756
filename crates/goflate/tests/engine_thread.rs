//! The parallel writer's engine runs on a thread of its own: it must end with the writer,
//! whether the stream was finished, abandoned half-way or broken by the inner writer.
//! (One test in this file, so that the process's thread count is this test's alone.)

use goflate::{Level, ParallelGzipWriter};
use std::io::{self, Write};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Bytes that compress a little, like a layer: text with some noise.
fn data(n: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_u32;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 7 == 0 {
                x as u8
            } else {
                b"the quick brown fox "[i % 20]
            }
        })
        .collect()
}

struct FailAfter(usize);

impl Write for FailAfter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.0 {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"));
        }
        self.0 -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_engine_thread_ends_with_the_writer() {
    let input = data(6 << 20);
    let before = threads();
    assert!(before > 0, "/proc/self/task is readable");

    // Finished: the bytes are the serial encoder's and the thread is gone.
    let mut w = ParallelGzipWriter::with_chunk_size(Vec::new(), Level::DEFAULT, 2, 65536);
    for piece in input.chunks(10_000) {
        w.write_all(piece).expect("write");
    }
    assert!(threads() > before, "the engine runs on its own thread");
    let out = w.finish().expect("finish");
    let mut serial = goflate::GzipWriter::new(Vec::new(), Level::DEFAULT);
    for piece in input.chunks(10_000) {
        serial.write_all(piece).expect("write");
    }
    assert!(out == serial.finish().expect("finish"), "same bytes");
    assert_eq!(threads(), before, "after finish");

    // Abandoned half-way: dropping the writer ends the thread.
    let mut w = ParallelGzipWriter::with_chunk_size(Vec::new(), Level::DEFAULT, 2, 65536);
    w.write_all(&input[..3 << 20]).expect("write");
    drop(w);
    assert_eq!(threads(), before, "after drop");

    // The inner writer fails: the error surfaces, sticks, and the thread ends.
    let mut w = ParallelGzipWriter::with_chunk_size(FailAfter(100_000), Level::DEFAULT, 2, 65536);
    let err = match input.chunks(10_000).try_for_each(|p| w.write_all(p)) {
        Err(e) => {
            let again = w.write(b"more").expect_err("poisoned");
            assert!(again.to_string().contains("failed earlier"), "{again}");
            drop(w);
            e
        }
        Ok(()) => w.finish().map(|_| ()).expect_err("fails at finish"),
    };
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    assert_eq!(threads(), before, "after the failure");
}
