//! Absolute-path reasoning for cleanup rules: does `rm -rf /var/log/*`
//! remove `/var/log/dpkg.log`? does a mount on `/var/lib/apt` hide it?

/// Matches `text` against a shell glob of `*`, `?` and `[...]` that never
/// crosses a `/`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => {
            // `*` matches any run of non-`/` characters.
            let mut i = 0;
            loop {
                if glob_at(&p[1..], &t[i..]) {
                    return true;
                }
                if i == t.len() || t[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
        Some('?') => !t.is_empty() && t[0] != '/' && glob_at(&p[1..], &t[1..]),
        Some('[') => match p.iter().position(|&c| c == ']').filter(|&e| e > 1) {
            Some(end) if !t.is_empty() && t[0] != '/' => {
                let set = &p[1..end];
                let (negate, set) = match set.first() {
                    Some('!' | '^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= t[0] && t[0] <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == t[0];
                        i += 1;
                    }
                }
                hit != negate && glob_at(&p[end + 1..], &t[1..])
            }
            Some(_) => false,
            None => !t.is_empty() && t[0] == '[' && glob_at(&p[1..], &t[1..]),
        },
        Some(&c) => !t.is_empty() && t[0] == c && glob_at(&p[1..], &t[1..]),
    }
}

/// `path` and each of its ancestors (`/a/b/c`, `/a/b`, `/a`, `/`).
fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut cur = Some(path);
    std::iter::from_fn(move || {
        let p = cur?;
        cur = match p.rfind('/') {
            Some(0) if p.len() > 1 => Some("/"),
            Some(0) | None => None,
            Some(i) => Some(&p[..i]),
        };
        Some(p)
    })
}

/// Removes trailing slashes and `/.` (but keeps `/`).
fn clean(p: &str) -> &str {
    let mut p = p;
    loop {
        let before = p;
        if p.len() > 1 {
            p = p.strip_suffix('/').unwrap_or(p);
        }
        if p.len() > 2 {
            p = p.strip_suffix("/.").unwrap_or(p);
        }
        if p == before {
            return p;
        }
    }
}

/// Whether removing the (possibly globbed) absolute path `arg` recursively
/// removes `target`.
pub fn removal_covers(arg: &str, target: &str) -> bool {
    if !arg.starts_with('/') {
        return false;
    }
    let arg = clean(arg);
    self_and_ancestors(target).any(|p| glob_match(arg, p))
}

/// Whether a mount on `mount_target` hides writes to `path`.
pub fn mount_covers(mount_target: &str, path: &str) -> bool {
    let m = clean(mount_target);
    self_and_ancestors(path).any(|p| p == m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("/var/log/*", "/var/log/apt"));
        assert!(!glob_match("/var/log/*", "/var/log/apt/history.log"));
        assert!(glob_match("/var/log/*.log", "/var/log/dpkg.log"));
        assert!(glob_match("/etc/*-", "/etc/shadow-"));
        assert!(glob_match("/etc/shadow[-]", "/etc/shadow-"));
        assert!(!glob_match("/etc/[!s]hadow-", "/etc/shadow-"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "a/c"));
    }

    #[test]
    fn removals() {
        let lists = "/var/lib/apt/lists/_";
        for yes in [
            "/var/lib/apt/lists/*",
            "/var/lib/apt/lists",
            "/var/lib/apt/lists/",
            "/var/lib/apt",
        ] {
            assert!(removal_covers(yes, lists), "{yes}");
        }
        for no in [
            "/var/lib/apt/lists/partial",
            "var/lib/apt/lists",
            "/var/cache/apt/*",
        ] {
            assert!(!removal_covers(no, lists), "{no}");
        }
        assert!(removal_covers("/var/log/*", "/var/log/apt/history.log"));
        assert!(removal_covers("/var/log/*", "/var/log/dpkg.log"));
        assert!(!removal_covers("/var/log/apt", "/var/log/dpkg.log"));
    }

    #[test]
    fn mounts() {
        assert!(mount_covers("/var/lib/apt", "/var/lib/apt/lists/_"));
        assert!(mount_covers("/var/lib/apt/", "/var/lib/apt/lists/_"));
        assert!(!mount_covers(
            "/var/lib/apt/lists/partial",
            "/var/lib/apt/lists/_"
        ));
    }
}
