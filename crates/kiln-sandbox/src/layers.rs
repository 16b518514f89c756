//! Reading a stack of overlay-format directories as one tree, in user space, the way overlayfs
//! merges them: the topmost entry of a name wins, a character device 0/0 (a whiteout) hides the
//! name in the layers below, and a directory marked opaque (`trusted.overlay.opaque=y` or
//! `user.overlay.opaque=y`) hides the lower layers' contents of that directory.
//!
//! Unlike a kernel lookup, intermediate symlinks are never followed: a path whose parent is not a
//! directory in the merged view simply does not exist. (BuildKit's differ looks such paths up in
//! a mounted tree; they only arise under opaque directories, which are compared separately.)

use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{IoContext, Result};

/// One entry of the merged view.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Where the entry lives on disk (in the layer that provides it).
    pub path: PathBuf,
    /// Index of that layer in the stack (0 = top).
    pub layer: usize,
    /// `lstat` of [`Entry::path`].
    pub meta: Metadata,
}

/// Directories read as one merged tree, top layer first.
#[derive(Debug, Clone)]
pub struct LayerStack {
    dirs: Vec<PathBuf>,
    overlay: bool,
}

impl LayerStack {
    /// Overlay-format layers, top first (the same order as overlayfs' `lowerdir=`): whiteouts
    /// and opaque directories are honoured. With a single directory this is BuildKit's "upper
    /// view" (the upper dir with its whiteouts hidden).
    pub fn overlay<P: AsRef<Path>>(dirs: &[P]) -> LayerStack {
        LayerStack {
            dirs: dirs.iter().map(|d| d.as_ref().to_path_buf()).collect(),
            overlay: true,
        }
    }

    /// A plain directory tree: a 0/0 character device is just a device.
    pub fn plain(dir: &Path) -> LayerStack {
        LayerStack {
            dirs: vec![dir.to_path_buf()],
            overlay: false,
        }
    }

    /// The layer directories, top first.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Looks up `rel` (relative, `/`-separated; `""` is the root) in the merged view.
    /// Returns `None` if it does not exist, is whited out, or a parent is not a directory.
    pub fn lookup(&self, rel: &Path) -> Result<Option<Entry>> {
        let comps = components(rel);
        let Some((last, parents)) = comps.split_last() else {
            return self.root_entry();
        };
        let mut prefix = PathBuf::new();
        let mut layers = self.root_layers()?;
        for c in parents {
            prefix.push(c);
            layers = self.dir_layers_below(&layers, &prefix)?;
            if layers.is_empty() {
                return Ok(None);
            }
        }
        prefix.push(last);
        for &i in &layers {
            let p = self.dirs[i].join(&prefix);
            match lstat(&p)? {
                None => continue,
                Some(m) if self.overlay && is_whiteout(&m) => return Ok(None),
                Some(meta) => {
                    return Ok(Some(Entry {
                        path: p,
                        layer: i,
                        meta,
                    }))
                }
            }
        }
        Ok(None)
    }

    /// The merged entries of directory `rel`, sorted by name bytes (Go `sort.Strings`).
    /// Empty if `rel` is not a directory in the merged view.
    pub fn read_dir(&self, rel: &Path) -> Result<Vec<(OsString, Entry)>> {
        let mut layers = self.root_layers()?;
        let mut prefix = PathBuf::new();
        for c in components(rel) {
            prefix.push(c);
            layers = self.dir_layers_below(&layers, &prefix)?;
            if layers.is_empty() {
                return Ok(Vec::new());
            }
        }
        let mut seen: std::collections::BTreeMap<OsString, Option<Entry>> = Default::default();
        for &i in &layers {
            let dir = self.dirs[i].join(&prefix);
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).at("read directory", &dir),
            };
            for de in rd {
                let de = de.at("read directory", &dir)?;
                let name = de.file_name();
                if seen.contains_key(&name) {
                    continue;
                }
                let p = dir.join(&name);
                let Some(meta) = lstat(&p)? else { continue };
                let entry = if self.overlay && is_whiteout(&meta) {
                    None
                } else {
                    Some(Entry {
                        path: p,
                        layer: i,
                        meta,
                    })
                };
                seen.insert(name, entry);
            }
        }
        Ok(seen
            .into_iter()
            .filter_map(|(n, e)| e.map(|e| (n, e)))
            .collect())
    }

    fn root_entry(&self) -> Result<Option<Entry>> {
        match self.dirs.first() {
            None => Ok(None),
            Some(d) => Ok(lstat(d)?.map(|meta| Entry {
                path: d.clone(),
                layer: 0,
                meta,
            })),
        }
    }

    /// Layers that contribute to the root directory.
    fn root_layers(&self) -> Result<Vec<usize>> {
        let mut out = Vec::new();
        for (i, d) in self.dirs.iter().enumerate() {
            out.push(i);
            if self.overlay && is_opaque(d)? {
                break;
            }
        }
        Ok(out)
    }

    /// Given the layers contributing to the parent of `rel`, the layers contributing to the
    /// directory `rel` (empty if it is not a directory in the merged view).
    fn dir_layers_below(&self, parent_layers: &[usize], rel: &Path) -> Result<Vec<usize>> {
        let mut out = Vec::new();
        for &i in parent_layers {
            let p = self.dirs[i].join(rel);
            let Some(meta) = lstat(&p)? else { continue };
            if !meta.is_dir() {
                // A whiteout or a non-directory hides this name in every layer below.
                break;
            }
            out.push(i);
            if self.overlay && is_opaque(&p)? {
                break;
            }
        }
        Ok(out)
    }
}

/// `lstat`, with "does not exist" (also `ENOTDIR`) as `None`.
pub(crate) fn lstat(p: &Path) -> Result<Option<Metadata>> {
    match fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).at("lstat", p),
    }
}

/// An overlayfs whiteout: a character device with device number 0/0.
pub fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// The opaque-directory markers overlayfs uses (with and without `userxattr`).
const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// Whether directory `p` carries an overlay opaque marker with value `y`.
pub fn is_opaque(p: &Path) -> Result<bool> {
    for key in OPAQUE_XATTRS {
        if get_xattr(p, key)?.as_deref() == Some(b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `lgetxattr`; a missing attribute (or no xattr support) is `None`.
pub(crate) fn get_xattr(p: &Path, key: &str) -> Result<Option<Vec<u8>>> {
    match xattr::get(p, key) {
        Ok(v) => Ok(v),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(None),
        Err(e) => Err(e).at("read extended attribute of", p),
    }
}

/// Normal components of a relative path (`.`, `/` and `..` are ignored: paths handed to this
/// module come from directory walks).
fn components(rel: &Path) -> Vec<&OsStr> {
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect()
}

/// Where to `lstat` `rel` in the merged view of a finished run: the upper directory first, then
/// the lowers top-down, honouring whiteouts and opaque directories. The layer writer needs this
/// for the ancestors of changed paths (which, for overlay runs, always exist in the upper dir, as
/// BuildKit's `ChangeWriter` reads them from the upper view).
pub fn locate<P: AsRef<Path>>(upper: &Path, lowers: &[P], rel: &Path) -> Result<Option<PathBuf>> {
    let mut dirs = vec![upper.to_path_buf()];
    dirs.extend(lowers.iter().map(|l| l.as_ref().to_path_buf()));
    Ok(LayerStack {
        dirs,
        overlay: true,
    }
    .lookup(rel)?
    .map(|e| e.path))
}
