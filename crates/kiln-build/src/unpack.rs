//! `ADD` of local archives: detection as Docker's `DecompressStream` + `tar.Reader` do it
//! (gzip, bzip2, xz, zstd or plain, and a valid first tar header), and extraction with the
//! rules of Docker's `archive.Untar` that decide the resulting tree: owners and modes from
//! the archive, parent directories created as root 0755 "now", existing entries replaced
//! unless both are directories, directory times applied after all entries, and no entry or
//! link may leave the destination.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_layer::tar::{typeflag, TarReader, Timestamp};

use crate::copy::{mkdir_all, Touched};
use crate::tree::{
    build_time, join, new_inode, parent, Content, LayerBlob, Meta, Node, Special, Tree,
};

/// Compression of an archive, by magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveCompression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

pub fn detect(head: &[u8]) -> ArchiveCompression {
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        ArchiveCompression::Gzip
    } else if head.starts_with(b"BZh") {
        ArchiveCompression::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        ArchiveCompression::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        ArchiveCompression::Zstd
    } else {
        ArchiveCompression::None
    }
}

/// Why an archive could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("{archive}: {source}")]
    Io { archive: String, source: io::Error },
    #[error("{archive}: {source}")]
    Tar {
        archive: String,
        source: kiln_layer::TarError,
    },
    #[error("{archive}: entry {entry:?} would be written outside the destination")]
    Breakout { archive: String, entry: String },
    #[error("{archive}: entry {entry:?}: {message}")]
    Entry {
        archive: String,
        entry: String,
        message: String,
    },
}

/// Decompresses the file `content` (of `size` bytes) into a temp file in `tmp` when it is
/// an archive, returning the path of the plain tar. `Ok(None)`: not an archive, copy it.
pub fn as_archive(
    content: &Content,
    tmp: &Path,
    name: &str,
) -> Result<Option<PathBuf>, UnpackError> {
    let ioerr = |source| UnpackError::Io {
        archive: name.to_string(),
        source,
    };
    let mut r = content.open().map_err(ioerr)?;
    let mut head = [0u8; 6];
    let n = kiln_layer::tar::read_full(&mut r, &mut head).map_err(ioerr)?;
    let kind = detect(&head[..n]);
    let chained = io::Cursor::new(head[..n].to_vec()).chain(r);
    let mut out = tempfile::Builder::new()
        .prefix("add-")
        .suffix(".tar")
        .tempfile_in(tmp)
        .map_err(ioerr)?;
    let res = match kind {
        ArchiveCompression::None => io::copy(&mut { chained }, out.as_file_mut()).map(|_| ()),
        ArchiveCompression::Gzip => io::copy(
            &mut flate2::read::MultiGzDecoder::new(BufReader::new(chained)),
            out.as_file_mut(),
        )
        .map(|_| ()),
        ArchiveCompression::Bzip2 => io::copy(
            &mut bzip2::read::MultiBzDecoder::new(BufReader::new(chained)),
            out.as_file_mut(),
        )
        .map(|_| ()),
        ArchiveCompression::Xz => {
            let mut w = io::BufWriter::new(out.as_file_mut());
            lzma_rs::xz_decompress(&mut BufReader::new(chained), &mut w)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))
                .and_then(|_| w.flush())
        }
        ArchiveCompression::Zstd => {
            ruzstd::decoding::StreamingDecoder::new(BufReader::new(chained))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
                .and_then(|mut d| io::copy(&mut d, out.as_file_mut()).map(|_| ()))
        }
    };
    if res.is_err() {
        // Not decompressible: Docker treats it as a plain file.
        return Ok(None);
    }
    let f = out.as_file_mut();
    f.seek(SeekFrom::Start(0)).map_err(ioerr)?;
    let first = TarReader::new(BufReader::new(&mut *f)).next_header();
    if !matches!(first, Ok(Some(_))) {
        return Ok(None);
    }
    let (_, path) = out.keep().map_err(|e| ioerr(e.error))?;
    Ok(Some(path))
}

/// Go's `filepath.Clean` on a relative entry name; `None` when it climbs above the start.
fn clean_rel(name: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            _ => parts.push(c),
        }
    }
    Some(parts.join(&b'/'))
}

/// Extracts the plain tar at `tar_path` into `dest` (a resolved directory path) of `dst`.
pub fn untar_into(
    tar_path: &Path,
    archive_name: &str,
    dst: &mut Tree,
    dest: &[u8],
    touched: &mut Touched,
) -> Result<(), UnpackError> {
    let ioerr = |source| UnpackError::Io {
        archive: archive_name.to_string(),
        source,
    };
    let blob = Arc::new(LayerBlob {
        path: tar_path.to_path_buf(),
        gzip: false,
    });
    let file = File::open(tar_path).map_err(ioerr)?;
    let mut tr = TarReader::new(BufReader::new(file));
    let mut dir_times: Vec<(Vec<u8>, Timestamp)> = Vec::new();
    loop {
        let h = match tr.next_header() {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(source) => {
                return Err(UnpackError::Tar {
                    archive: archive_name.to_string(),
                    source,
                })
            }
        };
        let entry_name = crate::tree::shorten(&h.name);
        let entry_err = |message: String| UnpackError::Entry {
            archive: archive_name.to_string(),
            entry: entry_name.clone(),
            message,
        };
        if h.typeflag == typeflag::X_GLOBAL_HEADER {
            continue;
        }
        let rel = clean_rel(&h.name).ok_or_else(|| UnpackError::Breakout {
            archive: archive_name.to_string(),
            entry: entry_name.clone(),
        })?;
        let path = join(dest, &rel);
        if rel.is_empty() {
            // The archive's own root: the destination already exists.
            continue;
        }
        let parent_path = parent(&path).unwrap_or(b"").to_vec();
        if dst.get(&parent_path).is_none() {
            mkdir_all(dst, &parent_path, None, touched).map_err(|e| entry_err(e.to_string()))?;
        }
        if !matches!(dst.get(&parent_path), Some(Node::Dir { .. })) {
            return Err(entry_err("its parent is not a directory".into()));
        }
        let existing_is_dir = matches!(dst.get(&path), Some(Node::Dir { .. }));
        if dst.get(&path).is_some() && !(existing_is_dir && h.typeflag == typeflag::DIR) {
            dst.remove(&path);
        }
        let mtime = h.mtime.unwrap_or(Timestamp::EPOCH);
        let meta = Meta::new(
            (h.mode & 0o7777) as u32,
            h.uid.max(0) as u32,
            h.gid.max(0) as u32,
            mtime,
        );
        let node = match h.typeflag {
            typeflag::DIR => {
                dir_times.push((path.clone(), mtime));
                if existing_is_dir {
                    let n = dst.get_mut(&path).expect("checked above");
                    let m = n.meta_mut();
                    m.mode = meta.mode;
                    m.uid = meta.uid;
                    m.gid = meta.gid;
                    touched.insert(path.clone());
                    continue;
                }
                Node::dir(Meta {
                    mtime: build_time(),
                    ..meta
                })
            }
            typeflag::REG | typeflag::REG_A | typeflag::CONT => Node::File {
                meta,
                size: h.size as u64,
                content: Content::Layer {
                    layer: blob.clone(),
                    offset: tr.offset(),
                    len: h.size as u64,
                },
                inode: new_inode(),
            },
            typeflag::LINK => {
                let target_rel = clean_rel(&h.linkname).ok_or_else(|| UnpackError::Breakout {
                    archive: archive_name.to_string(),
                    entry: entry_name.clone(),
                })?;
                let target = join(dest, &target_rel);
                match dst.get(&target) {
                    Some(Node::File {
                        meta: tm,
                        size,
                        content,
                        inode,
                    }) => {
                        let (m, size, content, inode) =
                            (tm.clone(), *size, content.clone(), *inode);
                        let linked = Meta {
                            uid: meta.uid,
                            gid: meta.gid,
                            mode: meta.mode,
                            mtime,
                            ..m
                        };
                        // A hard link shares its target's inode: metadata applied through
                        // either name applies to both.
                        let n = dst.get_mut(&target).expect("present");
                        *n.meta_mut() = linked.clone();
                        Node::File {
                            meta: linked,
                            size,
                            content,
                            inode,
                        }
                    }
                    Some(other) => other.clone(),
                    None => {
                        return Err(entry_err(format!(
                            "hard link target {:?} does not exist",
                            String::from_utf8_lossy(&h.linkname)
                        )))
                    }
                }
            }
            typeflag::SYMLINK => {
                // Docker refuses links whose target leaves the extraction directory.
                let base_dir = parent(&rel).unwrap_or(b"");
                let joined = if h.linkname.starts_with(b"/") {
                    Some(h.linkname[1..].to_vec())
                } else {
                    clean_rel(&join(base_dir, &h.linkname))
                };
                if joined.is_none() {
                    return Err(UnpackError::Breakout {
                        archive: archive_name.to_string(),
                        entry: entry_name.clone(),
                    });
                }
                Node::Symlink {
                    meta: Meta {
                        mode: 0o777,
                        ..meta
                    },
                    target: h.linkname.clone(),
                }
            }
            typeflag::CHAR | typeflag::BLOCK | typeflag::FIFO => Node::Special {
                meta,
                kind: match h.typeflag {
                    typeflag::CHAR => Special::Char,
                    typeflag::BLOCK => Special::Block,
                    _ => Special::Fifo,
                },
                rdev: (h.devmajor as u32, h.devminor as u32),
            },
            other => {
                return Err(entry_err(format!(
                    "unsupported tar entry type {:?}",
                    other as char
                )))
            }
        };
        dst.insert(&path, node)
            .map_err(|e| entry_err(e.to_string()))?;
        touched.insert(path);
    }
    for (path, t) in dir_times {
        if let Some(n) = dst.get_mut(&path) {
            n.meta_mut().mtime = t;
        }
    }
    Ok(())
}
