//! A streaming tar writer with Go's `archive/tar` bytes and write pattern.
//!
//! Besides the bytes, the *sequence of writes* mirrors Go's writer (header blocks, PAX data,
//! padding and file data in 32 KiB chunks as `io.Copy` moves them, two separate end blocks),
//! because BuildKit's gzip stream sees exactly those writes; see the goflate crate docs on
//! whether write boundaries can change deflate output.

use std::io::{Read, Write};

use super::header::{block_padding, is_header_only, Header, BLOCK};
use super::TarError;

/// Chunk size Go's `io.Copy` uses, and so the size of file-data writes.
pub const COPY_CHUNK: usize = 32 * 1024;

const ZERO_BLOCK: [u8; BLOCK] = [0; BLOCK];

/// Writes tar entries to `W`. Call [`TarWriter::write_header`], then supply exactly the
/// entry's data, and [`TarWriter::finish`] at the end.
pub struct TarWriter<W: Write> {
    w: W,
    remaining: u64,
    pad: usize,
    name: Vec<u8>,
}

impl<W: Write> TarWriter<W> {
    pub fn new(w: W) -> Self {
        TarWriter {
            w,
            remaining: 0,
            pad: 0,
            name: Vec::new(),
        }
    }

    fn flush_entry(&mut self) -> Result<(), TarError> {
        if self.remaining > 0 {
            return Err(TarError::Data {
                name: String::from_utf8_lossy(&self.name).into_owned(),
                message: format!("{} bytes of data were never written", self.remaining),
            });
        }
        if self.pad > 0 {
            self.w.write_all(&ZERO_BLOCK[..self.pad])?;
            self.pad = 0;
        }
        Ok(())
    }

    /// Writes a header; the entry's data (`size` bytes unless the type carries none) must
    /// follow before the next header.
    pub fn write_header(&mut self, h: &Header) -> Result<(), TarError> {
        self.flush_entry()?;
        let enc = h.encode()?;
        for (blk, data) in &enc.ext {
            // Each extension header is a file of its own: its padding is written before
            // the next block, as Go's Flush does.
            self.flush_entry()?;
            self.w.write_all(blk)?;
            if !data.is_empty() {
                self.w.write_all(data)?;
            }
            self.pad = block_padding(data.len() as u64);
        }
        if let Some(main) = &enc.main {
            self.flush_entry()?;
            self.w.write_all(main)?;
            self.remaining = if is_header_only(h.typeflag) {
                0
            } else {
                h.size as u64
            };
            self.pad = block_padding(self.remaining);
        }
        self.name.clone_from(&h.name);
        Ok(())
    }

    /// Writes part of the current entry's data.
    pub fn write_data(&mut self, buf: &[u8]) -> Result<(), TarError> {
        if buf.len() as u64 > self.remaining {
            return Err(TarError::Data {
                name: String::from_utf8_lossy(&self.name).into_owned(),
                message: format!(
                    "{} bytes of data given, only {} expected",
                    buf.len(),
                    self.remaining
                ),
            });
        }
        if !buf.is_empty() {
            self.w.write_all(buf)?;
            self.remaining -= buf.len() as u64;
        }
        Ok(())
    }

    /// Copies all remaining data of the current entry from `r`, in Go's `io.Copy` chunks.
    /// It is an error if `r` holds fewer or more bytes than the header promised (a file
    /// that changed while the build read it).
    pub fn copy_data<R: Read>(&mut self, mut r: R) -> Result<(), TarError> {
        let mut buf = vec![0u8; COPY_CHUNK];
        while self.remaining > 0 {
            let want = (self.remaining as usize).min(COPY_CHUNK);
            let got = read_full(&mut r, &mut buf[..want])?;
            if got == 0 {
                return Err(TarError::Data {
                    name: String::from_utf8_lossy(&self.name).into_owned(),
                    message: format!(
                        "source ended {} bytes early (did it change during the build?)",
                        self.remaining
                    ),
                });
            }
            self.write_data(&buf[..got])?;
        }
        let mut probe = [0u8; 1];
        if r.read(&mut probe)? != 0 {
            return Err(TarError::Data {
                name: String::from_utf8_lossy(&self.name).into_owned(),
                message:
                    "source is longer than its recorded size (did it change during the build?)"
                        .into(),
            });
        }
        Ok(())
    }

    /// Ends the archive with two zero blocks and returns the inner writer.
    pub fn finish(mut self) -> Result<W, TarError> {
        self.flush_entry()?;
        self.w.write_all(&ZERO_BLOCK)?;
        self.w.write_all(&ZERO_BLOCK)?;
        Ok(self.w)
    }

    pub fn get_ref(&self) -> &W {
        &self.w
    }
}

/// Reads until `buf` is full or the reader is exhausted.
pub fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
