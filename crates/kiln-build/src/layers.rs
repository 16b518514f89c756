//! Applying existing layer tars (base image layers) to a tree, with OCI whiteouts, and
//! refusing entries that would leave the root.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use kiln_layer::tar::{typeflag, TarReader, Timestamp};

use crate::tree::{join, new_inode, parent, Content, LayerBlob, Meta, Node, Special, Tree};

/// Why a layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("layer {layer}: {source}")]
    Tar {
        layer: String,
        source: kiln_layer::TarError,
    },
    #[error("layer {layer}: {source}")]
    Io {
        layer: String,
        source: std::io::Error,
    },
    #[error("layer {layer}: entry {entry:?}: {message}")]
    Entry {
        layer: String,
        entry: String,
        message: String,
    },
}

impl ApplyError {
    /// Whether the layer is valid but holds what kiln cannot handle (BuildKit could).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            ApplyError::Tar {
                source: kiln_layer::TarError::Unsupported { .. },
                ..
            }
        )
    }
}

/// Cleans a tar entry name into a relative tree path; `None` if it would climb out.
pub fn clean_entry_name(name: &[u8]) -> Option<Vec<u8>> {
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

/// Opens a layer blob for reading its tar: gzip (by magic number) is decompressed.
/// Returns the reader and whether the blob is gzip.
pub fn open_layer_blob(path: &Path) -> std::io::Result<(Box<dyn Read>, bool)> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 2];
    let gzip = kiln_layer::tar::read_full(&mut f, &mut magic)? == 2 && magic == [0x1f, 0x8b];
    let f = File::open(path)?;
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f)))
    } else {
        Box::new(BufReader::new(f))
    };
    Ok((reader, gzip))
}

/// Applies the layer blob at `path` (gzip or plain tar) to `tree`.
pub fn apply_layer_file(tree: &mut Tree, path: &Path, name: &str) -> Result<(), ApplyError> {
    let io = |source| ApplyError::Io {
        layer: name.to_string(),
        source,
    };
    let (reader, gzip) = open_layer_blob(path).map_err(io)?;
    let blob = Arc::new(LayerBlob {
        path: path.to_path_buf(),
        gzip,
    });
    apply_layer(tree, reader, Some(blob), name)
}

/// Applies a layer tar stream to `tree`. File contents refer to `blob` (offsets into its
/// uncompressed stream); without a blob, contents are not kept.
pub fn apply_layer<R: Read>(
    tree: &mut Tree,
    reader: R,
    blob: Option<Arc<LayerBlob>>,
    name: &str,
) -> Result<(), ApplyError> {
    let mut tr = TarReader::new(reader);
    // Paths this layer wrote: an opaque marker hides only what lower layers had.
    let mut written: HashSet<Vec<u8>> = HashSet::new();
    loop {
        let h = match tr.next_header() {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(source) => {
                return Err(ApplyError::Tar {
                    layer: name.to_string(),
                    source,
                })
            }
        };
        let entry = crate::tree::shorten(&h.name);
        let err = |message: &str| ApplyError::Entry {
            layer: name.to_string(),
            entry: entry.clone(),
            message: message.to_string(),
        };
        if h.typeflag == typeflag::X_GLOBAL_HEADER {
            continue;
        }
        let path =
            clean_entry_name(&h.name).ok_or_else(|| err("the path leaves the root (\"..\")"))?;
        if path.is_empty() {
            continue;
        }
        let base = crate::tree::base(&path).to_vec();
        let dir = parent(&path).unwrap_or(b"").to_vec();
        if base == b".wh..wh..opq" {
            if let Some(Node::Dir { children, .. }) = tree.get_mut(&dir) {
                std::sync::Arc::make_mut(children).retain(|k, _| written.contains(&join(&dir, k)));
            }
            continue;
        }
        if let Some(hidden) = base.strip_prefix(b".wh.") {
            tree.delete(&join(&dir, hidden));
            continue;
        }
        // Missing parents are created as plain directories (as extraction tools do).
        if tree.get(&dir).is_none() {
            let mut cur = Vec::new();
            for c in dir.split(|&b| b == b'/') {
                cur = join(&cur, c);
                if tree.get(&cur).is_none() {
                    tree.put(&cur, Node::dir(Meta::new(0o755, 0, 0, Timestamp::EPOCH)))
                        .map_err(|e| err(&e.to_string()))?;
                }
            }
        }
        if !matches!(tree.get(&dir), Some(Node::Dir { .. })) {
            return Err(err("its parent is not a directory"));
        }
        let mut meta = Meta::new(
            (h.mode & 0o7777) as u32,
            u32::try_from(h.uid).map_err(|_| err("uid out of range"))?,
            u32::try_from(h.gid).map_err(|_| err("gid out of range"))?,
            h.mtime.unwrap_or(Timestamp::EPOCH),
        );
        meta.capability = h
            .pax_records
            .get(b"SCHILY.xattr.security.capability".as_slice())
            .cloned();
        let existing_dir = matches!(tree.get(&path), Some(Node::Dir { .. }));
        let node = match h.typeflag {
            typeflag::DIR => {
                if existing_dir {
                    let n = tree.get_mut(&path).expect("checked");
                    *n.meta_mut() = meta;
                    written.insert(path);
                    continue;
                }
                Node::dir(meta)
            }
            typeflag::REG | typeflag::REG_A | typeflag::CONT => Node::File {
                meta,
                size: u64::try_from(h.size).map_err(|_| err("negative size"))?,
                content: match &blob {
                    Some(b) => Content::Layer {
                        layer: b.clone(),
                        offset: tr.offset(),
                        len: h.size as u64,
                    },
                    None => Content::Bytes(Arc::from(&b""[..])),
                },
                inode: new_inode(),
            },
            typeflag::LINK => {
                let target = clean_entry_name(&h.linkname)
                    .ok_or_else(|| err("the hard link target leaves the root"))?;
                match tree.get(&target) {
                    Some(n @ Node::File { .. }) => n.clone(),
                    Some(_) => return Err(err("hard link to something that is not a file")),
                    None => return Err(err("hard link to a path that does not exist")),
                }
            }
            typeflag::SYMLINK => Node::Symlink {
                meta,
                target: h.linkname.clone(),
            },
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
                return Err(err(&format!("unsupported entry type {:?}", other as char)));
            }
        };
        tree.put(&path, node).map_err(|e| err(&e.to_string()))?;
        written.insert(path);
    }
    Ok(())
}
