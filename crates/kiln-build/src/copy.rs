//! COPY and ADD on trees, following BuildKit's file backend (`docopy`) and fsutil's `copy`
//! step by step, because every mkdir, chmod and utime decides bytes of the layer: which
//! directories are created (0755, owner, "now"), which take the source's mode and times, and
//! which keep their own.

use std::collections::{BTreeSet, HashMap};

use crate::chmod::Chmod;
use crate::gomatch;
use crate::tree::{base, build_time, join, new_inode, parent, Meta, Node, Tree, TreeError};

/// A resolved `--chown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Options of one copy (BuildKit's `CopyInfo` as the Dockerfile frontend sets it).
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    pub chown: Option<Owner>,
    pub chmod: Option<Chmod>,
    /// Follow symlinks in the source path (true for COPY/ADD sources).
    pub follow_symlinks: bool,
    /// Resolve wildcards in the source path.
    pub wildcard: bool,
}

/// Why a copy failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CopyError {
    #[error("{0}: not found")]
    NotFound(String),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("cannot replace directory {0} with a file")]
    DirWithFile(String),
    #[error("cannot copy a directory to {0}: it exists and is not a directory")]
    NotADirectory(String),
    #[error("{0}: syntax error in the wildcard pattern")]
    Pattern(String),
}

fn show(p: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(p))
}

/// Paths a step wrote (created, replaced, or changed metadata of).
pub type Touched = BTreeSet<Vec<u8>>;

/// Go's `filepath.Split` on an absolute slash path: (dir with trailing slash, file).
fn split(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(i) => (&p[..=i], &p[i + 1..]),
        None => ("", p),
    }
}

/// An absolute, slash-separated path made relative for tree lookups ("/a/b" -> "a/b").
fn rel(p: &str) -> Vec<u8> {
    p.trim_start_matches('/')
        .trim_end_matches('/')
        .as_bytes()
        .to_vec()
}

/// Go's `filepath.Clean` for absolute paths.
pub fn clean_abs(p: &str) -> String {
    let c = String::from_utf8_lossy(&kiln_layer::tar::go_path_clean(p.as_bytes())).into_owned();
    if c.starts_with('/') {
        c
    } else if c == "." {
        "/".into()
    } else {
        format!("/{c}")
    }
}

/// fsutil's `MkdirAll` on a resolved path: missing directories are created with mode
/// 0755, the chown owner (else root) and the current time.
pub fn mkdir_all(
    dst: &mut Tree,
    path: &[u8],
    owner: Option<Owner>,
    touched: &mut Touched,
) -> Result<(), CopyError> {
    let mut cur: Vec<u8> = Vec::new();
    for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        cur = join(&cur, c);
        match dst.get(&cur) {
            Some(Node::Dir { .. }) => {}
            Some(_) => return Err(TreeError::NotADirectory(show(&cur)).into()),
            None => {
                let o = owner.unwrap_or(Owner { uid: 0, gid: 0 });
                dst.insert(
                    &cur,
                    Node::dir(Meta::new(0o755, o.uid, o.gid, build_time())),
                )?;
                touched.insert(cur.clone());
            }
        }
    }
    Ok(())
}

/// Copies `src_path` (absolute, may hold wildcards) from `src` into `dest_path` (absolute,
/// a trailing `/` meaning "into this directory") of `dst`, like BuildKit's `docopy` with the
/// Dockerfile frontend's options. Returns `false` when a wildcard matched nothing (BuildKit
/// then does nothing).
pub fn copy(
    src: &Tree,
    src_path: &str,
    dst: &mut Tree,
    dest_path: &str,
    opts: &CopyOptions,
    touched: &mut Touched,
) -> Result<bool, CopyError> {
    let matches = if opts.wildcard {
        resolve_wildcards(src, src_path, opts.follow_symlinks)?
    } else {
        vec![rel(&clean_abs(src_path))]
    };
    if matches.is_empty() {
        return Ok(false);
    }
    for m in matches {
        Copier {
            src,
            dst: &mut *dst,
            opts,
            touched: &mut *touched,
            inodes: HashMap::new(),
            links: HashMap::new(),
        }
        .copy_one(&m, dest_path)?;
    }
    Ok(true)
}

/// fsutil's `ResolveWildcards`: the components before the first wildcard are a path, the
/// rest a pattern matched against paths below it (a matching directory is not descended).
pub fn resolve_wildcards(
    src: &Tree,
    src_path: &str,
    follow: bool,
) -> Result<Vec<Vec<u8>>, CopyError> {
    let cleaned = clean_abs(src_path);
    let mut d1: Vec<&str> = Vec::new();
    let mut d2: Vec<&str> = Vec::new();
    for part in cleaned.split('/').filter(|p| !p.is_empty()) {
        if d2.is_empty() && !gomatch::has_wildcards(part) {
            d1.push(part);
        } else {
            d2.push(part);
        }
    }
    let base_rel = d1.join("/").into_bytes();
    if d2.is_empty() {
        return Ok(vec![base_rel]);
    }
    let base_path = if follow {
        src.resolve(&base_rel, true)?
    } else {
        let p = src.resolve(parent(&base_rel).unwrap_or(b""), true)?;
        if base_rel.is_empty() {
            p
        } else {
            join(&p, base(&base_rel))
        }
    };
    let pattern = d2.join("/");
    let mut out = Vec::new();
    let Some(node) = src.get(&base_path) else {
        return Ok(out);
    };
    // filepath.Walk order: lexical, parents first; a matching directory is not entered.
    fn walk(
        node: &Node,
        prefix: &[u8],
        pattern: &str,
        out: &mut Vec<Vec<u8>>,
        base_path: &[u8],
    ) -> Result<(), gomatch::BadPattern> {
        let Some(children) = node.children() else {
            return Ok(());
        };
        for (name, child) in children {
            let relp = join(prefix, name);
            let matched = gomatch::matches(pattern, &String::from_utf8_lossy(&relp))?;
            if matched {
                out.push(join(base_path, &relp));
                continue;
            }
            if child.is_dir() {
                walk(child, &relp, pattern, out, base_path)?;
            }
        }
        Ok(())
    }
    walk(node, b"", &pattern, &mut out, &base_path)
        .map_err(|_| CopyError::Pattern(src_path.to_string()))?;
    Ok(out)
}

struct Copier<'a> {
    src: &'a Tree,
    dst: &'a mut Tree,
    opts: &'a CopyOptions,
    touched: &'a mut Touched,
    /// Source inode -> (destination path, destination inode) of its first copy.
    inodes: HashMap<u64, (Vec<u8>, u64)>,
    /// Destination inode -> every path copied with it, for inodes copied more than once
    /// (hard links). Fresh inodes are only shared within one copier, so these are all the
    /// names a metadata change must reach.
    links: HashMap<u64, Vec<Vec<u8>>>,
}

impl<'a> Copier<'a> {
    /// fsutil `Copy` for one resolved source match (`m` relative, unfollowed).
    fn copy_one(&mut self, m: &[u8], dest_path: &str) -> Result<(), CopyError> {
        let owner = self.opts.chown;
        // ensureDstPath: the directory part of the destination ("/a/b/" is all directory).
        let (d, f) = split(dest_path);
        let ensure = if !f.is_empty() && f != "." {
            d
        } else {
            dest_path
        };
        if !ensure.is_empty() {
            let p = self.dst.resolve(&rel(ensure), true)?;
            mkdir_all(self.dst, &p, owner, self.touched)?;
        }
        let dst = self.dst.resolve(&rel(&clean_abs(dest_path)), true)?;

        let src_followed = if self.opts.follow_symlinks {
            self.src.resolve(m, true)?
        } else {
            let p = self.src.resolve(parent(m).unwrap_or(b""), true)?;
            if m.is_empty() {
                p
            } else {
                join(&p, base(m))
            }
        };
        let src_node = self
            .src
            .get(&src_followed)
            .ok_or_else(|| CopyError::NotFound(show(m)))?;

        // prepareTargetDir (copyDirContents = true).
        let dest_node_is_dir = self
            .dst
            .resolve(&dst, true)
            .ok()
            .and_then(|p| self.dst.get(&p).map(|n| n.is_dir()));
        let mut dest = dst.clone();
        if !src_node.is_dir() && dest_node_is_dir == Some(true) {
            dest = join(&dest, base(m));
        }
        let target = if src_node.is_dir() && dest_node_is_dir.is_none() {
            dest.clone()
        } else {
            parent(&dest).unwrap_or(b"").to_vec()
        };
        mkdir_all(self.dst, &target, owner, self.touched)?;
        self.copy_node(&src_followed, &dest, false)
    }

    /// fsutil `copier.copy`.
    fn copy_node(
        &mut self,
        src: &[u8],
        target: &[u8],
        overwrite_meta: bool,
    ) -> Result<(), CopyError> {
        // Borrowed from the source tree, not from `self` (a copy of the node, taken at every
        // level of the recursion, made deep trees quadratic: 2,000 levels took 2.9 GB).
        let src_tree: &'a Tree = self.src;
        let node = src_tree
            .get(src)
            .ok_or_else(|| CopyError::NotFound(show(src)))?;
        let target_exists = self.dst.get(target).is_some();
        match &node {
            Node::Dir { meta, children } => {
                let created = match self.dst.get(target) {
                    None => {
                        let mut m = meta.clone();
                        m.mtime = build_time();
                        self.dst.insert(target, Node::dir(m))?;
                        self.touched.insert(target.to_vec());
                        true
                    }
                    Some(Node::Dir { .. }) => {
                        if overwrite_meta {
                            // chmod to the source mode before the children are copied.
                            if let Some(n) = self.dst.get_mut(target) {
                                n.meta_mut().mode = meta.mode;
                            }
                            self.touched.insert(target.to_vec());
                        }
                        false
                    }
                    Some(_) => {
                        return Err(CopyError::NotADirectory(show(target)));
                    }
                };
                for name in children.keys() {
                    self.copy_node(&join(src, name), &join(target, name), true)?;
                }
                if overwrite_meta || created {
                    self.copy_file_info(meta, target, true);
                } else if target_exists {
                    // Restore the timestamp from the source.
                    if let Some(n) = self.dst.get_mut(target) {
                        n.meta_mut().mtime = meta.mtime;
                    }
                    self.touched.insert(target.to_vec());
                }
            }
            Node::File {
                meta,
                size,
                content,
                inode,
            } => {
                self.ensure_empty_file_target(target)?;
                let (dst_inode, link_meta) = match self.inodes.get(inode) {
                    Some((first, ino)) => {
                        self.links
                            .entry(*ino)
                            .or_insert_with(|| vec![first.clone()])
                            .push(target.to_vec());
                        (*ino, self.dst.get(first).map(|n| n.meta().clone()))
                    }
                    None => {
                        let ino = new_inode();
                        self.inodes.insert(*inode, (target.to_vec(), ino));
                        (ino, None)
                    }
                };
                let new_meta = link_meta.unwrap_or_else(|| meta.clone());
                self.dst.insert(
                    target,
                    Node::File {
                        meta: new_meta,
                        size: *size,
                        content: content.clone(),
                        inode: dst_inode,
                    },
                )?;
                self.touched.insert(target.to_vec());
                self.copy_file_info(meta, target, false);
            }
            Node::Symlink { meta, target: t } => {
                self.ensure_empty_file_target(target)?;
                self.dst.insert(
                    target,
                    Node::Symlink {
                        meta: meta.clone(),
                        target: t.clone(),
                    },
                )?;
                self.touched.insert(target.to_vec());
                self.copy_file_info(meta, target, false);
            }
            Node::Special { meta, kind, rdev } => {
                self.ensure_empty_file_target(target)?;
                self.dst.insert(
                    target,
                    Node::Special {
                        meta: meta.clone(),
                        kind: *kind,
                        rdev: *rdev,
                    },
                )?;
                self.touched.insert(target.to_vec());
                self.copy_file_info(meta, target, false);
            }
        }
        Ok(())
    }

    fn ensure_empty_file_target(&mut self, target: &[u8]) -> Result<(), CopyError> {
        match self.dst.get(target) {
            Some(Node::Dir { .. }) => Err(CopyError::DirWithFile(show(target))),
            Some(_) => {
                self.dst.remove(target);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// fsutil `copyFileInfo`: owner (chown, else the source's), mode (chmod, else the
    /// source's; not for symlinks), and the source's times. Hard links share the result.
    fn copy_file_info(&mut self, src_meta: &Meta, target: &[u8], is_dir: bool) {
        let owner = self.opts.chown;
        let chmod = self.opts.chmod.clone();
        let Some(n) = self.dst.get_mut(target) else {
            return;
        };
        let is_symlink = matches!(n, Node::Symlink { .. });
        let m = n.meta_mut();
        if let Some(o) = owner {
            m.uid = o.uid;
            m.gid = o.gid;
        } else {
            m.uid = src_meta.uid;
            m.gid = src_meta.gid;
        }
        if !is_symlink {
            m.mode = match &chmod {
                Some(c) => c.apply(src_meta.mode, is_dir),
                None => src_meta.mode,
            };
        }
        m.mtime = src_meta.mtime;
        let new = m.clone();
        if let Node::File { inode, .. } = n {
            let ino = *inode;
            if let Some(names) = self.links.get(&ino) {
                sync_links(self.dst, names, ino, &new);
            }
        }
        self.touched.insert(target.to_vec());
    }
}

/// Hard links share one inode: keep the metadata of every name of `inode` among `names`
/// equal (a name since replaced by another file keeps its own).
fn sync_links(tree: &mut Tree, names: &[Vec<u8>], inode: u64, meta: &Meta) {
    for name in names {
        if let Some(Node::File {
            meta: m, inode: i, ..
        }) = tree.get_mut(name)
        {
            if *i == inode {
                *m = meta.clone();
            }
        }
    }
}

/// A file created by the build itself (heredoc `COPY <<EOF`, `Mkfile`): mode 0644, root,
/// "now".
pub fn scratch_with_file(name: &str, data: &[u8]) -> Result<Tree, CopyError> {
    let mut t = Tree::new();
    let path = rel(&clean_abs(name));
    if let Some(p) = parent(&path) {
        let mut touched = Touched::new();
        mkdir_all(&mut t, p, None, &mut touched)?;
    }
    t.insert(
        &path,
        Node::File {
            meta: Meta::new(0o644, 0, 0, build_time()),
            size: data.len() as u64,
            content: crate::tree::Content::Bytes(std::sync::Arc::from(data)),
            inode: new_inode(),
        },
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Content;
    use kiln_layer::Timestamp;
    use std::sync::Arc;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    fn add_file(tree: &mut Tree, path: &str, mode: u32, mtime: i64) {
        tree.insert(
            path.as_bytes(),
            Node::File {
                meta: Meta::new(mode, 0, 0, t(mtime)),
                size: 1,
                content: Content::Bytes(Arc::from(&b"x"[..])),
                inode: new_inode(),
            },
        )
        .unwrap();
    }

    fn add_dir(tree: &mut Tree, path: &str, mode: u32, mtime: i64) {
        tree.insert(path.as_bytes(), Node::dir(Meta::new(mode, 0, 0, t(mtime))))
            .unwrap();
        tree.get_mut(path.as_bytes()).unwrap().meta_mut().mtime = t(mtime);
    }

    fn opts() -> CopyOptions {
        CopyOptions {
            follow_symlinks: true,
            wildcard: true,
            ..CopyOptions::default()
        }
    }

    #[test]
    fn directory_copy_takes_source_times_but_not_mode_for_the_destination() {
        let mut ctx = Tree::new();
        add_dir(&mut ctx, "dir", 0o750, 1600000000);
        add_file(&mut ctx, "dir/f", 0o600, 1500000000);
        ctx.get_mut(b"dir").unwrap().meta_mut().mtime = t(1600000000);
        let mut dst = Tree::new();
        let mut touched = Touched::new();
        copy(&ctx, "/dir/", &mut dst, "/dst/", &opts(), &mut touched).unwrap();
        let d = dst.get(b"dst").unwrap().meta();
        assert_eq!((d.mode, d.mtime), (0o755, t(1600000000)));
        let f = dst.get(b"dst/f").unwrap().meta();
        assert_eq!((f.mode, f.mtime), (0o600, t(1500000000)));
        assert_eq!(
            touched.into_iter().collect::<Vec<_>>(),
            vec![b"dst".to_vec(), b"dst/f".to_vec()]
        );
    }

    #[test]
    fn file_into_existing_dir_and_renamed_file() {
        let mut ctx = Tree::new();
        add_file(&mut ctx, "a.txt", 0o644, 1);
        let mut dst = Tree::new();
        let mut touched = Touched::new();
        copy(&ctx, "/a.txt", &mut dst, "/out/", &opts(), &mut touched).unwrap();
        assert!(dst.get(b"out/a.txt").is_some());
        copy(&ctx, "/a.txt", &mut dst, "/renamed", &opts(), &mut touched).unwrap();
        assert!(dst.get(b"renamed").is_some());
        copy(&ctx, "/a.txt", &mut dst, "/out", &opts(), &mut touched).unwrap();
        assert!(matches!(dst.get(b"out"), Some(Node::Dir { .. })));
        let err = copy(&ctx, "/missing", &mut dst, "/x", &opts(), &mut touched).unwrap_err();
        assert_eq!(err, CopyError::NotFound("/missing".into()));
    }

    #[test]
    fn wildcards_and_chmod_and_chown() {
        let mut ctx = Tree::new();
        add_file(&mut ctx, "a.txt", 0o644, 1);
        add_file(&mut ctx, "b.txt", 0o644, 1);
        add_file(&mut ctx, "c.md", 0o644, 1);
        add_dir(&mut ctx, "sub", 0o755, 1);
        add_file(&mut ctx, "sub/d.txt", 0o644, 1);
        let mut dst = Tree::new();
        let mut touched = Touched::new();
        let o = CopyOptions {
            chmod: Some(Chmod::Octal(0o600)),
            chown: Some(Owner { uid: 7, gid: 8 }),
            ..opts()
        };
        assert!(copy(&ctx, "/*.txt", &mut dst, "/w/", &o, &mut touched).unwrap());
        let names: Vec<_> = dst
            .walk()
            .into_iter()
            .map(|(p, n)| (p, n.meta().clone()))
            .collect();
        assert_eq!(names.len(), 3);
        assert_eq!(names[0].0, b"w");
        assert_eq!((names[0].1.uid, names[0].1.mode), (7, 0o755));
        assert_eq!(
            (names[1].1.uid, names[1].1.gid, names[1].1.mode),
            (7, 8, 0o600)
        );
        assert!(!copy(&ctx, "/*.none", &mut dst, "/w/", &o, &mut touched).unwrap());
    }

    #[test]
    fn hard_links_are_kept() {
        let mut ctx = Tree::new();
        add_file(&mut ctx, "a", 0o644, 1);
        let n = ctx.get(b"a").unwrap().clone();
        ctx.insert(b"b", n).unwrap();
        let mut dst = Tree::new();
        let mut touched = Touched::new();
        copy(&ctx, "/", &mut dst, "/app/", &opts(), &mut touched).unwrap();
        let ino = |p: &[u8]| match dst.get(p).unwrap() {
            Node::File { inode, .. } => *inode,
            _ => 0,
        };
        assert_eq!(ino(b"app/a"), ino(b"app/b"));
    }

    #[test]
    fn hard_links_end_with_equal_metadata() {
        // Two names of one inode whose headers disagreed (as tar entries can): the name
        // copied last sets the inode's metadata, and the first name follows it.
        let mut ctx = Tree::new();
        add_file(&mut ctx, "a", 0o644, 1);
        add_file(&mut ctx, "c", 0o640, 1);
        let mut n = ctx.get(b"a").unwrap().clone();
        n.meta_mut().mode = 0o600;
        ctx.insert(b"b", n).unwrap();
        let mut dst = Tree::new();
        let mut touched = Touched::new();
        copy(&ctx, "/", &mut dst, "/app/", &opts(), &mut touched).unwrap();
        let mode = |p: &[u8]| dst.get(p).unwrap().meta().mode;
        assert_eq!((mode(b"app/a"), mode(b"app/b")), (0o600, 0o600));
        assert_eq!(mode(b"app/c"), 0o640);
    }

    #[test]
    fn copying_a_file_over_a_directory_fails() {
        let mut ctx = Tree::new();
        add_file(&mut ctx, "x", 0o644, 1);
        let mut dst = Tree::new();
        add_dir(&mut dst, "d", 0o755, 1);
        add_dir(&mut dst, "d/x", 0o755, 1);
        let mut touched = Touched::new();
        let e = copy(&ctx, "/x", &mut dst, "/d/", &opts(), &mut touched).unwrap_err();
        assert_eq!(e, CopyError::DirWithFile("/d/x".into()));
    }
}
