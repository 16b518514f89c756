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

/// Looks `name` up in passwd-format `data`: (uid, gid) of the first match.
pub fn lookup_user(data: &[u8], name: &str) -> Option<(u32, u32)> {
    String::from_utf8_lossy(data).lines().find_map(|line| {
        let f: Vec<&str> = line.trim().split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| Some((parse_id(f[2])?, parse_id(f[3])?)))?
    })
}

/// Looks `name` up in group-format `data`: its gid.
pub fn lookup_group(data: &[u8], name: &str) -> Option<u32> {
    String::from_utf8_lossy(data).lines().find_map(|line| {
        let f: Vec<&str> = line.trim().split(':').collect();
        (f.len() >= 3 && f[0] == name).then(|| parse_id(f[2]))?
    })
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
}
