//! Layer compression. The choice of gzip implementation lives here and nowhere else.

use std::io::{self, Write};

/// How a layer blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip with Go's header bytes (`1f 8b 08 00 00000000 00 ff`), at Go's default level.
    Gzip,
    /// The layer tar itself; the blob digest equals the diff_id.
    Uncompressed,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Uncompressed => "uncompressed",
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "uncompressed" => Ok(Compression::Uncompressed),
            other => Err(format!(
                "unknown compression {other:?} (expected gzip or uncompressed)"
            )),
        }
    }
}

/// A streaming compressor for one blob.
///
/// gzip is goflate's port of Go's `compress/gzip` at the default level, run on all cores
/// (its parallel writer gives the serial writer's bytes). Each `write` call is one Go `Write`:
/// nothing may buffer between the tar writer and this compressor (see goflate's docs on
/// write boundaries).
pub enum Compressor<W: Write> {
    Gzip(goflate::ParallelGzipWriter<W>),
    None(W),
}

/// Threads for gzip: the machine's cores.
fn gzip_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl<W: Write> Compressor<W> {
    pub fn new(w: W, compression: Compression) -> Self {
        match compression {
            Compression::Gzip => Compressor::Gzip(goflate::ParallelGzipWriter::new(
                w,
                goflate::Level::DEFAULT,
                gzip_threads(),
            )),
            Compression::Uncompressed => Compressor::None(w),
        }
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(g) => g.finish(),
            Compressor::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(g) => g.write(buf),
            Compressor::None(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Compressor::Gzip(g) => g.write_all(buf),
            Compressor::None(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(g) => g.flush(),
            Compressor::None(w) => w.flush(),
        }
    }
}
