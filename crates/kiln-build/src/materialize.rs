//! Writing a tree (or the part of it that changed) to disk, as an overlayfs lower directory
//! for the sandbox, and reading a sandbox's upper directory back into the tree.
//!
//! Runs as (namespace) root: owners, modes, times, device nodes and whiteouts are set as
//! the tree says. File contents that live inside layer blobs are extracted in one pass per
//! blob, in offset order, so a base image is decompressed once, not once per file.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_layer::Timestamp;
use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use crate::context::dev_numbers;
use crate::tree::{join, new_inode, Content, LayerBlob, Meta, Node, Special, Tree};

fn rel_path(dest: &Path, rel: &[u8]) -> PathBuf {
    dest.join(std::ffi::OsStr::from_bytes(rel))
}

fn set_times(p: &Path, t: Timestamp) -> io::Result<()> {
    let ts = TimeSpec::new(t.secs, t.nanos as i64);
    utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &ts,
        &ts,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

fn set_owner(p: &Path, m: &Meta) -> io::Result<()> {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        p,
        Some(Uid::from_raw(m.uid)),
        Some(Gid::from_raw(m.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(io::Error::from)
}

/// A delta between the tree a set of lower directories represents and the current tree.
#[derive(Default, Debug)]
pub struct Delta {
    /// Paths (with everything below them) to write.
    pub writes: Vec<Vec<u8>>,
    /// Directories whose own metadata changed (their children are handled separately).
    pub dir_meta: Vec<Vec<u8>>,
    /// Paths to hide with a whiteout.
    pub deletes: Vec<Vec<u8>>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.dir_meta.is_empty() && self.deletes.is_empty()
    }
}

fn same_content(a: &Content, b: &Content) -> bool {
    match (a, b) {
        (Content::Path(x), Content::Path(y)) => x == y,
        (Content::Bytes(x), Content::Bytes(y)) => Arc::ptr_eq(x, y) || x == y,
        (
            Content::Layer {
                layer: l1,
                offset: o1,
                ..
            },
            Content::Layer {
                layer: l2,
                offset: o2,
                ..
            },
        ) => l1.path == l2.path && o1 == o2,
        _ => false,
    }
}

/// Is `a` the very same node as `b` (metadata and content source), ignoring children?
fn identical(a: &Node, b: &Node) -> bool {
    if a.meta() != b.meta() {
        return false;
    }
    match (a, b) {
        (Node::Dir { .. }, Node::Dir { .. }) => true,
        (
            Node::File {
                size: s1,
                content: c1,
                ..
            },
            Node::File {
                size: s2,
                content: c2,
                ..
            },
        ) => s1 == s2 && same_content(c1, c2),
        (Node::Symlink { target: t1, .. }, Node::Symlink { target: t2, .. }) => t1 == t2,
        (
            Node::Special {
                kind: k1, rdev: r1, ..
            },
            Node::Special {
                kind: k2, rdev: r2, ..
            },
        ) => k1 == k2 && r1 == r2,
        _ => false,
    }
}

/// What changed from `old` to `new`.
pub fn delta(old: &Tree, new: &Tree) -> Delta {
    let mut d = Delta::default();
    fn rec(prefix: &[u8], old: &Node, new: &Node, d: &mut Delta) {
        let (Some(oc), Some(nc)) = (old.children(), new.children()) else {
            return;
        };
        // A directory whose entries are still shared with the old tree has not changed
        // below it (see `tree::Children`).
        if std::ptr::eq(oc, nc) {
            return;
        }
        for (name, n) in nc.iter() {
            let p = join(prefix, name);
            match oc.get(name) {
                None => d.writes.push(p),
                Some(o) if o.is_dir() && n.is_dir() => {
                    if o.meta() != n.meta() {
                        d.dir_meta.push(p.clone());
                    }
                    rec(&p, o, n, d);
                }
                Some(o) => {
                    if !identical(o, n) {
                        if o.is_dir() != n.is_dir() {
                            d.deletes.push(p.clone());
                        }
                        d.writes.push(p);
                    }
                }
            }
        }
        for name in oc.keys() {
            if !nc.contains_key(name) {
                d.deletes.push(join(prefix, name));
            }
        }
    }
    rec(b"", &old.root, &new.root, &mut d);
    d
}

/// Pending content extraction from a layer blob.
struct Extract {
    dest: PathBuf,
    offset: u64,
    len: u64,
}

/// Writes tree contents to a directory.
struct Writer<'a> {
    dest: &'a Path,
    /// Directories whose metadata is applied at the end (deepest first).
    dirs: Vec<(PathBuf, Meta)>,
    files: Vec<(PathBuf, Meta)>,
    extracts: BTreeMap<PathBuf, (Arc<LayerBlob>, Vec<Extract>)>,
    links: HashMap<u64, PathBuf>,
}

impl Writer<'_> {
    fn node(&mut self, rel: &[u8], node: &Node, recurse: bool) -> io::Result<()> {
        let p = rel_path(self.dest, rel);
        match node {
            Node::Dir { meta, children } => {
                match fs::symlink_metadata(&p) {
                    Ok(md) if md.is_dir() => {}
                    _ => fs::create_dir(&p)?,
                }
                self.dirs.push((p, meta.clone()));
                if recurse {
                    for (name, child) in children.iter() {
                        self.node(&join(rel, name), child, true)?;
                    }
                }
            }
            Node::File {
                meta,
                content,
                inode,
                size,
            } => {
                if let Some(first) = self.links.get(inode) {
                    fs::hard_link(first, &p)?;
                    return Ok(());
                }
                self.links.insert(*inode, p.clone());
                match content {
                    Content::Layer { layer, offset, len } => {
                        File::create(&p)?;
                        self.extracts
                            .entry(layer.path.clone())
                            .or_insert_with(|| (layer.clone(), Vec::new()))
                            .1
                            .push(Extract {
                                dest: p.clone(),
                                offset: *offset,
                                len: (*len).min(*size),
                            });
                    }
                    other => {
                        let mut r = other.open()?.take(*size);
                        let mut f = File::create(&p)?;
                        io::copy(&mut r, &mut f)?;
                    }
                }
                self.files.push((p, meta.clone()));
            }
            Node::Symlink { meta, target } => {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &p)?;
                set_owner(&p, meta)?;
                set_times(&p, meta.mtime)?;
            }
            Node::Special { meta, kind, rdev } => {
                let kind_flag = match kind {
                    Special::Char => SFlag::S_IFCHR,
                    Special::Block => SFlag::S_IFBLK,
                    Special::Fifo => SFlag::S_IFIFO,
                };
                let dev = nix::sys::stat::makedev(rdev.0 as u64, rdev.1 as u64);
                mknod(&p, kind_flag, Mode::from_bits_truncate(meta.mode), dev)
                    .map_err(io::Error::from)?;
                self.files.push((p, meta.clone()));
            }
        }
        Ok(())
    }

    fn whiteout(&mut self, rel: &[u8]) -> io::Result<()> {
        let p = rel_path(self.dest, rel);
        if fs::symlink_metadata(&p).is_ok() {
            fs::remove_file(&p).or_else(|_| fs::remove_dir_all(&p))?;
        }
        mknod(&p, SFlag::S_IFCHR, Mode::empty(), 0).map_err(io::Error::from)
    }

    fn finish(mut self) -> io::Result<()> {
        for (_, (blob, mut jobs)) in std::mem::take(&mut self.extracts) {
            jobs.sort_by_key(|j| j.offset);
            let f = File::open(&blob.path)?;
            let mut r: Box<dyn Read> = if blob.gzip {
                Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f)))
            } else {
                Box::new(BufReader::new(f))
            };
            let mut pos = 0u64;
            for j in jobs {
                if j.offset < pos {
                    // Two paths share one member (hard links are written as links, so this
                    // is rare): read it again from a fresh stream.
                    let mut c = Content::Layer {
                        layer: blob.clone(),
                        offset: j.offset,
                        len: j.len,
                    }
                    .open()?;
                    io::copy(&mut c, &mut File::create(&j.dest)?)?;
                    continue;
                }
                io::copy(&mut (&mut r).take(j.offset - pos), &mut io::sink())?;
                let mut out = File::create(&j.dest)?;
                let n = io::copy(&mut (&mut r).take(j.len), &mut out)?;
                out.flush()?;
                pos = j.offset + n;
            }
        }
        for (p, m) in &self.files {
            set_owner(p, m)?;
            fs::set_permissions(p, fs::Permissions::from_mode(m.mode))?;
            if let Some(cap) = &m.capability {
                // Best effort: file capabilities need privileges a user namespace may lack.
                let _ = xattr::set(p, "security.capability", cap);
            }
            set_times(p, m.mtime)?;
        }
        self.dirs
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.as_os_str().len()));
        for (p, m) in &self.dirs {
            set_owner(p, m)?;
            fs::set_permissions(p, fs::Permissions::from_mode(m.mode))?;
            set_times(p, m.mtime)?;
        }
        Ok(())
    }
}

/// Writes the whole tree into the empty directory `dest` (its root takes the tree root's
/// metadata).
pub fn write_full(tree: &Tree, dest: &Path) -> io::Result<()> {
    let mut w = Writer {
        dest,
        dirs: Vec::new(),
        files: Vec::new(),
        extracts: BTreeMap::new(),
        links: HashMap::new(),
    };
    w.dirs.push((dest.to_path_buf(), tree.root.meta().clone()));
    if let Some(children) = tree.root.children() {
        for (name, child) in children {
            w.node(name, child, true)?;
        }
    }
    w.finish()
}

/// Writes `delta` of `tree` into the empty directory `dest` as an overlay layer: changed
/// paths with their parent directories (current metadata), whiteouts for deletions.
pub fn write_delta(tree: &Tree, d: &Delta, dest: &Path) -> io::Result<()> {
    let mut w = Writer {
        dest,
        dirs: Vec::new(),
        files: Vec::new(),
        extracts: BTreeMap::new(),
        links: HashMap::new(),
    };
    w.dirs.push((dest.to_path_buf(), tree.root.meta().clone()));
    let mut parents = std::collections::BTreeSet::new();
    let all: Vec<&Vec<u8>> = d
        .writes
        .iter()
        .chain(&d.deletes)
        .chain(&d.dir_meta)
        .collect();
    for p in &all {
        let mut cur = crate::tree::parent(p);
        while let Some(c) = cur {
            if c.is_empty() {
                break;
            }
            parents.insert(c.to_vec());
            cur = crate::tree::parent(c);
        }
    }
    for p in d.dir_meta.iter() {
        parents.insert(p.clone());
    }
    let mut parents: Vec<Vec<u8>> = parents.into_iter().collect();
    parents.sort_by_key(|p| p.iter().filter(|&&b| b == b'/').count());
    for p in &parents {
        if let Some(n @ Node::Dir { .. }) = tree.get(p) {
            w.node(p, n, false)?;
        }
    }
    for p in &d.deletes {
        w.whiteout(p)?;
    }
    for p in &d.writes {
        if let Some(n) = tree.get(p) {
            if n.is_dir() {
                // A directory replacing something else: hide the lower content entirely.
                let _ = fs::remove_file(rel_path(dest, p));
            }
            w.node(p, n, true)?;
        }
    }
    w.finish()
}

/// Reads a sandbox's upper directory into `tree`: whiteouts delete, opaque directories
/// drop the children they hide, everything else takes the metadata (and, for files, the
/// content) found in the upper directory.
pub fn apply_upper(tree: &mut Tree, upper: &Path) -> io::Result<()> {
    let mut inodes: HashMap<(u64, u64), u64> = HashMap::new();
    fn meta_of(md: &fs::Metadata, p: &Path) -> Meta {
        let mut m = Meta::new(
            md.mode() & 0o7777,
            md.uid(),
            md.gid(),
            Timestamp {
                secs: md.mtime(),
                nanos: md.mtime_nsec() as u32,
            },
        );
        m.capability = xattr::get(p, "security.capability").ok().flatten();
        m
    }
    fn is_opaque(p: &Path) -> bool {
        ["trusted.overlay.opaque", "user.overlay.opaque"]
            .iter()
            .any(|k| xattr::get(p, k).ok().flatten().as_deref() == Some(b"y"))
    }
    fn rec(
        tree: &mut Tree,
        dir: &Path,
        rel: &[u8],
        inodes: &mut HashMap<(u64, u64), u64>,
    ) -> io::Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let name = e.file_name().as_bytes().to_vec();
            let r = join(rel, &name);
            let md = fs::symlink_metadata(&p)?;
            let ft = md.file_type();
            use std::os::unix::fs::FileTypeExt;
            if ft.is_char_device() && md.rdev() == 0 {
                tree.delete(&r);
                continue;
            }
            let meta = meta_of(&md, &p);
            if ft.is_dir() {
                let opaque = is_opaque(&p);
                match tree.get_mut(&r) {
                    Some(n @ Node::Dir { .. }) => {
                        *n.meta_mut() = meta;
                        if opaque {
                            if let Node::Dir { children, .. } = n {
                                *children = Default::default();
                            }
                        }
                    }
                    _ => {
                        tree.delete(&r);
                        tree.put(&r, Node::dir(meta))
                            .map_err(|e| io::Error::other(e.to_string()))?;
                    }
                }
                rec(tree, &p, &r, inodes)?;
                continue;
            }
            let node = if ft.is_file() {
                let inode = *inodes.entry((md.dev(), md.ino())).or_insert_with(new_inode);
                Node::File {
                    meta,
                    size: md.len(),
                    content: Content::Path(p.clone()),
                    inode,
                }
            } else if ft.is_symlink() {
                Node::Symlink {
                    meta,
                    target: fs::read_link(&p)?.as_os_str().as_bytes().to_vec(),
                }
            } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
                Node::Special {
                    meta,
                    kind: if ft.is_fifo() {
                        Special::Fifo
                    } else if ft.is_char_device() {
                        Special::Char
                    } else {
                        Special::Block
                    },
                    rdev: dev_numbers(md.rdev()),
                }
            } else {
                continue;
            };
            tree.put(&r, node)
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        Ok(())
    }
    rec(tree, upper, b"", &mut inodes)
}
