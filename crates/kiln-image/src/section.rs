//! A byte range of a file, read as a file of its own (a tarball member, a whole blob file).

use std::borrow::Borrow;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

/// The bytes `[start, start + len)` of a file, owned (`File`) or borrowed (`&File`). Reads
/// are positioned (`pread`), so sections of one file never disturb each other.
#[derive(Debug)]
pub struct FileSection<F = File> {
    file: F,
    start: u64,
    len: u64,
    pos: u64,
}

impl FileSection {
    /// The whole of `file`.
    pub fn whole(file: File) -> io::Result<FileSection> {
        let len = file.metadata()?.len();
        Ok(FileSection::new(file, 0, len))
    }
}

impl<F: Borrow<File>> FileSection<F> {
    pub fn new(file: F, start: u64, len: u64) -> FileSection<F> {
        FileSection {
            file,
            start,
            len,
            pos: 0,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<F: Borrow<File>> Read for FileSection<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self
            .file
            .borrow()
            .read_at(&mut buf[..want], self.start + self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ends before the section does (truncated while being read?)",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl<F: Borrow<File>> Seek for FileSection<F> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_and_seeks_within_its_range() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789").unwrap();
        let mut s = FileSection::new(f, 3, 4);
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert_eq!(out, "3456");
        assert_eq!(s.seek(SeekFrom::End(0)).unwrap(), 4);
        assert_eq!(s.seek(SeekFrom::Start(2)).unwrap(), 2);
        out.clear();
        s.read_to_string(&mut out).unwrap();
        assert_eq!(out, "56");
        assert!(s.seek(SeekFrom::Current(-5)).is_err());
    }

    #[test]
    fn a_file_shorter_than_the_section_is_an_error() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123").unwrap();
        let mut s = FileSection::new(f, 2, 10);
        let mut out = Vec::new();
        let e = s.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
