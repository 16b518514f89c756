//! Which paths a `RUN` changed, decided exactly like BuildKit v0.19.0.
//!
//! * [`changes`] ports the overlay differ (`util/overlay/overlay_linux.go Changes`): walk the
//!   upper dir; a whiteout is a delete (skipped if nothing is hidden), a path that exists in the
//!   lowers is a modify unless [`same_dirent`] says nothing changed, anything else an add; an
//!   opaque directory that hides something is compared child by child against the lowers (one
//!   delete per hidden child, never an opaque marker).
//! * [`tree_changes`] ports containerd continuity's double walk (`fs.Changes`), used when the
//!   command ran on a copied tree instead of an overlay.
//!
//! Both produce changes in layer order: depth first, the names of each directory in byte order
//! (so `a/b` < `a-b` < `a.txt`), which is the order BuildKit writes tar entries in.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::layers::{self, Entry, LayerStack};

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// The path is new.
    Add,
    /// The path existed below and differs now.
    Modify,
    /// The path existed below and is gone (the layer gets a `.wh.` entry).
    Delete,
    /// Only from [`tree_changes`]: an unchanged non-directory with more than one hard link.
    /// It must not be written by itself, but containerd's `ChangeWriter` remembers it so that a
    /// changed path of the same inode seen later is written as a hard link to it.
    Unmodified,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// Relative to the root, no leading `/`.
    pub path: PathBuf,
}

impl Change {
    fn new(kind: ChangeKind, path: PathBuf) -> Change {
        Change { kind, path }
    }
}

/// Changes recorded in an overlayfs `upper` directory on top of `lowers` (top first), with the
/// decisions of BuildKit's overlay differ.
pub fn changes<P: AsRef<Path>>(lowers: &[P], upper: &Path) -> Result<Vec<Change>> {
    let base = LayerStack::overlay(lowers);
    let view = LayerStack::overlay(&[upper]);
    let mut out = Vec::new();
    walk_upper(&base, &view, upper, Path::new(""), &mut out)?;
    Ok(out)
}

/// Changes between the merged `lowers` (top first) and a plain directory `tree` the command ran
/// in, with the decisions of containerd continuity's double walk.
pub fn tree_changes<P: AsRef<Path>>(lowers: &[P], tree: &Path) -> Result<Vec<Change>> {
    let base = LayerStack::overlay(lowers);
    let tree = LayerStack::plain(tree);
    let mut out = Vec::new();
    double_walk(&base, &tree, Path::new(""), true, &mut out)?;
    Ok(out)
}

/// Redirect markers: BuildKit refuses to diff an upper dir that uses `redirect_dir`.
const REDIRECT_XATTRS: [&str; 2] = ["trusted.overlay.redirect", "user.overlay.redirect"];

fn walk_upper(
    base: &LayerStack,
    view: &LayerStack,
    upper: &Path,
    dir: &Path,
    out: &mut Vec<Change>,
) -> Result<()> {
    let full_dir = upper.join(dir);
    let mut names = Vec::new();
    for de in std::fs::read_dir(&full_dir).at("read directory", &full_dir)? {
        names.push(de.at("read directory", &full_dir)?.file_name());
    }
    names.sort();
    for name in names {
        let rel = dir.join(&name);
        let full = upper.join(&rel);
        let Some(meta) = layers::lstat(&full)? else {
            continue;
        };
        if meta.is_dir() {
            for key in REDIRECT_XATTRS {
                if layers::get_xattr(&full, key)?.is_some_and(|v| !v.is_empty()) {
                    return Err(Error::Redirect(full));
                }
            }
        }
        let lower = base.lookup(&rel)?;
        if layers::is_whiteout(&meta) {
            if lower.is_some() {
                out.push(Change::new(ChangeKind::Delete, rel));
            }
            continue;
        }
        let upper_entry = Entry {
            path: full.clone(),
            layer: 0,
            meta,
        };
        match &lower {
            Some(l) => {
                if !same_dirent(l, &upper_entry)? {
                    out.push(Change::new(ChangeKind::Modify, rel.clone()));
                }
            }
            None => out.push(Change::new(ChangeKind::Add, rel.clone())),
        }
        if upper_entry.meta.is_dir() {
            if lower.is_some() && layers::is_opaque(&full)? {
                // Compare the lowers' contents with the upper view's, child by child.
                double_walk_at(base, view, &rel, out)?;
            } else {
                walk_upper(base, view, upper, &rel, out)?;
            }
        }
    }
    Ok(())
}

/// `fs.Changes(base/rel, view/rel)` with the resulting paths rebased onto `rel`.
fn double_walk_at(
    base: &LayerStack,
    view: &LayerStack,
    rel: &Path,
    out: &mut Vec<Change>,
) -> Result<()> {
    let base_is_dir = base.lookup(rel)?.is_some_and(|e| e.meta.is_dir());
    double_walk(base, view, rel, base_is_dir, out)
}

/// Continuity's double walk below `dir` (which is a directory in `b`; in `a` only if `a_is_dir`).
/// A path only in `a` is one delete (its children are not listed), a path only in `b` is an
/// add together with everything below it, a path in both is a modify unless [`same_dirent`].
fn double_walk(
    a: &LayerStack,
    b: &LayerStack,
    dir: &Path,
    a_is_dir: bool,
    out: &mut Vec<Change>,
) -> Result<()> {
    let a_entries = if a_is_dir {
        a.read_dir(dir)?
    } else {
        Vec::new()
    };
    let b_entries = b.read_dir(dir)?;
    let mut ai = a_entries.into_iter().peekable();
    let mut bi = b_entries.into_iter().peekable();
    loop {
        let order = match (ai.peek(), bi.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((an, _)), Some((bn, _))) => an.as_encoded_bytes().cmp(bn.as_encoded_bytes()),
        };
        match order {
            std::cmp::Ordering::Less => {
                let Some((name, _)) = ai.next() else { break };
                out.push(Change::new(ChangeKind::Delete, dir.join(name)));
            }
            std::cmp::Ordering::Greater => {
                let Some((name, be)) = bi.next() else { break };
                let rel = dir.join(name);
                out.push(Change::new(ChangeKind::Add, rel.clone()));
                if be.meta.is_dir() {
                    add_all(b, &rel, out)?;
                }
            }
            std::cmp::Ordering::Equal => {
                let (Some((_, ae)), Some((name, be))) = (ai.next(), bi.next()) else {
                    break;
                };
                let rel = dir.join(name);
                if !same_dirent(&ae, &be)? {
                    out.push(Change::new(ChangeKind::Modify, rel.clone()));
                } else if is_linked(&be.meta) {
                    out.push(Change::new(ChangeKind::Unmodified, rel.clone()));
                }
                if be.meta.is_dir() {
                    double_walk(a, b, &rel, ae.meta.is_dir(), out)?;
                }
            }
        }
    }
    Ok(())
}

/// Everything below directory `dir` of `b`, as adds, in walk order.
fn add_all(b: &LayerStack, dir: &Path, out: &mut Vec<Change>) -> Result<()> {
    for (name, e) in b.read_dir(dir)? {
        let rel = dir.join(name);
        out.push(Change::new(ChangeKind::Add, rel.clone()));
        if e.meta.is_dir() {
            add_all(b, &rel, out)?;
        }
    }
    Ok(())
}

/// Continuity's `isLinked`: a non-directory with more than one link.
fn is_linked(meta: &Metadata) -> bool {
    !meta.is_dir() && meta.nlink() > 1
}

/// BuildKit's `sameDirent` (= continuity's `sameFile`): `a` is the lower entry, `b` the new one.
/// Same inode, or same `st_mode`, uid, gid, rdev and `security.capability`, and for
/// non-directories the same size and mtime (seconds, then nanoseconds; when both nanosecond
/// parts are 0 the mtime may have been truncated by a tar, so symlink targets or contents are
/// compared). Directory mtimes are deliberately not compared.
pub fn same_dirent(a: &Entry, b: &Entry) -> Result<bool> {
    let (am, bm) = (&a.meta, &b.meta);
    if am.dev() == bm.dev() && am.ino() == bm.ino() {
        return Ok(true);
    }
    if am.mode() != bm.mode()
        || am.uid() != bm.uid()
        || am.gid() != bm.gid()
        || am.rdev() != bm.rdev()
    {
        return Ok(false);
    }
    let cap_a = layers::get_xattr(&a.path, "security.capability")?.unwrap_or_default();
    let cap_b = layers::get_xattr(&b.path, "security.capability")?.unwrap_or_default();
    if cap_a != cap_b {
        return Ok(false);
    }
    if am.is_dir() {
        return Ok(true);
    }
    if am.size() != bm.size() || am.mtime() != bm.mtime() {
        return Ok(false);
    }
    if am.mtime_nsec() == 0 && bm.mtime_nsec() == 0 {
        if am.file_type().is_symlink() {
            let ta = std::fs::read_link(&a.path).at("read link", &a.path)?;
            let tb = std::fs::read_link(&b.path).at("read link", &b.path)?;
            return Ok(ta == tb);
        }
        if am.size() == 0 {
            return Ok(true);
        }
        return same_content(&a.path, &b.path);
    }
    Ok(am.mtime_nsec() == bm.mtime_nsec())
}

/// Byte-wise comparison of two regular files of equal size.
fn same_content(pa: &Path, pb: &Path) -> Result<bool> {
    let mut fa = File::open(pa).at("open", pa)?;
    let mut fb = File::open(pb).at("open", pb)?;
    for (p, f) in [(pa, &fa), (pb, &fb)] {
        if !f.metadata().at("stat", p)?.is_file() {
            return Err(Error::Io {
                op: "compare",
                path: p.to_path_buf(),
                source: std::io::Error::other("not a regular file"),
            });
        }
    }
    let mut ba = vec![0u8; 32 * 1024];
    let mut bb = vec![0u8; 32 * 1024];
    loop {
        let na = read_full(&mut fa, &mut ba).at("read", pa)?;
        let nb = read_full(&mut fb, &mut bb).at("read", pb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na < ba.len() {
            return Ok(true);
        }
    }
}

/// Fills `buf` as far as the file allows (Go `io.ReadFull` without the error).
fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
