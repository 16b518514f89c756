//! An in-memory model of a stage's root file system.
//!
//! kiln does not need a real file system for FROM/COPY/ADD/WORKDIR steps: it keeps the tree
//! of paths with their metadata and a reference to where each file's bytes live (the build
//! context, a base image layer, an inline heredoc, a sandbox's upper directory). Layers are
//! computed from the paths a step touched, with BuildKit's rules for what counts as changed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::Arc;

use kiln_layer::Timestamp;

/// Times from this base upwards stand for "the moment the build touched it": BuildKit's
/// daemon clock, which is always after SOURCE_DATE_EPOCH and so always clamps to it. Each
/// use is unique so that two such moments never compare equal.
const BUILD_TIME_BASE: i64 = 1 << 60;
static BUILD_CLOCK: AtomicI64 = AtomicI64::new(0);

/// A fresh "now" of the build.
pub fn build_time() -> Timestamp {
    Timestamp::from_secs(BUILD_TIME_BASE + BUILD_CLOCK.fetch_add(1, AtomicOrdering::Relaxed))
}

/// Metadata shared by every kind of node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits plus setuid/setgid/sticky (no file-type bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timestamp,
    /// The `security.capability` xattr, the only one BuildKit's differ looks at.
    pub capability: Option<Vec<u8>>,
}

impl Meta {
    pub fn new(mode: u32, uid: u32, gid: u32, mtime: Timestamp) -> Meta {
        Meta {
            mode,
            uid,
            gid,
            mtime,
            capability: None,
        }
    }
}

/// Where a file's bytes are.
#[derive(Clone, Debug)]
pub enum Content {
    /// A file on disk (build context, sandbox output, extracted archive member).
    Path(PathBuf),
    /// Bytes held in memory (heredocs).
    Bytes(Arc<[u8]>),
    /// A member of a layer: `len` bytes at `offset` in the uncompressed tar of `layer`.
    Layer {
        layer: Arc<LayerBlob>,
        offset: u64,
        len: u64,
    },
}

/// A layer blob on disk that file contents can be read from.
#[derive(Debug)]
pub struct LayerBlob {
    pub path: PathBuf,
    pub gzip: bool,
}

impl Content {
    /// Opens the bytes; the caller reads exactly the node's size.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        match self {
            Content::Path(p) => Ok(Box::new(File::open(p)?)),
            Content::Bytes(b) => Ok(Box::new(io::Cursor::new(b.clone()))),
            Content::Layer { layer, offset, len } => {
                let f = File::open(&layer.path)?;
                let mut r: Box<dyn Read + Send> = if layer.gzip {
                    Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(f)))
                } else {
                    Box::new(io::BufReader::new(f))
                };
                io::copy(&mut (&mut r).take(*offset), &mut io::sink())?;
                Ok(Box::new(r.take(*len)))
            }
        }
    }
}

/// Kinds of special files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    Char,
    Block,
    Fifo,
}

/// A directory's entries, shared between copies of a tree until one of them changes
/// (`Arc::make_mut`): copying a tree (a snapshot before a step, a stage built on another)
/// costs nothing, and a change copies only the directories on its path.
pub type Children = Arc<BTreeMap<Vec<u8>, Node>>;

/// One node of the tree.
#[derive(Clone, Debug)]
pub enum Node {
    Dir {
        meta: Meta,
        children: Children,
    },
    File {
        meta: Meta,
        size: u64,
        content: Content,
        /// Files with the same inode number are hard links of each other.
        inode: u64,
    },
    Symlink {
        meta: Meta,
        target: Vec<u8>,
    },
    Special {
        meta: Meta,
        kind: Special,
        rdev: (u32, u32),
    },
}

static INODES: AtomicI64 = AtomicI64::new(1);

/// A fresh inode number.
pub fn new_inode() -> u64 {
    INODES.fetch_add(1, AtomicOrdering::Relaxed) as u64
}

impl Node {
    pub fn dir(meta: Meta) -> Node {
        Node::Dir {
            meta,
            children: Children::default(),
        }
    }

    pub fn meta(&self) -> &Meta {
        match self {
            Node::Dir { meta, .. }
            | Node::File { meta, .. }
            | Node::Symlink { meta, .. }
            | Node::Special { meta, .. } => meta,
        }
    }

    pub fn meta_mut(&mut self) -> &mut Meta {
        match self {
            Node::Dir { meta, .. }
            | Node::File { meta, .. }
            | Node::Symlink { meta, .. }
            | Node::Special { meta, .. } => meta,
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self, Node::Dir { .. })
    }

    pub fn children(&self) -> Option<&BTreeMap<Vec<u8>, Node>> {
        match self {
            Node::Dir { children, .. } => Some(children),
            _ => None,
        }
    }

    /// BuildKit's `sameDirent` (overlay differ) / continuity's `sameFile`: is `self`
    /// (lower) the same as `other` (upper) for the purpose of a layer? Directory mtimes are
    /// not compared; file contents only when both mtimes have no nanoseconds.
    pub fn same_dirent(&self, other: &Node) -> bool {
        let (a, b) = (self.meta(), other.meta());
        if a.mode != b.mode || a.uid != b.uid || a.gid != b.gid || a.capability != b.capability {
            return false;
        }
        match (self, other) {
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
            ) => {
                if s1 != s2 || a.mtime != b.mtime {
                    return false;
                }
                if a.mtime.nanos != 0 {
                    return true;
                }
                same_content(c1, c2, *s1).unwrap_or(false)
            }
            (Node::Symlink { target: t1, .. }, Node::Symlink { target: t2, .. }) => {
                // A symlink's size is its target length.
                t1.len() == t2.len() && a.mtime == b.mtime
            }
            (
                Node::Special {
                    kind: k1, rdev: r1, ..
                },
                Node::Special {
                    kind: k2, rdev: r2, ..
                },
            ) => k1 == k2 && r1 == r2 && a.mtime == b.mtime,
            _ => false,
        }
    }
}

fn same_content(a: &Content, b: &Content, size: u64) -> io::Result<bool> {
    let (mut ra, mut rb) = (a.open()?.take(size), b.open()?.take(size));
    let (mut ba, mut bb) = (vec![0u8; 32 * 1024], vec![0u8; 32 * 1024]);
    loop {
        let na = kiln_layer::tar::read_full(&mut ra, &mut ba)?;
        let nb = kiln_layer::tar::read_full(&mut rb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

/// Splits a relative path into components (empty path = the root).
pub fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// Joins two relative paths.
pub fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a.is_empty() {
        return b.to_vec();
    }
    let mut v = a.to_vec();
    v.push(b'/');
    v.extend_from_slice(b);
    v
}

/// The parent of a relative path (`None` for the root).
pub fn parent(path: &[u8]) -> Option<&[u8]> {
    if path.is_empty() {
        return None;
    }
    Some(match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[..i],
        None => &[],
    })
}

/// The last component of a relative path.
pub fn base(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Errors resolving paths in a tree.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("too many levels of symbolic links resolving {0}")]
    SymlinkLoop(String),
    #[error(
        "{0}: more than {MAX_DEPTH} levels deep (no runtime can extract that: Linux paths \
         are at most 4096 bytes)"
    )]
    TooDeep(String),
    #[error("{0}: not a directory")]
    NotADirectory(String),
    #[error("{0}: no such file or directory")]
    NotFound(String),
}

fn show(p: &[u8]) -> String {
    format!("/{}", shorten(p))
}

/// A name as messages show it: cut after 200 bytes (a tar entry may be named by a 1 MiB
/// PAX record).
pub fn shorten(name: &[u8]) -> String {
    const SHOWN: usize = 200;
    match name.get(..SHOWN) {
        Some(start) if name.len() > SHOWN => {
            format!("{}… ({} bytes)", String::from_utf8_lossy(start), name.len())
        }
        _ => String::from_utf8_lossy(name).into_owned(),
    }
}

/// How deep a path of a tree may be. Linux paths are at most 4096 bytes, so no real file
/// system is deeper; a layer that claims more (a 200 KB tar can name a file 100,000
/// directories down) is refused instead of exhausting time and stack.
pub const MAX_DEPTH: usize = 2048;

fn check_depth(path: &[u8]) -> Result<(), TreeError> {
    if components(path).nth(MAX_DEPTH).is_some() {
        return Err(TreeError::TooDeep(show(path)));
    }
    Ok(())
}

/// A root file system.
#[derive(Clone, Debug)]
pub struct Tree {
    pub root: Node,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

impl Tree {
    /// An empty root (`FROM scratch`).
    pub fn new() -> Tree {
        Tree {
            root: Node::dir(Meta::new(0o755, 0, 0, build_time())),
        }
    }

    /// The node at a resolved relative path (no symlinks followed).
    pub fn get(&self, path: &[u8]) -> Option<&Node> {
        let mut n = &self.root;
        for c in components(path) {
            n = n.children()?.get(c)?;
        }
        Some(n)
    }

    pub fn get_mut(&mut self, path: &[u8]) -> Option<&mut Node> {
        let mut n = &mut self.root;
        for c in components(path) {
            match n {
                Node::Dir { children, .. } => n = Arc::make_mut(children).get_mut(c)?,
                _ => return None,
            }
        }
        Some(n)
    }

    /// Inserts `node` at `path`, whose parent must be an existing directory. Replaces any
    /// existing node. The parent's mtime becomes "now", as the kernel does.
    pub fn insert(&mut self, path: &[u8], node: Node) -> Result<(), TreeError> {
        check_depth(path)?;
        let parent_path = parent(path).ok_or_else(|| TreeError::NotFound(show(path)))?;
        match self.get_mut(parent_path) {
            Some(Node::Dir { meta, children }) => {
                meta.mtime = build_time();
                Arc::make_mut(children).insert(base(path).to_vec(), node);
                Ok(())
            }
            Some(_) => Err(TreeError::NotADirectory(show(parent_path))),
            None => Err(TreeError::NotFound(show(parent_path))),
        }
    }

    /// Inserts or replaces `node` at `path` without changing the parent's metadata (for
    /// applying layers, where every entry carries its own times).
    pub fn put(&mut self, path: &[u8], node: Node) -> Result<(), TreeError> {
        check_depth(path)?;
        let parent_path = parent(path).ok_or_else(|| TreeError::NotFound(show(path)))?;
        match self.get_mut(parent_path) {
            Some(Node::Dir { children, .. }) => {
                Arc::make_mut(children).insert(base(path).to_vec(), node);
                Ok(())
            }
            Some(_) => Err(TreeError::NotADirectory(show(parent_path))),
            None => Err(TreeError::NotFound(show(parent_path))),
        }
    }

    /// Removes the node at `path` without changing the parent's metadata.
    pub fn delete(&mut self, path: &[u8]) -> Option<Node> {
        let parent_path = parent(path)?;
        match self.get_mut(parent_path) {
            Some(Node::Dir { children, .. }) => Arc::make_mut(children).remove(base(path)),
            _ => None,
        }
    }

    /// Removes the node at `path`, returning it. The parent's mtime becomes "now".
    pub fn remove(&mut self, path: &[u8]) -> Option<Node> {
        let parent_path = parent(path)?;
        match self.get_mut(parent_path) {
            Some(Node::Dir { meta, children }) => {
                let n = Arc::make_mut(children).remove(base(path))?;
                meta.mtime = build_time();
                Some(n)
            }
            _ => None,
        }
    }

    /// Resolves `path` inside the tree the way containerd's `fs.RootPath` does: symlinks
    /// are followed but can never leave the root (`..` stops at `/`, absolute targets start
    /// at the root). When `follow_final` is false the last component is not followed.
    /// Missing components are allowed (the result names where they would be).
    pub fn resolve(&self, path: &[u8], follow_final: bool) -> Result<Vec<u8>, TreeError> {
        // Components still to walk; links followed push their targets' here.
        const MAX_PENDING: usize = 1 << 20;
        let mut pending: Vec<&[u8]> = components(path).rev().collect();
        let mut cur: Vec<&[u8]> = Vec::new();
        // The node at each prefix of `cur` (`None` below a missing component), so that each
        // step is one lookup rather than a walk from the root.
        let mut nodes: Vec<Option<&Node>> = Vec::new();
        let mut links = 0;
        while let Some(c) = pending.pop() {
            if c == b"." {
                continue;
            }
            if c == b".." {
                cur.pop();
                nodes.pop();
                continue;
            }
            let parent = nodes.last().copied().unwrap_or(Some(&self.root));
            let node = parent.and_then(Node::children).and_then(|ch| ch.get(c));
            cur.push(c);
            nodes.push(node);
            if cur.len() > MAX_DEPTH {
                return Err(TreeError::TooDeep(show(path)));
            }
            if pending.is_empty() && !follow_final {
                break;
            }
            if let Some(Node::Symlink { target, .. }) = node {
                links += 1;
                if links > 255 {
                    return Err(TreeError::SymlinkLoop(show(path)));
                }
                cur.pop();
                nodes.pop();
                if target.starts_with(b"/") {
                    cur.clear();
                    nodes.clear();
                }
                pending.extend(components(target).rev());
                if pending.len() > MAX_PENDING {
                    return Err(TreeError::TooDeep(show(path)));
                }
            }
        }
        Ok(cur.join(&b'/'))
    }

    /// All paths of the tree in layer order (parents first, names sorted by bytes), the
    /// root excluded.
    pub fn walk(&self) -> Vec<(Vec<u8>, &Node)> {
        let mut out = Vec::new();
        fn rec<'a>(prefix: &[u8], n: &'a Node, out: &mut Vec<(Vec<u8>, &'a Node)>) {
            if let Some(children) = n.children() {
                for (name, child) in children {
                    let p = join(prefix, name);
                    out.push((p.clone(), child));
                    rec(&p, child, out);
                }
            }
        }
        rec(b"", &self.root, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(tree: &mut Tree, path: &str) {
        tree.insert(
            path.as_bytes(),
            Node::File {
                meta: Meta::new(0o644, 0, 0, Timestamp::from_secs(5)),
                size: 0,
                content: Content::Bytes(Arc::from(&b""[..])),
                inode: new_inode(),
            },
        )
        .unwrap();
    }

    fn dir(tree: &mut Tree, path: &str) {
        tree.insert(
            path.as_bytes(),
            Node::dir(Meta::new(0o755, 0, 0, Timestamp::from_secs(5))),
        )
        .unwrap();
    }

    #[test]
    fn paths_deeper_than_max_depth_are_refused() {
        let mut t = Tree::new();
        let mut path = String::from("d");
        for _ in 1..MAX_DEPTH {
            dir(&mut t, &path);
            path.push_str("/d");
        }
        // `path` now has MAX_DEPTH components: allowed; one more is not.
        file(&mut t, &path);
        let deeper = format!("{path}/x");
        let meta = Meta::new(0o755, 0, 0, Timestamp::EPOCH);
        let err = t
            .insert(deeper.as_bytes(), Node::dir(meta.clone()))
            .unwrap_err();
        assert!(matches!(err, TreeError::TooDeep(_)), "{err}");
        assert!(err.to_string().contains("… (4097 bytes)"), "{err}");
        assert!(matches!(
            t.put(deeper.as_bytes(), Node::dir(meta)),
            Err(TreeError::TooDeep(_))
        ));
        // Resolving counts the depth the walk reaches, even on the way to a `..`.
        assert_eq!(t.resolve(path.as_bytes(), true).unwrap(), path.as_bytes());
        let up = format!("{path}/..");
        assert_eq!(
            t.resolve(up.as_bytes(), true).unwrap(),
            &path.as_bytes()[..path.len() - 2]
        );
        let there_and_back = format!("{path}/x/..");
        assert!(matches!(
            t.resolve(there_and_back.as_bytes(), true),
            Err(TreeError::TooDeep(_))
        ));
        assert!(matches!(
            t.resolve(deeper.as_bytes(), false),
            Err(TreeError::TooDeep(_))
        ));
    }

    #[test]
    fn a_copy_of_a_tree_changes_alone() {
        let mut a = Tree::new();
        dir(&mut a, "d");
        dir(&mut a, "d/e");
        file(&mut a, "d/e/f");
        file(&mut a, "g");
        let mut b = a.clone();
        file(&mut b, "d/e/new");
        b.remove(b"g");
        b.get_mut(b"d/e/f").unwrap().meta_mut().mode = 0o600;
        let names = |t: &Tree| t.walk().into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        let v = |s: &[&str]| s.iter().map(|p| p.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(names(&a), v(&["d", "d/e", "d/e/f", "g"]));
        assert_eq!(names(&b), v(&["d", "d/e", "d/e/f", "d/e/new"]));
        assert_eq!(a.get(b"d/e/f").unwrap().meta().mode, 0o644);
        assert_eq!(b.get(b"d/e/f").unwrap().meta().mode, 0o600);
        // Untouched directories stay shared.
        let c = a.clone();
        assert!(std::ptr::eq(
            a.get(b"d").unwrap().children().unwrap(),
            c.get(b"d").unwrap().children().unwrap()
        ));
    }

    fn link(tree: &mut Tree, path: &str, target: &str) {
        tree.insert(
            path.as_bytes(),
            Node::Symlink {
                meta: Meta::new(0o777, 0, 0, Timestamp::from_secs(5)),
                target: target.as_bytes().to_vec(),
            },
        )
        .unwrap();
    }

    #[test]
    fn resolve_is_scoped_to_the_root() {
        let mut t = Tree::new();
        dir(&mut t, "usr");
        dir(&mut t, "usr/bin");
        file(&mut t, "usr/bin/sh");
        link(&mut t, "bin", "usr/bin");
        link(&mut t, "escape", "../../../etc");
        link(&mut t, "abs", "/usr/bin/sh");
        link(&mut t, "loop", "loop");
        assert_eq!(t.resolve(b"bin/sh", true).unwrap(), b"usr/bin/sh");
        assert_eq!(t.resolve(b"escape/passwd", true).unwrap(), b"etc/passwd");
        assert_eq!(t.resolve(b"abs", true).unwrap(), b"usr/bin/sh");
        assert_eq!(t.resolve(b"abs", false).unwrap(), b"abs");
        assert_eq!(t.resolve(b"../../x/./y", true).unwrap(), b"x/y");
        assert_eq!(t.resolve(b"bin/../bin/sh", true).unwrap(), b"usr/bin/sh");
        assert_eq!(t.resolve(b"missing/../bin", true).unwrap(), b"usr/bin");
        assert_eq!(t.resolve(b"missing/x", true).unwrap(), b"missing/x");
        assert!(matches!(
            t.resolve(b"loop", true),
            Err(TreeError::SymlinkLoop(_))
        ));
    }

    #[test]
    fn insert_updates_parent_mtime_and_walk_is_in_layer_order() {
        let mut t = Tree::new();
        dir(&mut t, "a");
        file(&mut t, "a.txt");
        file(&mut t, "a-b");
        let before = t.get(b"a").unwrap().meta().mtime;
        file(&mut t, "a/b");
        assert!(t.get(b"a").unwrap().meta().mtime > before);
        let names: Vec<Vec<u8>> = t.walk().into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            names,
            vec![
                b"a".to_vec(),
                b"a/b".to_vec(),
                b"a-b".to_vec(),
                b"a.txt".to_vec()
            ]
        );
        assert!(t
            .insert(
                b"a.txt/x",
                Node::dir(Meta::new(0o755, 0, 0, Timestamp::EPOCH))
            )
            .is_err());
    }
}
