//! Resolving a container path inside a root directory with every symlink confined to that root:
//! containerd continuity's `fs.RootPath`, which BuildKit uses to find mount stubs, the working
//! directory and `/etc/passwd`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Most symlinks followed before giving up (continuity allows 255).
const MAX_LINKS: u32 = 255;

/// Joins `path` (absolute or relative, taken as relative to `root`) onto `root`, following
/// symlinks as if `root` were `/`. Components that do not exist are kept as written. `..`
/// never leaves `root`; like Go's `filepath.Join`, `..` is applied lexically to the unresolved
/// path first.
pub fn root_path(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: Vec<OsString> = lexical(path);
    pending.reverse();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&c);
        let is_link = match std::fs::symlink_metadata(&candidate) {
            Ok(m) => m.file_type().is_symlink(),
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                false
            }
            Err(e) => return Err(e),
        };
        if !is_link {
            resolved.push(c);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        let target = std::fs::read_link(&candidate)?;
        if target.is_absolute() {
            resolved.clear();
        }
        let mut comps = lexical(&target);
        comps.reverse();
        pending.extend(comps);
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

/// Lexically cleaned components: `.` dropped, `x/..` folded; leading `..` kept (they pop
/// already-resolved components).
fn lexical(p: &Path) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::ParentDir => {
                if out.last().is_some_and(|l| l != "..") {
                    out.pop();
                } else if !p.is_absolute() {
                    out.push(OsStr::from_bytes(b"..").to_os_string());
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("/usr/lib", r.join("lib")).unwrap();
        std::os::unix::fs::symlink("../../../..", r.join("usr/up")).unwrap();
        std::os::unix::fs::symlink("/", r.join("rootlink")).unwrap();
        std::os::unix::fs::symlink("loop2", r.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", r.join("loop2")).unwrap();
        let rp = |p: &str| root_path(r, Path::new(p)).unwrap();
        assert_eq!(rp("/lib/x"), r.join("usr/lib/x"));
        assert_eq!(rp("/usr/up/etc/passwd"), r.join("etc/passwd"));
        assert_eq!(rp("/rootlink/../../etc"), r.join("etc"));
        assert_eq!(rp("/../../etc/hosts"), r.join("etc/hosts"));
        assert_eq!(rp("/"), r.to_path_buf());
        assert_eq!(
            root_path(r, Path::new("/loop1"))
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ELOOP)
        );
    }
}
