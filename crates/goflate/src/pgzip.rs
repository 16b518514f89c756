//! The parallel gzip writer: Go's bytes, several threads.

use crate::deflate::Compressor;
use crate::gzip::{header, trailer};
use crate::level::Level;
use crate::lz77::Params;
use crate::parallel::{Engine, Input};
use std::io::{self, Write};

/// Input handed to each batch by default, per thread.
pub const DEFAULT_CHUNK_SIZE: usize = 512 << 10;

enum Mode {
    /// Levels without a parallel encoder, or one thread.
    Serial(Box<Compressor>),
    Parallel(Box<Par>),
}

struct Par {
    engine: Engine,
    /// Buffered input from absolute position `base`.
    pending: Vec<u8>,
    base: u64,
    /// Absolute ends of the writes that are still needed.
    bounds: Vec<u64>,
}

impl Par {
    /// Runs the engine over the buffered input.
    fn process(&mut self, last: bool) {
        let inp = Input {
            data: &self.pending,
            base: self.base,
            bounds: &self.bounds,
            last,
        };
        self.engine.process(&inp);
    }

    /// Drops input the engine no longer needs.
    fn compact(&mut self) {
        let keep = self
            .engine
            .keep_from()
            .min(self.base + self.pending.len() as u64);
        if keep > self.base {
            self.pending.drain(..(keep - self.base) as usize);
            self.base = keep;
            let stale = self.bounds.partition_point(|&b| b <= keep);
            self.bounds.drain(..stale);
        }
    }
}

/// Whether `level` has a parallel encoder: 4..=9 (every position hashed, lazy matching).
fn parallel_params(level: Level) -> Option<Params> {
    match level.effective() {
        l @ 4..=9 => Some(Params::for_level(l as u8)),
        _ => None,
    }
}

/// A gzip writer that compresses on several threads and still produces exactly the bytes of
/// [`GzipWriter`](crate::GzipWriter) (and so of Go 1.23) for the same `write` calls.
///
/// Levels 4..=9 (including the default) run in parallel; other levels, or `threads < 2`,
/// run the serial encoder. Input is handled in batches of `4 * threads` chunks (at most
/// 64) of [`DEFAULT_CHUNK_SIZE`] bytes, and a batch's blocks are coded while the next one is
/// parsed, so memory stays bounded: for 2 threads about two batches (8 MiB) of input plus,
/// per chunk, a parser (1 MiB of tables) and the tokens of two batches (up to 4 bytes per
/// input byte). Compressed output is handed on a batch behind the input. Like `GzipWriter`,
/// each `write` call counts as one Go `Write` (the writer records where writes end to
/// reproduce Go's window slides). `io::Write::flush` passes on finished bytes only; `finish`
/// ends the stream.
pub struct ParallelGzipWriter<W: Write> {
    inner: Option<W>,
    mode: Mode,
    crc: crc32fast::Hasher,
    size: u64,
    poisoned: bool,
}

impl<W: Write> ParallelGzipWriter<W> {
    /// A writer compressing at `level` with `threads` threads into `inner`.
    pub fn new(inner: W, level: Level, threads: usize) -> ParallelGzipWriter<W> {
        ParallelGzipWriter::with_chunk_size(inner, level, threads, DEFAULT_CHUNK_SIZE)
    }

    /// Like `new`, with `chunk_size` bytes of input per thread and batch (rounded to a
    /// multiple of 32 KiB, at least 64 KiB). Smaller chunks use less memory and split work
    /// more finely; the output is the same.
    pub fn with_chunk_size(
        inner: W,
        level: Level,
        threads: usize,
        chunk_size: usize,
    ) -> ParallelGzipWriter<W> {
        let mode = match parallel_params(level) {
            Some(params) if threads >= 2 => {
                let mut engine = Engine::new(params, threads, chunk_size as u64);
                engine.bw.out.extend_from_slice(&header(level));
                Mode::Parallel(Box::new(Par {
                    engine,
                    pending: Vec::new(),
                    base: 0,
                    bounds: Vec::new(),
                }))
            }
            _ => {
                let mut c = Compressor::new(level);
                c.bw.out.extend_from_slice(&header(level));
                Mode::Serial(Box::new(c))
            }
        };
        ParallelGzipWriter {
            inner: Some(inner),
            mode,
            crc: crc32fast::Hasher::new(),
            size: 0,
            poisoned: false,
        }
    }

    fn out(&mut self) -> &mut Vec<u8> {
        match &mut self.mode {
            Mode::Serial(c) => &mut c.bw.out,
            Mode::Parallel(p) => &mut p.engine.bw.out,
        }
    }

    fn drain(&mut self, min: usize) -> io::Result<()> {
        if self.out().len() < min {
            return Ok(());
        }
        let Some(mut inner) = self.inner.take() else {
            return Err(io::Error::other("goflate: writer already finished"));
        };
        let res = inner.write_all(self.out());
        self.inner = Some(inner);
        if let Err(e) = res {
            self.poisoned = true;
            return Err(e);
        }
        self.out().clear();
        Ok(())
    }

    fn check(&self) -> io::Result<()> {
        if self.poisoned {
            return Err(io::Error::other("goflate: writer failed earlier"));
        }
        Ok(())
    }

    /// Uncompressed bytes written so far.
    pub fn bytes_in(&self) -> u64 {
        self.size
    }

    /// Ends the stream, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.check()?;
        match &mut self.mode {
            Mode::Serial(c) => c.close(),
            Mode::Parallel(p) => {
                p.process(true);
            }
        }
        let t = trailer(self.crc.clone().finalize(), self.size);
        self.out().extend_from_slice(&t);
        self.drain(0)?;
        self.inner
            .take()
            .ok_or_else(|| io::Error::other("goflate: writer already finished"))
    }
}

impl<W: Write> Write for ParallelGzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        if buf.is_empty() {
            return Ok(0);
        }
        self.crc.update(buf);
        self.size += buf.len() as u64;
        match &mut self.mode {
            Mode::Serial(c) => c.write(buf),
            Mode::Parallel(p) => {
                // Take big writes a batch at a time so that the buffer stays small; the
                // write's end is its only boundary.
                let step = p.engine.batch_bytes() as usize;
                let mut rest = buf;
                while !rest.is_empty() {
                    let n = rest.len().min(step);
                    p.pending.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    let end = p.base + p.pending.len() as u64;
                    if rest.is_empty() {
                        p.bounds.push(end);
                    }
                    if end.saturating_sub(p.engine.keep_from())
                        >= p.engine.batch_bytes() + 2 * 65536
                    {
                        p.process(false);
                        p.compact();
                    }
                }
            }
        }
        self.drain(1 << 16)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.drain(0)?;
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

/// Compresses `data` (as one `Write`) into a gzip member on `threads` threads; the bytes
/// equal [`gzip`](crate::gzip)`(data, level)`.
pub fn gzip_parallel(data: &[u8], level: Level, threads: usize) -> Vec<u8> {
    gzip_parallel_chunked(data, level, threads, DEFAULT_CHUNK_SIZE)
}

/// [`gzip_parallel`] with a chosen chunk size (see [`ParallelGzipWriter::with_chunk_size`]).
pub fn gzip_parallel_chunked(
    data: &[u8],
    level: Level,
    threads: usize,
    chunk_size: usize,
) -> Vec<u8> {
    let Some(params) = parallel_params(level).filter(|_| threads >= 2) else {
        return crate::gzip(data, level);
    };
    let mut engine = Engine::new(params, threads, chunk_size as u64);
    engine.bw.out.reserve(data.len() / 3 + 64);
    engine.bw.out.extend_from_slice(&header(level));
    let bounds = [data.len() as u64];
    engine.process(&Input {
        data,
        base: 0,
        bounds: &bounds,
        last: true,
    });
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    let mut out = std::mem::take(&mut engine.bw.out);
    out.extend_from_slice(&trailer(crc.finalize(), data.len() as u64));
    out
}
