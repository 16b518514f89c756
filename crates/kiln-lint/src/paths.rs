//! Absolute-path reasoning for cleanup rules: does `rm -rf /var/log/*`
//! remove `/var/log/dpkg.log`? does a mount on `/var/lib/apt` hide it?

/// One element of a glob.
enum Tok {
    /// `*`: any run of non-`/` characters.
    Star,
    /// `?`: one non-`/` character.
    Any,
    /// `[...]` / `[!...]`: one non-`/` character in (or not in) the set.
    Set {
        negate: bool,
        set: Vec<char>,
    },
    Lit(char),
}

fn tokens(p: &[char]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => {
                // A run of stars matches what one does.
                if !matches!(out.last(), Some(Tok::Star)) {
                    out.push(Tok::Star);
                }
                i += 1;
            }
            '?' => {
                out.push(Tok::Any);
                i += 1;
            }
            // A set closes at the first `]`, which must not come right after the `[`;
            // otherwise the `[` is an ordinary character.
            '[' => match p[i..].iter().position(|&c| c == ']').filter(|&e| e > 1) {
                Some(e) => {
                    let set = &p[i + 1..i + e];
                    let (negate, set) = match set.first() {
                        Some('!' | '^') => (true, &set[1..]),
                        _ => (false, set),
                    };
                    out.push(Tok::Set {
                        negate,
                        set: set.to_vec(),
                    });
                    i += e + 1;
                }
                None => {
                    out.push(Tok::Lit('['));
                    i += 1;
                }
            },
            c => {
                out.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    out
}

fn in_set(set: &[char], c: char) -> bool {
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == '-' {
            if set[i] <= c && c <= set[i + 2] {
                return true;
            }
            i += 3;
        } else {
            if set[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// Matches `text` against a shell glob of `*`, `?` and `[...]` that never
/// crosses a `/`. Dynamic programming over (glob element, text position), so
/// the time is their product whatever the glob (a backtracking matcher takes
/// exponential time on a word of many stars, and a Dockerfile is untrusted).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let n = t.len();
    // next[j]: the elements after the current one match t[j..].
    let mut next: Vec<bool> = (0..=n).map(|j| j == n).collect();
    let mut cur = vec![false; n + 1];
    for tok in tokens(&p).iter().rev() {
        for j in (0..=n).rev() {
            let c = t.get(j).copied().filter(|&c| c != '/');
            cur[j] = match tok {
                Tok::Star => next[j] || (c.is_some() && cur[j + 1]),
                Tok::Any => c.is_some() && next[j + 1],
                Tok::Set { negate, set } => {
                    c.is_some_and(|c| in_set(set, c) != *negate) && next[j + 1]
                }
                Tok::Lit(l) => t.get(j) == Some(l) && next[j + 1],
            };
        }
        std::mem::swap(&mut cur, &mut next);
    }
    next[0]
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
        assert!(glob_match("/etc/[a-z]hadow*", "/etc/shadow-"));
        assert!(glob_match("/etc/[^a-r]hadow-", "/etc/shadow-"));
        assert!(glob_match("/etc/[]x", "/etc/[]x"), "`[]` is not a set");
        assert!(
            glob_match("/etc/x[", "/etc/x["),
            "an unclosed `[` is literal"
        );
        assert!(!glob_match("/etc/*", "/etc/a/b"));
        assert!(glob_match("/etc/*/b", "/etc/a/b"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("?", ""));
        assert!(glob_match("", ""));
    }

    /// Found by the Dockerfile fuzz target: `rm -f /etc/sh****...**adow-` with a hundred
    /// stars took a backtracking matcher longer than any build.
    #[test]
    fn many_stars_do_not_take_exponential_time() {
        let pattern = format!("/etc/sh{}~{}adow-", "*".repeat(100), "*".repeat(10));
        assert!(!glob_match(&pattern, "/etc/shadow-"));
        assert!(glob_match(&pattern, "/etc/sh~adow-"));
        let long = format!("/var/log/{}", "*a".repeat(5000));
        assert!(!glob_match(&long, "/var/log/dpkg.log"));
        assert!(glob_match(&long, &format!("/var/log/{}", "a".repeat(5000))));
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
