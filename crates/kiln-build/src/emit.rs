//! From a step's changes to layer bytes, as containerd's `ChangeWriter` (BuildKit's layer
//! writer) and BuildKit's rewrite-timestamp pass produce them: changed entries in walk order,
//! each preceded by any ancestor directory not yet written (with its current metadata),
//! whiteouts as empty `.wh.` files with mtime 0, hard links to the first path written, and
//! every mtime truncated to seconds and clamped to SOURCE_DATE_EPOCH.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use kiln_layer::order::cmp_paths;
use kiln_layer::tar::{typeflag, Header, PaxRecords, Timestamp};
use kiln_layer::{LayerWriter, TarError};

use crate::copy::Touched;
use crate::tree::{base, parent, Node, Special, Tree};

/// What happened to a path in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Add,
    Modify,
    Delete,
}

/// One change of a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: Vec<u8>,
    pub kind: ChangeKind,
}

/// The changes between `before` and `after` among the paths a step touched, with BuildKit's
/// rule for unchanged entries (`sameDirent`), in layer order. A deleted directory is one
/// deletion, not one per child.
pub fn changes(before: &Tree, after: &Tree, touched: &Touched) -> Vec<Change> {
    let mut out = Vec::new();
    for p in touched {
        match (before.get(p), after.get(p)) {
            (None, Some(_)) => out.push(Change {
                path: p.clone(),
                kind: ChangeKind::Add,
            }),
            (Some(b), Some(a)) => {
                if !b.same_dirent(a) {
                    out.push(Change {
                        path: p.clone(),
                        kind: ChangeKind::Modify,
                    });
                }
            }
            (Some(_), None) => {
                // Only the topmost deleted path is recorded.
                let mut anc = parent(p);
                let mut covered = false;
                while let Some(a) = anc {
                    if a.is_empty() {
                        break;
                    }
                    if after.get(a).is_none() && before.get(a).is_some() {
                        covered = true;
                        break;
                    }
                    anc = parent(a);
                }
                if !covered {
                    out.push(Change {
                        path: p.clone(),
                        kind: ChangeKind::Delete,
                    });
                }
            }
            (None, None) => {}
        }
    }
    out.sort_by(|a, b| cmp_paths(&a.path, &b.path));
    out
}

/// Errors writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error(transparent)]
    Tar(#[from] TarError),
    #[error("reading the content of /{path}: {source}")]
    Content {
        path: String,
        source: std::io::Error,
    },
    #[error("/{0} is listed as a parent directory but is not a directory")]
    NotADirectory(String),
}

/// Seconds-truncated, epoch-clamped mtime.
fn clamp(t: Timestamp, epoch: Timestamp) -> Timestamp {
    t.truncated().clamped(epoch)
}

/// The tar header of a tree node at `path`.
pub fn node_header(path: &[u8], node: &Node, epoch: Timestamp) -> Header {
    let m = node.meta();
    let mut h = Header {
        name: path.to_vec(),
        mode: m.mode as i64,
        uid: m.uid as i64,
        gid: m.gid as i64,
        mtime: Some(clamp(m.mtime, epoch)),
        ..Header::default()
    };
    if let Some(cap) = &m.capability {
        let mut pax = PaxRecords::new();
        pax.insert(b"SCHILY.xattr.security.capability".to_vec(), cap.clone());
        h.pax_records = pax;
    }
    match node {
        Node::Dir { .. } => {
            h.typeflag = typeflag::DIR;
            h.name.push(b'/');
        }
        Node::File { size, .. } => {
            h.typeflag = typeflag::REG;
            h.size = *size as i64;
        }
        Node::Symlink { target, .. } => {
            h.typeflag = typeflag::SYMLINK;
            h.linkname = target.clone();
        }
        Node::Special { kind, rdev, .. } => {
            h.typeflag = match kind {
                Special::Char => typeflag::CHAR,
                Special::Block => typeflag::BLOCK,
                Special::Fifo => typeflag::FIFO,
            };
            if *kind != Special::Fifo {
                h.devmajor = rdev.0 as i64;
                h.devminor = rdev.1 as i64;
            }
        }
    }
    h
}

/// Writes the layer for `changes` (from [`changes`]) with the metadata of `after`.
pub fn write_layer<W: Write>(
    after: &Tree,
    changes: &[Change],
    epoch: Timestamp,
    w: &mut LayerWriter<W>,
) -> Result<(), EmitError> {
    let mut written_dirs: HashSet<Vec<u8>> = HashSet::new();
    let mut first_link: HashMap<u64, Vec<u8>> = HashMap::new();
    for c in changes {
        include_parents(
            after,
            parent(&c.path).unwrap_or(b""),
            epoch,
            &mut written_dirs,
            w,
        )?;
        match c.kind {
            ChangeKind::Delete => {
                let mut name = parent(&c.path).unwrap_or(b"").to_vec();
                if !name.is_empty() {
                    name.push(b'/');
                }
                name.extend_from_slice(b".wh.");
                name.extend_from_slice(base(&c.path));
                w.write_header(&Header {
                    typeflag: typeflag::REG,
                    name,
                    mtime: Some(Timestamp::EPOCH),
                    ..Header::default()
                })?;
            }
            ChangeKind::Add | ChangeKind::Modify => {
                let Some(node) = after.get(&c.path) else {
                    continue;
                };
                let mut h = node_header(&c.path, node, epoch);
                match node {
                    Node::Dir { .. } => {
                        written_dirs.insert(c.path.clone());
                        w.write_header(&h)?;
                    }
                    Node::File { inode, content, .. } => {
                        if let Some(first) = first_link.get(inode) {
                            h.typeflag = typeflag::LINK;
                            h.linkname = first.clone();
                            h.size = 0;
                            w.write_header(&h)?;
                        } else {
                            first_link.insert(*inode, c.path.clone());
                            w.write_header(&h)?;
                            if h.size > 0 {
                                let show = || String::from_utf8_lossy(&c.path).into_owned();
                                let r = content.open().map_err(|e| EmitError::Content {
                                    path: show(),
                                    source: e,
                                })?;
                                w.copy_data(r)?;
                            }
                        }
                    }
                    _ => w.write_header(&h)?,
                }
            }
        }
    }
    Ok(())
}

fn include_parents<W: Write>(
    after: &Tree,
    dir: &[u8],
    epoch: Timestamp,
    written: &mut HashSet<Vec<u8>>,
    w: &mut LayerWriter<W>,
) -> Result<(), EmitError> {
    if dir.is_empty() || written.contains(dir) {
        return Ok(());
    }
    include_parents(after, parent(dir).unwrap_or(b""), epoch, written, w)?;
    let node = after
        .get(dir)
        .filter(|n| n.is_dir())
        .ok_or_else(|| EmitError::NotADirectory(String::from_utf8_lossy(dir).into_owned()))?;
    w.write_header(&node_header(dir, node, epoch))?;
    written.insert(dir.to_vec());
    Ok(())
}
