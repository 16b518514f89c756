//! The one table of what kiln leaves to BuildKit, and why.
//!
//! The plan ([`crate::plan`]) turns each instruction (and the file's directives and the build
//! arguments) into [`Feature`]s; every feature that a [`Rule`] of [`RULES`] matches makes
//! that step a BuildKit step. Anything no rule matches is built natively. Adding a rule here
//! is the only change needed to route a new feature to BuildKit.

use kiln_dockerfile::{Mount, MountType};

/// One reason to hand a build to BuildKit.
#[derive(Debug)]
pub struct Rule {
    /// Stable identifier, printed in plans (`run-mount-cache`).
    pub id: &'static str,
    /// What kiln does not do, in a few words.
    pub what: &'static str,
    /// Why, for the plan and for `--fallback never`'s error.
    pub why: &'static str,
    matches: fn(&Feature<'_>) -> bool,
}

impl Rule {
    /// Whether this rule sends `feature` to BuildKit.
    pub fn matches(&self, feature: &Feature<'_>) -> bool {
        (self.matches)(feature)
    }
}

/// Where a `RUN --mount from=` points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountFrom {
    /// No `from=`: the build context.
    Context,
    /// A stage of this Dockerfile.
    Stage,
    /// Anything else: an image (or a named context), which BuildKit pulls.
    Image,
}

/// Something a Dockerfile uses that a rule may care about.
#[derive(Clone, Copy, Debug)]
pub enum Feature<'a> {
    /// A parser directive at the top of the file (`# syntax=...`).
    Directive { name: &'a str, value: &'a str },
    /// A build argument given to the build.
    BuildArg { key: &'a str, value: &'a str },
    /// One `RUN --mount`, expanded.
    RunMount { mount: &'a Mount, from: MountFrom },
    /// `RUN --security=insecure` (labs syntax).
    RunInsecure,
    /// One ADD source, expanded.
    AddSource { src: &'a str, checksum: bool },
    /// `COPY --parents` (labs syntax).
    CopyParents,
    /// `COPY/ADD --exclude` (labs syntax).
    Exclude,
}

impl Feature<'_> {
    /// The feature as the user wrote it, for messages.
    pub fn describe(&self) -> String {
        match self {
            Feature::Directive { name, value } => format!("# {name}={value}"),
            Feature::BuildArg { key, value } => format!("--build-arg {key}={value}"),
            Feature::RunMount { mount, .. } => {
                let mut s = format!("--mount=type={}", mount.kind.as_str());
                if let Some(f) = &mount.from {
                    s.push_str(&format!(",from={f}"));
                }
                if let Some(t) = &mount.target {
                    s.push_str(&format!(",target={t}"));
                }
                s
            }
            Feature::RunInsecure => "--security=insecure".into(),
            Feature::AddSource { src, .. } => (*src).to_string(),
            Feature::CopyParents => "--parents".into(),
            Feature::Exclude => "--exclude".into(),
        }
    }
}

fn is_url(src: &str) -> bool {
    src.starts_with("http://") || src.starts_with("https://")
}

/// A git source as BuildKit's ADD recognises one (`git@host:repo`, `git://`, `ssh://`, or a
/// URL whose path ends in `.git`, optionally followed by `#ref`).
pub fn is_git(src: &str) -> bool {
    if src.starts_with("git@") || src.starts_with("git://") || src.starts_with("ssh://") {
        return true;
    }
    let base = src.split('#').next().unwrap_or(src);
    src.contains("://") && base.ends_with(".git")
}

/// Every rule, in the order plans list them.
pub static RULES: &[Rule] = &[
    Rule {
        id: "syntax-directive",
        what: "a `# syntax=` directive",
        why: "BuildKit hands such a file to that frontend image instead of its built-in \
              Dockerfile frontend, which is the one kiln reimplements",
        matches: |f| matches!(f, Feature::Directive { name, .. } if name.eq_ignore_ascii_case("syntax")),
    },
    Rule {
        id: "syntax-build-arg",
        what: "the BUILDKIT_SYNTAX build argument",
        why: "BuildKit then runs that frontend image instead of its built-in Dockerfile frontend",
        matches: |f| matches!(f, Feature::BuildArg { key, .. } if *key == "BUILDKIT_SYNTAX"),
    },
    Rule {
        id: "run-mount-cache",
        what: "a cache mount",
        why: "its content persists from build to build, which kiln does not model",
        matches: |f| matches!(f, Feature::RunMount { mount, .. } if mount.kind == MountType::Cache),
    },
    Rule {
        id: "run-mount-secret",
        what: "a secret mount",
        why: "secrets are served by the BuildKit client (--secret); kiln has no secret store",
        matches: |f| matches!(f, Feature::RunMount { mount, .. } if mount.kind == MountType::Secret),
    },
    Rule {
        id: "run-mount-ssh",
        what: "an SSH agent mount",
        why: "agent forwarding is served by the BuildKit client (--ssh)",
        matches: |f| matches!(f, Feature::RunMount { mount, .. } if mount.kind == MountType::Ssh),
    },
    Rule {
        id: "run-mount-image",
        what: "a bind mount of an image",
        why: "kiln mounts the context and stages, not images",
        matches: |f| matches!(f, Feature::RunMount { mount, from: MountFrom::Image } if mount.kind == MountType::Bind),
    },
    Rule {
        id: "run-insecure",
        what: "RUN --security=insecure",
        why: "privileged steps need BuildKit's security.insecure entitlement",
        matches: |f| matches!(f, Feature::RunInsecure),
    },
    Rule {
        id: "add-git",
        what: "ADD of a git repository",
        why: "kiln does not clone; BuildKit fetches it",
        matches: |f| matches!(f, Feature::AddSource { src, .. } if is_git(src)),
    },
    Rule {
        id: "add-url",
        what: "ADD of a URL without --checksum",
        why: "what the server returns may change between builds; BuildKit downloads it",
        matches: |f| matches!(f, Feature::AddSource { src, checksum: false } if is_url(src) && !is_git(src)),
    },
    Rule {
        id: "add-url-checksum",
        what: "ADD of a URL with --checksum",
        why: "deterministic, but kiln does not download natively yet",
        matches: |f| matches!(f, Feature::AddSource { src, checksum: true } if is_url(src) && !is_git(src)),
    },
    Rule {
        id: "copy-parents",
        what: "COPY --parents (labs syntax)",
        why: "not implemented natively",
        matches: |f| matches!(f, Feature::CopyParents),
    },
    Rule {
        id: "exclude",
        what: "COPY/ADD --exclude (labs syntax)",
        why: "not implemented natively",
        matches: |f| matches!(f, Feature::Exclude),
    },
];

/// The rules `feature` matches.
pub fn matching<'a>(feature: &'a Feature<'a>) -> impl Iterator<Item = &'static Rule> + 'a {
    RULES.iter().filter(move |r| r.matches(feature))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(kind: MountType, from: Option<&str>) -> Mount {
        Mount {
            kind,
            from: from.map(str::to_string),
            source: None,
            target: Some("/t".into()),
            read_only: false,
            size_limit: 0,
            cache_id: None,
            cache_sharing: None,
            required: false,
            env: None,
            mode: None,
            uid: None,
            gid: None,
        }
    }

    fn ids(f: Feature<'_>) -> Vec<&'static str> {
        matching(&f).map(|r| r.id).collect()
    }

    #[test]
    fn ids_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "duplicate rule id {}", r.id);
        }
    }

    #[test]
    fn mounts() {
        let cache = mount(MountType::Cache, None);
        let f = Feature::RunMount {
            mount: &cache,
            from: MountFrom::Context,
        };
        assert_eq!(ids(f), ["run-mount-cache"]);
        assert_eq!(f.describe(), "--mount=type=cache,target=/t");
        let secret = mount(MountType::Secret, None);
        assert_eq!(
            ids(Feature::RunMount {
                mount: &secret,
                from: MountFrom::Context
            }),
            ["run-mount-secret"]
        );
        let ssh = mount(MountType::Ssh, None);
        assert_eq!(
            ids(Feature::RunMount {
                mount: &ssh,
                from: MountFrom::Context
            }),
            ["run-mount-ssh"]
        );
        let tmpfs = mount(MountType::Tmpfs, None);
        assert!(ids(Feature::RunMount {
            mount: &tmpfs,
            from: MountFrom::Context
        })
        .is_empty());
        let bind = mount(MountType::Bind, Some("alpine"));
        assert_eq!(
            ids(Feature::RunMount {
                mount: &bind,
                from: MountFrom::Image
            }),
            ["run-mount-image"]
        );
        assert!(ids(Feature::RunMount {
            mount: &bind,
            from: MountFrom::Stage
        })
        .is_empty());
    }

    #[test]
    fn add_sources() {
        let add = |src, checksum| ids(Feature::AddSource { src, checksum });
        assert_eq!(add("https://example.com/a.tar", false), ["add-url"]);
        assert_eq!(add("http://example.com/a", true), ["add-url-checksum"]);
        assert_eq!(
            add("https://github.com/moby/moby.git#v1", false),
            ["add-git"]
        );
        assert_eq!(add("git@github.com:moby/moby.git", false), ["add-git"]);
        assert_eq!(add("git://example.com/r", true), ["add-git"]);
        assert!(add("bundle.tar.gz", false).is_empty());
        assert!(add("dir/x.git", false).is_empty());
    }

    #[test]
    fn syntax() {
        assert_eq!(
            ids(Feature::Directive {
                name: "syntax",
                value: "docker/dockerfile:1"
            }),
            ["syntax-directive"]
        );
        assert!(ids(Feature::Directive {
            name: "escape",
            value: "`"
        })
        .is_empty());
        assert_eq!(
            ids(Feature::BuildArg {
                key: "BUILDKIT_SYNTAX",
                value: "x"
            }),
            ["syntax-build-arg"]
        );
        assert!(ids(Feature::BuildArg {
            key: "VERSION",
            value: "1"
        })
        .is_empty());
    }
}
