//! Entry names and link targets: what a layer may name, in canonical form.
//!
//! A canonical name is relative, `/`-separated, without `.` or empty components and without
//! a trailing slash. `./` prefixes and doubled slashes are normalised away (tar writers
//! differ in them); anything that could point outside the image's root is refused.

/// Why a name is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameProblem {
    Absolute,
    DotDot,
}

impl std::fmt::Display for NameProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameProblem::Absolute => {
                "is an absolute path (layer entries are relative to the image root)"
            }
            NameProblem::DotDot => {
                "contains a \"..\" component (it could reach outside the image root)"
            }
        })
    }
}

/// The canonical form of an entry name; `Ok(None)` for the root itself (`.`, `./`).
pub fn clean(name: &[u8]) -> Result<Option<Vec<u8>>, NameProblem> {
    if name.first() == Some(&b'/') {
        return Err(NameProblem::Absolute);
    }
    let mut out: Vec<u8> = Vec::with_capacity(name.len());
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(NameProblem::DotDot),
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(part);
            }
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Whether a symlink at `path` with `target` resolves (lexically) outside the root. Absolute
/// targets are resolved against the container's root by runtimes and are fine.
pub fn symlink_escapes(path: &[u8], target: &[u8]) -> bool {
    if target.first() == Some(&b'/') {
        return false;
    }
    // Depth of the directory holding the link.
    let mut depth: i64 = path.iter().filter(|&&b| b == b'/').count() as i64;
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// The last component of a canonical path.
pub fn base_name(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// OCI whiteout prefix (`.wh.<name>` deletes `<name>`; `.wh..wh..opq` empties a directory).
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";

pub fn is_whiteout(path: &[u8]) -> bool {
    base_name(path).starts_with(WHITEOUT_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning() {
        assert_eq!(clean(b"./usr//bin/./ls").unwrap().unwrap(), b"usr/bin/ls");
        assert_eq!(clean(b"etc/").unwrap().unwrap(), b"etc");
        assert_eq!(clean(b"./").unwrap(), None);
        assert_eq!(clean(b".").unwrap(), None);
        assert_eq!(clean(b"/etc/passwd"), Err(NameProblem::Absolute));
        assert_eq!(clean(b"a/../../x"), Err(NameProblem::DotDot));
        assert_eq!(clean(b"a/..b").unwrap().unwrap(), b"a/..b");
    }

    #[test]
    fn symlink_escape() {
        assert!(!symlink_escapes(
            b"etc/os-release",
            b"../usr/lib/os-release"
        ));
        assert!(symlink_escapes(
            b"etc/os-release",
            b"../../usr/lib/os-release"
        ));
        assert!(symlink_escapes(b"x", b".."));
        assert!(!symlink_escapes(b"x", b"/etc/passwd"));
        assert!(!symlink_escapes(b"a/b/c", b"../d/../../e"));
        assert!(symlink_escapes(b"a/b/c", b"d/../../../../e"));
    }

    #[test]
    fn names() {
        assert_eq!(base_name(b"a/b/.wh.c"), b".wh.c");
        assert!(is_whiteout(b"a/.wh..wh..opq"));
        assert!(!is_whiteout(b"a.wh.b/c"));
    }
}
