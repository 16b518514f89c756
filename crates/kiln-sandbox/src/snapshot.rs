//! Materialising the merged view of overlay-format layers as one plain directory tree: the
//! starting point of a run without overlayfs ([`crate::Rootfs::Dir`]), compared afterwards with
//! [`crate::tree_changes`].
//!
//! Everything [`crate::same_dirent`] looks at is preserved: type, mode bits, owner, device
//! numbers, size, content, mtime with nanoseconds and `security.capability` (all other
//! extended attributes except overlayfs' own are copied too). Hard links within the merged view
//! stay hard links.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use crate::error::{IoContext, Result};
use crate::layers::{Entry, LayerStack};

/// Copies the merged view of `lowers` (top first) into the existing, empty directory `dest`.
/// The root directory's own mode, owner and times are taken from the top layer's root.
pub fn copy_merged<P: AsRef<Path>>(lowers: &[P], dest: &Path) -> Result<()> {
    let stack = LayerStack::overlay(lowers);
    let mut links = HashMap::new();
    copy_dir(&stack, Path::new(""), dest, &mut links)?;
    if let Some(root) = stack.lookup(Path::new(""))? {
        apply_metadata(&root, dest)?;
    }
    Ok(())
}

fn copy_dir(
    stack: &LayerStack,
    rel: &Path,
    dest_root: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<()> {
    for (name, e) in stack.read_dir(rel)? {
        let rel = rel.join(&name);
        let dest = dest_root.join(&rel);
        let ft = e.meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&dest).at("create directory", &dest)?;
            copy_dir(stack, &rel, dest_root, links)?;
            apply_metadata(&e, &dest)?;
            continue;
        }
        if e.meta.nlink() > 1 {
            let key = (e.meta.dev(), e.meta.ino());
            if let Some(first) = links.get(&key) {
                fs::hard_link(first, &dest).at("hard-link", &dest)?;
                continue;
            }
            links.insert(key, dest.clone());
        }
        if ft.is_file() {
            let mut src = File::open(&e.path).at("open", &e.path)?;
            let mut out = File::create(&dest).at("create", &dest)?;
            io::copy(&mut src, &mut out).at("copy into", &dest)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&e.path).at("read link", &e.path)?;
            std::os::unix::fs::symlink(&target, &dest).at("create symlink", &dest)?;
        } else if ft.is_socket() {
            // Sockets never reach a layer (containerd skips them); nothing to copy.
            continue;
        } else {
            let kind = if ft.is_char_device() {
                SFlag::S_IFCHR
            } else if ft.is_block_device() {
                SFlag::S_IFBLK
            } else {
                SFlag::S_IFIFO
            };
            nix::sys::stat::mknod(&dest, kind, Mode::from_bits_truncate(0o600), e.meta.rdev())
                .map_err(io::Error::from)
                .at("create node", &dest)?;
        }
        apply_metadata(&e, &dest)?;
    }
    Ok(())
}

/// Owner, then mode (a chown clears set-id bits), then xattrs (a chown clears file
/// capabilities), then times (anything before changes them).
fn apply_metadata(e: &Entry, dest: &Path) -> Result<()> {
    let m = &e.meta;
    let symlink = m.file_type().is_symlink();
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        dest,
        Some(Uid::from_raw(m.uid())),
        Some(Gid::from_raw(m.gid())),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(io::Error::from)
    .at("chown", dest)?;
    if !symlink {
        fs::set_permissions(dest, fs::Permissions::from_mode(m.mode() & 0o7777))
            .at("chmod", dest)?;
    }
    copy_xattrs(&e.path, dest)?;
    let atime = TimeSpec::new(m.atime(), m.atime_nsec());
    let mtime = TimeSpec::new(m.mtime(), m.mtime_nsec());
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        dest,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
    .at("set times of", dest)?;
    Ok(())
}

fn copy_xattrs(src: &Path, dest: &Path) -> Result<()> {
    let names = match xattr::list(src) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(()),
        Err(e) => return Err(e).at("list extended attributes of", src),
    };
    for name in names {
        let bytes = name.as_bytes();
        if bytes.starts_with(b"trusted.overlay.") || bytes.starts_with(b"user.overlay.") {
            continue;
        }
        let Some(value) = xattr::get(src, &name).at("read extended attribute of", src)? else {
            continue;
        };
        xattr::set(dest, &name, &value).at("set extended attribute of", dest)?;
    }
    Ok(())
}

/// Removes a tree that may contain directories without permissions (an overlay work dir is
/// left with mode 000): permissions are fixed on the way down.
pub fn remove_tree(path: &Path) -> Result<()> {
    fix_permissions(path)?;
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at("remove", path),
    }
}

/// Gives every directory below `path` (and `path` itself) owner rwx, so that it can be walked
/// and emptied.
pub fn fix_permissions(path: &Path) -> Result<()> {
    let Some(meta) = crate::layers::lstat(path)? else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Ok(());
    }
    if meta.mode() & 0o700 != 0o700 {
        fs::set_permissions(
            path,
            fs::Permissions::from_mode((meta.mode() | 0o700) & 0o7777),
        )
        .at("chmod", path)?;
    }
    for de in fs::read_dir(path).at("read directory", path)? {
        let de = de.at("read directory", path)?;
        if de.file_type().at("stat", &de.path())?.is_dir() {
            fix_permissions(&de.path())?;
        }
    }
    Ok(())
}
