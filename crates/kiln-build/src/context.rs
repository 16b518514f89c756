//! The build context as BuildKit receives it: the directory's files minus what
//! `.dockerignore` excludes, with owners reset to 0:0 (the client does this), modes and
//! nanosecond mtimes as on disk, symlinks unresolved, hard links kept, no xattrs. The context
//! root itself is created by the daemon at build time, so its mtime is "now".

use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use kiln_layer::Timestamp;

use crate::tree::{build_time, join, new_inode, Content, Meta, Node, Special, Tree};

/// Decides which context paths are sent.
pub trait IgnoreMatcher {
    /// Is `path` (relative, `/`-separated) excluded?
    fn excluded(&self, path: &str, is_dir: bool) -> bool;
    /// For an excluded directory: could an exception pattern re-include something inside?
    fn may_include_inside(&self, dir: &str) -> bool;
}

/// Why the context could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the build context at {path}: {source}")]
pub struct ContextError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> ContextError + '_ {
    move |source| ContextError {
        path: path.to_path_buf(),
        source,
    }
}

/// Loads the context directory `dir` into a tree (metadata only; file bytes are read when a
/// layer is written).
pub fn load(dir: &Path, ignore: Option<&dyn IgnoreMatcher>) -> Result<Tree, ContextError> {
    let md = fs::metadata(dir).map_err(err(dir))?;
    if !md.is_dir() {
        return Err(ContextError {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory"),
        });
    }
    let mut tree = Tree::new();
    tree.root = Node::dir(Meta::new(0o755, 0, 0, build_time()));
    let mut inodes: HashMap<(u64, u64), u64> = HashMap::new();
    let mut children = Default::default();
    walk(dir, b"", ignore, &mut inodes, &mut children)?;
    if let Node::Dir { children: c, .. } = &mut tree.root {
        *c = std::sync::Arc::new(children);
    }
    Ok(tree)
}

type Children = std::collections::BTreeMap<Vec<u8>, Node>;

/// Reads one directory; returns whether anything inside was included.
fn walk(
    dir: &Path,
    rel: &[u8],
    ignore: Option<&dyn IgnoreMatcher>,
    inodes: &mut HashMap<(u64, u64), u64>,
    out: &mut Children,
) -> Result<(), ContextError> {
    for entry in fs::read_dir(dir).map_err(err(dir))? {
        let entry = entry.map_err(err(dir))?;
        let name = entry.file_name().as_bytes().to_vec();
        let path = entry.path();
        let relp = join(rel, &name);
        let rels = String::from_utf8_lossy(&relp).into_owned();
        let md = fs::symlink_metadata(&path).map_err(err(&path))?;
        let ft = md.file_type();
        let excluded = ignore.is_some_and(|m| m.excluded(&rels, ft.is_dir()));
        let meta = Meta::new(
            md.mode() & 0o7777,
            0,
            0,
            Timestamp {
                secs: md.mtime(),
                nanos: md.mtime_nsec() as u32,
            },
        );
        if ft.is_dir() {
            if excluded && !ignore.is_some_and(|m| m.may_include_inside(&rels)) {
                continue;
            }
            let mut children = Children::new();
            walk(&path, &relp, ignore, inodes, &mut children)?;
            if excluded && children.is_empty() {
                continue;
            }
            let children = std::sync::Arc::new(children);
            out.insert(name, Node::Dir { meta, children });
            continue;
        }
        if excluded {
            continue;
        }
        let node = if ft.is_file() {
            let inode = if md.nlink() > 1 {
                *inodes.entry((md.dev(), md.ino())).or_insert_with(new_inode)
            } else {
                new_inode()
            };
            Node::File {
                meta,
                size: md.len(),
                content: Content::Path(path.clone()),
                inode,
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(err(&path))?;
            Node::Symlink {
                meta,
                target: target.as_os_str().as_bytes().to_vec(),
            }
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_fifo() {
                Special::Fifo
            } else if ft.is_char_device() {
                Special::Char
            } else {
                Special::Block
            };
            Node::Special {
                meta,
                kind,
                rdev: dev_numbers(md.rdev()),
            }
        } else {
            // Sockets are not sent.
            continue;
        };
        out.insert(name, node);
    }
    Ok(())
}

/// Linux `major()`/`minor()` of a device number.
pub fn dev_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}
