//! Opt-in scrubbing of files known to differ between otherwise equal builds (install logs,
//! caches that record inode numbers or mtimes, bytecode, password-change dates).
//!
//! The rules are data: each names the paths (globs over canonical entry names, `*` within
//! one component, `**` across components) it removes, empties or rewrites. Nothing is
//! scrubbed unless asked for by name. Whiteout entries are never scrubbed: they describe
//! lower layers, not files.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// Rewrites a file's content; gets the content and SOURCE_DATE_EPOCH.
pub type Rewriter = fn(&[u8], i64) -> Result<Vec<u8>, String>;

/// One scrub rule.
pub struct Rule {
    pub name: &'static str,
    /// What it does, for `--help`.
    pub help: &'static str,
    /// Entries removed (a removed directory's contents must match too: list `dir/**`).
    pub remove: &'static [&'static str],
    /// Regular files kept but emptied.
    pub empty: &'static [&'static str],
    /// Regular files whose content is rewritten by `rewriter`.
    pub rewrite: &'static [&'static str],
    pub rewriter: Option<Rewriter>,
}

/// Every rule kiln knows, in the order `--help` lists them.
pub const RULES: &[Rule] = &[
    Rule {
        name: "apt-logs",
        help: "remove apt's and dpkg's install logs (var/log/apt/*, var/log/dpkg.log, \
               var/log/alternatives.log): they record when each package was installed",
        remove: &[
            "var/log/apt/*",
            "var/log/dpkg.log",
            "var/log/alternatives.log",
        ],
        empty: &[],
        rewrite: &[],
        rewriter: None,
    },
    Rule {
        name: "apt-cache",
        help: "remove apt's binary package caches (var/cache/apt/*.bin), which embed mtimes; \
               apt rebuilds them on demand",
        remove: &["var/cache/apt/*.bin"],
        empty: &[],
        rewrite: &[],
        rewriter: None,
    },
    Rule {
        name: "debootstrap-log",
        help: "remove debootstrap's log (var/log/bootstrap.log), full of timings",
        remove: &["var/log/bootstrap.log"],
        empty: &[],
        rewrite: &[],
        rewriter: None,
    },
    Rule {
        name: "dpkg-backups",
        help: "remove the previous-run backups of dpkg's and debconf's databases \
               (var/lib/dpkg/*-old, var/cache/debconf/*-old)",
        remove: &["var/lib/dpkg/*-old", "var/cache/debconf/*-old"],
        empty: &[],
        rewrite: &[],
        rewriter: None,
    },
    Rule {
        name: "ldconfig-cache",
        help: "remove ldconfig's auxiliary cache (var/cache/ldconfig/aux-cache), which records \
               inode numbers and change times of libraries; ldconfig rebuilds it",
        remove: &["var/cache/ldconfig/aux-cache"],
        empty: &[],
        rewrite: &[],
        rewriter: None,
    },
    Rule {
        name: "machine-id",
        help: "empty /etc/machine-id (an empty file makes systemd generate one at boot) and \
               remove D-Bus's copy (var/lib/dbus/machine-id)",
        remove: &["var/lib/dbus/machine-id"],
        empty: &["etc/machine-id"],
        rewrite: &[],
        rewriter: None,
    },
    Rule {
        name: "pycache",
        help: "remove Python bytecode (__pycache__ directories, *.pyc), which embeds the \
               mtimes of the sources; Python recompiles it when needed",
        remove: &["**/__pycache__", "**/__pycache__/**", "**/*.pyc"],
        empty: &[],
        rewrite: &[],
        rewriter: None,
    },
    Rule {
        name: "shadow-dates",
        help: "set the last-password-change day in etc/shadow and etc/shadow- to the day of \
               SOURCE_DATE_EPOCH (it is the day the user was created)",
        remove: &[],
        empty: &[],
        rewrite: &["etc/shadow", "etc/shadow-"],
        rewriter: Some(rewrite_shadow_dates),
    },
];

/// What to do to one entry.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    Remove,
    Empty,
    Rewrite(Rewriter),
}

/// The rules selected for a run, compiled.
pub struct Scrubber {
    rules: Vec<Compiled>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Scrubber").field(&self.names()).finish()
    }
}

struct Compiled {
    rule: &'static Rule,
    remove: GlobSet,
    empty: GlobSet,
    rewrite: GlobSet,
}

fn glob(p: &str) -> Result<Glob, String> {
    GlobBuilder::new(p)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("scrub pattern {p:?}: {e}"))
}

fn set(patterns: &[&str]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(glob(p)?);
    }
    b.build().map_err(|e| e.to_string())
}

impl Scrubber {
    /// Scrubs nothing.
    pub fn none() -> Scrubber {
        Scrubber { rules: Vec::new() }
    }

    /// Parses a comma-separated list of rule names (or `all`).
    pub fn parse(list: &str) -> Result<Scrubber, String> {
        let mut names: Vec<&str> = Vec::new();
        for n in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if n == "all" {
                names.extend(RULES.iter().map(|r| r.name));
            } else if RULES.iter().any(|r| r.name == n) {
                names.push(n);
            } else {
                let known: Vec<&str> = RULES.iter().map(|r| r.name).collect();
                return Err(format!(
                    "unknown scrub rule {n:?} (known: {}, or all)",
                    known.join(", ")
                ));
            }
        }
        Scrubber::from_names(&names)
    }

    /// The rules with these names (duplicates ignored), in table order.
    pub fn from_names(names: &[&str]) -> Result<Scrubber, String> {
        let mut rules = Vec::new();
        for rule in RULES.iter().filter(|r| names.contains(&r.name)) {
            rules.push(Compiled {
                rule,
                remove: set(rule.remove)?,
                empty: set(rule.empty)?,
                rewrite: set(rule.rewrite)?,
            });
        }
        Ok(Scrubber { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Names of the selected rules.
    pub fn names(&self) -> Vec<&'static str> {
        self.rules.iter().map(|c| c.rule.name).collect()
    }

    /// What the selected rules do to the entry at canonical `path`. `regular` says whether
    /// it is a regular file (only those are emptied or rewritten).
    pub fn decide(&self, path: &[u8], regular: bool) -> Option<(&'static str, Action)> {
        if self.rules.is_empty() || crate::names::is_whiteout(path) {
            return None;
        }
        let p = Path::new(OsStr::from_bytes(path));
        for c in &self.rules {
            if c.remove.is_match(p) {
                return Some((c.rule.name, Action::Remove));
            }
            if regular && c.empty.is_match(p) {
                return Some((c.rule.name, Action::Empty));
            }
            if regular && c.rewrite.is_match(p) {
                if let Some(f) = c.rule.rewriter {
                    return Some((c.rule.name, Action::Rewrite(f)));
                }
            }
        }
        None
    }
}

/// The rules as `--help` shows them: one paragraph each.
pub fn help_text() -> String {
    RULES
        .iter()
        .map(|r| {
            let words: Vec<&str> = r.help.split_whitespace().collect();
            format!("- {}: {}", r.name, words.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Largest shadow file rewritten (real ones are a few KiB).
const MAX_SHADOW: usize = 1 << 20;

/// shadow(5): `name:password:lastchg:min:max:warn:inactive:expire:reserved`. Sets `lastchg`
/// (days since 1970) to the day of the epoch where it is a number; other lines stay.
fn rewrite_shadow_dates(content: &[u8], epoch: i64) -> Result<Vec<u8>, String> {
    if content.len() > MAX_SHADOW {
        return Err(format!(
            "is {} bytes, too large for a shadow file (limit {MAX_SHADOW})",
            content.len()
        ));
    }
    let day = epoch.div_euclid(86_400).to_string();
    let mut out = Vec::with_capacity(content.len());
    for (i, line) in content.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        if fields.len() >= 3 && !fields[2].is_empty() && fields[2].iter().all(u8::is_ascii_digit) {
            for (j, f) in fields.iter().enumerate() {
                if j > 0 {
                    out.push(b':');
                }
                out.extend_from_slice(if j == 2 { day.as_bytes() } else { f });
            }
        } else {
            out.extend_from_slice(line);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(rule: &str, path: &str, regular: bool) -> Option<&'static str> {
        Scrubber::parse(rule)
            .unwrap()
            .decide(path.as_bytes(), regular)
            .map(|(name, a)| {
                assert_eq!(name, rule);
                match a {
                    Action::Remove => "remove",
                    Action::Empty => "empty",
                    Action::Rewrite(_) => "rewrite",
                }
            })
    }

    #[test]
    fn every_rule_is_documented_and_compiles() {
        let all = Scrubber::parse("all").unwrap();
        assert_eq!(all.names().len(), RULES.len());
        let help = help_text();
        for r in RULES {
            assert!(help.contains(r.name));
            assert!(!r.help.is_empty());
        }
        assert!(Scrubber::parse("apt-logs,nope")
            .unwrap_err()
            .contains("nope"));
        assert!(Scrubber::parse("").unwrap().is_empty());
    }

    #[test]
    fn apt_logs() {
        assert_eq!(
            decide("apt-logs", "var/log/apt/history.log", true),
            Some("remove")
        );
        assert_eq!(
            decide("apt-logs", "var/log/apt/eipp.log.xz", true),
            Some("remove")
        );
        assert_eq!(decide("apt-logs", "var/log/dpkg.log", true), Some("remove"));
        assert_eq!(
            decide("apt-logs", "var/log/alternatives.log", true),
            Some("remove")
        );
        assert_eq!(decide("apt-logs", "var/log/apt", false), None);
        assert_eq!(
            decide("apt-logs", "var/log/apt/.wh.history.log", true),
            None
        );
        assert_eq!(decide("apt-logs", "var/log/faillog", true), None);
    }

    #[test]
    fn apt_cache() {
        assert_eq!(
            decide("apt-cache", "var/cache/apt/pkgcache.bin", true),
            Some("remove")
        );
        assert_eq!(
            decide("apt-cache", "var/cache/apt/srcpkgcache.bin", true),
            Some("remove")
        );
        assert_eq!(
            decide("apt-cache", "var/cache/apt/archives/lock", true),
            None
        );
    }

    #[test]
    fn debootstrap_log() {
        assert_eq!(
            decide("debootstrap-log", "var/log/bootstrap.log", true),
            Some("remove")
        );
        assert_eq!(decide("debootstrap-log", "var/log/dpkg.log", true), None);
    }

    #[test]
    fn dpkg_backups() {
        assert_eq!(
            decide("dpkg-backups", "var/lib/dpkg/status-old", true),
            Some("remove")
        );
        assert_eq!(
            decide("dpkg-backups", "var/cache/debconf/config.dat-old", true),
            Some("remove")
        );
        assert_eq!(decide("dpkg-backups", "var/lib/dpkg/status", true), None);
    }

    #[test]
    fn ldconfig_cache() {
        assert_eq!(
            decide("ldconfig-cache", "var/cache/ldconfig/aux-cache", true),
            Some("remove")
        );
        assert_eq!(decide("ldconfig-cache", "etc/ld.so.cache", true), None);
    }

    #[test]
    fn machine_id() {
        assert_eq!(decide("machine-id", "etc/machine-id", true), Some("empty"));
        assert_eq!(
            decide("machine-id", "etc/machine-id", false),
            None,
            "a symlink stays"
        );
        assert_eq!(
            decide("machine-id", "var/lib/dbus/machine-id", false),
            Some("remove")
        );
    }

    #[test]
    fn pycache() {
        assert_eq!(
            decide(
                "pycache",
                "usr/lib/python3/dist-packages/__pycache__",
                false
            ),
            Some("remove")
        );
        assert_eq!(
            decide(
                "pycache",
                "usr/lib/python3/__pycache__/a.cpython-311.pyc",
                true
            ),
            Some("remove")
        );
        assert_eq!(decide("pycache", "__pycache__", false), Some("remove"));
        assert_eq!(decide("pycache", "opt/x.pyc", true), Some("remove"));
        assert_eq!(decide("pycache", "opt/x.py", true), None);
    }

    #[test]
    fn shadow_dates() {
        let s = Scrubber::parse("shadow-dates").unwrap();
        let Some((_, Action::Rewrite(f))) = s.decide(b"etc/shadow", true) else {
            panic!("etc/shadow is rewritten");
        };
        assert!(decide("shadow-dates", "etc/shadow-", true).is_some());
        assert!(decide("shadow-dates", "etc/gshadow", true).is_none());
        let input = b"root:*:19700:0:99999:7:::\nnobody:*::0:99999:7:::\nbad line\n";
        let out = f(input, 1_700_000_000).unwrap();
        assert_eq!(
            out,
            b"root:*:19675:0:99999:7:::\nnobody:*::0:99999:7:::\nbad line\n".to_vec()
        );
        assert!(f(&vec![b'x'; MAX_SHADOW + 1], 0).is_err());
    }
}
