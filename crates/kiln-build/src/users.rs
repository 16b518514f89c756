//! `COPY --chown`, `ADD --chown` and WORKDIR-after-USER owners, resolved the way BuildKit's
//! file backend does (`readUser`): numbers are taken as given (`1000` means 1000:1000),
//! names are looked up in the stage's own `/etc/passwd` and `/etc/group`, and a name that is
//! not found means id 0 (kiln warns about it; BuildKit does not).

use std::io::Read;

use crate::copy::Owner;
use crate::engine::Progress;
use crate::error::BuildError;
use crate::tree::{Node, Tree};

fn read_file(tree: &Tree, path: &str) -> Option<Vec<u8>> {
    let p = tree.resolve(path.as_bytes(), true).ok()?;
    match tree.get(&p)? {
        Node::File { content, size, .. } => {
            let mut buf = Vec::new();
            content
                .open()
                .ok()?
                .take(*size)
                .read_to_end(&mut buf)
                .ok()?;
            Some(buf)
        }
        _ => None,
    }
}

/// Go's `strconv.ParseUint(v, 10, 32)` as BuildKit's `parseUID` uses it.
fn parse_id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A numeric field of a passwd or group line as moby/sys/user's `parseLine` reads it:
/// `strconv.Atoi` with the error ignored, so anything unparsable is 0. (Values outside u32
/// also become 0 here: BuildKit would pass them on to a chown that fails.)
fn field_id(f: Option<&[u8]>) -> u32 {
    f.and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0)
}

/// The lines moby/sys/user parses: trimmed, blank ones skipped, and for group files
/// comment lines too (its passwd parser keeps them).
fn entries(data: &[u8], skip_comments: bool) -> impl Iterator<Item = Vec<&[u8]>> {
    data.split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(move |l| !l.is_empty() && (!skip_comments || l[0] != b'#'))
        .map(|l| l.split(|&b| b == b':').collect())
}

/// Looks `name` up in passwd-format `data`: (uid, gid) of the first match. Short lines
/// match too, their missing ids read as 0, as BuildKit's parser reads them.
pub fn lookup_user(data: &[u8], name: &str) -> Option<(u32, u32)> {
    entries(data, false)
        .find(|f| f[0] == name.as_bytes())
        .map(|f| (field_id(f.get(2).copied()), field_id(f.get(3).copied())))
}

/// Looks `name` up in group-format `data`: its gid.
pub fn lookup_group(data: &[u8], name: &str) -> Option<u32> {
    entries(data, true)
        .find(|f| f[0] == name.as_bytes())
        .map(|f| field_id(f.get(2).copied()))
}

/// Resolves a `--chown` value (`user`, `user:group`, ids or names) against `tree`.
pub fn resolve_chown(
    tree: &Tree,
    spec: &str,
    progress: &dyn Progress,
) -> Result<Owner, BuildError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let mut owner = Owner { uid: 0, gid: 0 };
    match parse_id(user) {
        Some(id) => owner = Owner { uid: id, gid: id },
        None => {
            let found = read_file(tree, "etc/passwd").and_then(|d| lookup_user(&d, user));
            match found {
                Some((u, g)) => owner = Owner { uid: u, gid: g },
                None => progress.warn(&format!(
                    "user {user:?} is not in the stage's /etc/passwd: using uid 0, as BuildKit does"
                )),
            }
        }
    }
    if let Some(g) = group {
        match parse_id(g) {
            Some(id) => owner.gid = id,
            None => match read_file(tree, "etc/group").and_then(|d| lookup_group(&d, g)) {
                Some(id) => owner.gid = id,
                None => progress.warn(&format!(
                    "group {g:?} is not in the stage's /etc/group: using gid 0, as BuildKit does"
                )),
            },
        }
    }
    Ok(owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_and_group_lookup() {
        let p = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n";
        assert_eq!(lookup_user(p, "app"), Some((1000, 1001)));
        assert_eq!(lookup_user(p, "nobody"), None);
        assert_eq!(lookup_group(b"root:x:0:\napp:x:1000:\n", "app"), Some(1000));
    }

    /// moby/sys/user's quirks, which BuildKit's `--chown` inherits: short lines and
    /// unparsable ids match with id 0, surrounding blanks are trimmed, the first match
    /// wins, and only group files have comments.
    #[test]
    fn lookups_read_files_as_buildkit_does() {
        let p = b"  short:x:7 \r\nbad:x:abc:9\n\n#c:x:5:5\nbad:x:1:1\nplus:x:+3:4\nneg:x:-1:2\n";
        assert_eq!(lookup_user(p, "short"), Some((7, 0)));
        assert_eq!(lookup_user(p, "bad"), Some((0, 9)));
        assert_eq!(lookup_user(p, "#c"), Some((5, 5)));
        assert_eq!(lookup_user(p, "plus"), Some((3, 4)));
        assert_eq!(lookup_user(p, "neg"), Some((0, 2)));
        assert_eq!(lookup_user(b"lone\n", "lone"), Some((0, 0)));
        let g = b"#app:x:1:\n app:x:2:a,b\nother\n";
        assert_eq!(lookup_group(g, "app"), Some(2));
        assert_eq!(lookup_group(g, "#app"), None);
        assert_eq!(lookup_group(g, "other"), Some(0));
        assert_eq!(lookup_user(b"\xff\xfe:x:4:4\nu:x:5:5\n", "u"), Some((5, 5)));
    }
}
