//! Go 1.23's `compress/gzip` writer framing: a fixed 10-byte header, the deflate stream, and
//! the CRC-32 / size trailer.

use crate::deflate::DeflateWriter;
use crate::level::Level;
use std::io::{self, Write};

/// The header Go writes with a zero `gzip.Header`: no name, comment, extra or mtime, OS 255.
pub(crate) fn header(level: Level) -> [u8; 10] {
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, level.gzip_xfl(), 0xff]
}

/// CRC-32 and length (mod 2^32) of the uncompressed data, little-endian.
pub(crate) fn trailer(crc: u32, size: u64) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&crc.to_le_bytes());
    t[4..].copy_from_slice(&(size as u32).to_le_bytes());
    t
}

/// A gzip writer producing exactly the bytes of Go 1.23's
/// `gzip.NewWriterLevel(w, level)` + `Write`s + `Close`, given the same `Write` calls.
///
/// See [`DeflateWriter`] for how writes, flushes and `finish` behave.
pub struct GzipWriter<W: Write> {
    deflate: DeflateWriter<W>,
    crc: crc32fast::Hasher,
    size: u64,
}

impl<W: Write> GzipWriter<W> {
    /// A gzip writer compressing at `level` into `inner`.
    pub fn new(inner: W, level: Level) -> GzipWriter<W> {
        GzipWriter {
            deflate: DeflateWriter::with_prefix(inner, level, &header(level)),
            crc: crc32fast::Hasher::new(),
            size: 0,
        }
    }

    /// Go's `Flush` (an empty stored block; changes the stream).
    pub fn sync_flush(&mut self) -> io::Result<()> {
        self.deflate.sync_flush()
    }

    /// Ends the stream, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.deflate.finish_in_place()?;
        let t = trailer(self.crc.clone().finalize(), self.size);
        self.deflate.append_raw(&t)?;
        self.deflate.into_inner()
    }

    /// Uncompressed bytes written so far.
    pub fn bytes_in(&self) -> u64 {
        self.size
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.deflate.write(buf)?;
        self.crc.update(buf);
        self.size += buf.len() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.deflate.flush()
    }
}

/// Compresses `data` (as one `Write`) into a gzip member.
pub fn gzip(data: &[u8], level: Level) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    out.extend_from_slice(&header(level));
    out.extend_from_slice(&crate::deflate::deflate(data, level));
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    out.extend_from_slice(&trailer(crc.finalize(), data.len() as u64));
    out
}
