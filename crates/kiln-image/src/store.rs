//! Content-addressed blob storage: a directory `blobs/sha256/<hex>` (the OCI layout shape),
//! written through temp files that are renamed into place only once their digest is known,
//! so a reader never sees a partial blob.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use kiln_digest::{Digest, HashingWriter};
use tempfile::NamedTempFile;

use crate::ImageError;

/// Anything that can hand out blobs by digest.
pub trait BlobSource {
    /// Opens the blob, or `Ok(None)` when this source does not have it.
    fn open_blob(&self, digest: &Digest) -> io::Result<Option<Box<dyn Read + '_>>>;
}

/// Tries several sources in order (e.g. the build's own store, then a base image layout).
pub struct Sources<'a>(pub Vec<&'a dyn BlobSource>);

impl BlobSource for Sources<'_> {
    fn open_blob(&self, digest: &Digest) -> io::Result<Option<Box<dyn Read + '_>>> {
        for s in &self.0 {
            if let Some(r) = s.open_blob(digest)? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }
}

/// Opens a blob from `source` or fails with an error naming it.
pub fn require_blob<'a>(
    source: &'a dyn BlobSource,
    digest: &Digest,
) -> Result<Box<dyn Read + 'a>, ImageError> {
    source
        .open_blob(digest)?
        .ok_or(ImageError::MissingBlob(*digest))
}

/// A blob directory.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<BlobStore> {
        let root = root.into();
        fs::create_dir_all(root.join("blobs/sha256"))?;
        Ok(BlobStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// A temp file in the store's directory (same file system, so the final rename is
    /// atomic).
    pub fn temp_file(&self) -> io::Result<NamedTempFile> {
        tempfile::Builder::new()
            .prefix(".incoming-")
            .tempfile_in(self.root.join("blobs/sha256"))
    }

    /// Moves a finished temp file into place under `digest`.
    pub fn adopt(&self, tmp: NamedTempFile, digest: &Digest) -> io::Result<PathBuf> {
        let dest = self.path(digest);
        if dest.exists() {
            // Same digest, same bytes: keep the existing file.
            return Ok(dest);
        }
        tmp.persist(&dest).map_err(|e| e.error)?;
        Ok(dest)
    }

    /// Stores `bytes`, returning their digest.
    pub fn put(&self, bytes: &[u8]) -> io::Result<Digest> {
        let digest = Digest::of(bytes);
        if !self.contains(&digest) {
            let mut tmp = self.temp_file()?;
            tmp.write_all(bytes)?;
            self.adopt(tmp, &digest)?;
        }
        Ok(digest)
    }

    /// A writer whose bytes become a blob on [`BlobWriter::commit`].
    pub fn writer(&self) -> io::Result<BlobWriter> {
        let tmp = self.temp_file()?;
        let file = tmp.reopen()?;
        Ok(BlobWriter {
            tmp,
            w: HashingWriter::new(BufWriter::with_capacity(256 * 1024, file)),
        })
    }

    pub fn read(&self, digest: &Digest) -> io::Result<Vec<u8>> {
        fs::read(self.path(digest))
    }
}

impl BlobSource for BlobStore {
    fn open_blob(&self, digest: &Digest) -> io::Result<Option<Box<dyn Read + '_>>> {
        match File::open(self.path(digest)) {
            Ok(f) => Ok(Some(Box::new(f))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A blob being written into a [`BlobStore`].
pub struct BlobWriter {
    tmp: NamedTempFile,
    w: HashingWriter<BufWriter<File>>,
}

impl BlobWriter {
    /// Flushes and renames the blob into place; returns its digest and size.
    pub fn commit(self, store: &BlobStore) -> io::Result<(Digest, u64)> {
        let (buf, digest, size) = self.w.finish();
        buf.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        store.adopt(self.tmp, &digest)?;
        Ok((digest, size))
    }

    /// Like [`BlobWriter::commit`], but refuses (and deletes) the blob unless it has the
    /// expected digest.
    pub fn commit_expecting(self, store: &BlobStore, expected: &Digest) -> Result<u64, ImageError> {
        let (buf, digest, size) = self.w.finish();
        buf.into_inner().map_err(|e| e.into_error())?;
        if digest != *expected {
            return Err(ImageError::DigestMismatch {
                expected: *expected,
                actual: digest,
            });
        }
        store.adopt(self.tmp, &digest)?;
        Ok(size)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}
