//! The rule table: every rule kiln lint knows, as data.
//!
//! The matching code lives in `checks/`; each check names the [`RuleId`] it
//! reports, and everything a user reads about a rule (title, what breaks,
//! the fix, a reference) comes from [`RULES`].

use serde::Serialize;
use std::fmt;

/// How bad a finding is. `error` findings make `kiln lint` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The image will (or can) differ between two builds of the same source.
    Error,
    /// Often breaks reproducibility, depending on the base image or the builder.
    Warning,
    /// Worth knowing; never fails the lint.
    Info,
}

impl Severity {
    /// `error`, `warning` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    /// The SARIF `level` of this severity.
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "note",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rules, by identifier. `RuleId as usize` indexes [`RULES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleId {
    /// KL001
    FloatingBaseImage,
    /// KL002
    AptUnpinned,
    /// KL003
    DnfUnpinned,
    /// KL004
    ApkUnpinned,
    /// KL005
    PipUnpinned,
    /// KL006
    AptListsLeft,
    /// KL007
    PackageLogsLeft,
    /// KL008
    ShadowLastChange,
    /// KL009
    Clock,
    /// KL010
    MktempLeft,
    /// KL011
    Randomness,
    /// KL012
    HostIdentity,
    /// KL013
    AddUrlNoChecksum,
    /// KL014
    GitNotCommit,
    /// KL015
    GoBuildFlags,
    /// KL016
    PycTimestamps,
    /// KL017
    NpmInstall,
    /// KL018
    ContextVcsLeak,
    /// KL019
    SdeArgMissing,
}

impl RuleId {
    /// Every rule, in table order.
    pub const ALL: [RuleId; 19] = [
        RuleId::FloatingBaseImage,
        RuleId::AptUnpinned,
        RuleId::DnfUnpinned,
        RuleId::ApkUnpinned,
        RuleId::PipUnpinned,
        RuleId::AptListsLeft,
        RuleId::PackageLogsLeft,
        RuleId::ShadowLastChange,
        RuleId::Clock,
        RuleId::MktempLeft,
        RuleId::Randomness,
        RuleId::HostIdentity,
        RuleId::AddUrlNoChecksum,
        RuleId::GitNotCommit,
        RuleId::GoBuildFlags,
        RuleId::PycTimestamps,
        RuleId::NpmInstall,
        RuleId::ContextVcsLeak,
        RuleId::SdeArgMissing,
    ];

    /// The rule's table entry.
    pub fn rule(self) -> &'static Rule {
        &RULES[self as usize]
    }

    /// Looks a rule up by id (`KL001`) or slug (`floating-base-image`), case-insensitively.
    pub fn find(name: &str) -> Option<RuleId> {
        let name = name.trim();
        RuleId::ALL.into_iter().find(|r| {
            let rule = r.rule();
            rule.id.eq_ignore_ascii_case(name) || rule.slug.eq_ignore_ascii_case(name)
        })
    }
}

/// One rule's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Stable identifier, e.g. `KL001`.
    pub id: &'static str,
    /// Readable name, e.g. `floating-base-image`.
    pub slug: &'static str,
    /// How bad a finding of this rule is.
    pub severity: Severity,
    /// One line.
    pub title: &'static str,
    /// What differs between two builds when this rule fires.
    pub breaks: &'static str,
    /// How to fix it.
    pub fix: &'static str,
    /// Where to read more.
    pub reference: &'static str,
}

/// The rule table, in [`RuleId`] order.
pub static RULES: [Rule; 19] = [
    Rule {
        id: "KL001",
        slug: "floating-base-image",
        severity: Severity::Error,
        title: "image referenced by a tag instead of a digest",
        breaks: "a tag (or no tag, meaning `latest`) is moved by its publisher: two builds of the same Dockerfile start from different base layers",
        fix: "pin the image by digest: `FROM name:tag@sha256:<digest>` (the digest of the manifest or index you tested with)",
        reference: "https://docs.docker.com/build/building/best-practices/#pin-base-image-versions",
    },
    Rule {
        id: "KL002",
        slug: "apt-unpinned",
        severity: Severity::Error,
        title: "apt installs packages without versions or a snapshot",
        breaks: "apt installs whatever version the mirror serves on the day of the build",
        fix: "pin every package (`curl=7.88.1-10+deb12u8`) or point apt at a dated snapshot.debian.org mirror first (e.g. with repro-sources-list.sh)",
        reference: "https://github.com/reproducible-containers/repro-sources-list.sh",
    },
    Rule {
        id: "KL003",
        slug: "dnf-unpinned",
        severity: Severity::Error,
        title: "dnf/yum installs packages without versions",
        breaks: "dnf/yum install the newest build in the repositories on the day of the build",
        fix: "name every package with its version (`curl-7.76.1-29.el9`) or install local .rpm files",
        reference: "https://dnf.readthedocs.io/en/latest/command_ref.html#specifying-packages-label",
    },
    Rule {
        id: "KL004",
        slug: "apk-unpinned",
        severity: Severity::Error,
        title: "apk adds packages without versions",
        breaks: "apk installs the newest package in the Alpine repositories on the day of the build",
        fix: "pin every package with `name=version` (`curl=8.5.0-r0`)",
        reference: "https://wiki.alpinelinux.org/wiki/Alpine_Package_Keeper#Holding_a_specific_package_back",
    },
    Rule {
        id: "KL005",
        slug: "pip-unpinned",
        severity: Severity::Error,
        title: "pip installs requirements without exact versions or hashes",
        breaks: "pip resolves to the newest matching releases (and their newest dependencies) on the day of the build",
        fix: "install from a fully pinned requirements file with `--require-hashes`, or pin each requirement with `==`",
        reference: "https://pip.pypa.io/en/stable/topics/secure-installs/",
    },
    Rule {
        id: "KL006",
        slug: "apt-lists-left",
        severity: Severity::Error,
        title: "apt-get update leaves /var/lib/apt/lists in the image",
        breaks: "the package lists hold the mirror's current Release files and dates",
        fix: "end the same RUN with `rm -rf /var/lib/apt/lists/*`, or mount a cache on /var/lib/apt",
        reference: "https://docs.docker.com/build/building/best-practices/#apt-get",
    },
    Rule {
        id: "KL007",
        slug: "package-logs-left",
        severity: Severity::Error,
        title: "package installation leaves dated logs and caches in the image",
        breaks: "/var/log/apt/*, /var/log/dpkg.log and /var/cache/ldconfig/aux-cache record the time (and inode details) of the installation",
        fix: "end the same RUN with `rm -rf /var/log/* /var/cache/ldconfig/aux-cache`",
        reference: "https://github.com/reproducible-containers/repro-sources-list.sh#usage",
    },
    Rule {
        id: "KL008",
        slug: "shadow-last-change",
        severity: Severity::Error,
        title: "useradd/adduser writes today's date into /etc/shadow",
        breaks: "the third field of /etc/shadow is the day of the last password change, i.e. the build day; /etc/shadow- keeps a copy",
        fix: "after creating users, reset the day (`chage -d 0 USER`, or `sed -i` on /etc/shadow) and `rm -f /etc/shadow-`, or declare `ARG SOURCE_DATE_EPOCH` (shadow-utils useradd honours it)",
        reference: "https://reproducible-builds.org/docs/source-date-epoch/",
    },
    Rule {
        id: "KL009",
        slug: "clock",
        severity: Severity::Error,
        title: "the build reads the wall clock",
        breaks: "`date` (and $EPOCHSECONDS) return the time of the build, which then ends up in files",
        fix: "use SOURCE_DATE_EPOCH: `date -u -d \"@${SOURCE_DATE_EPOCH}\"` with `ARG SOURCE_DATE_EPOCH`, or drop the timestamp",
        reference: "https://reproducible-builds.org/docs/timestamps/",
    },
    Rule {
        id: "KL010",
        slug: "mktemp-left",
        severity: Severity::Error,
        title: "a mktemp file or directory with a random name stays in the image",
        breaks: "mktemp picks a random name each build; left behind, the name differs in the layer",
        fix: "remove it in the same RUN (`T=$(mktemp -d) && ... && rm -rf \"$T\"`) or mount a tmpfs on /tmp (`RUN --mount=type=tmpfs,target=/tmp`)",
        reference: "https://reproducible-builds.org/docs/randomness/",
    },
    Rule {
        id: "KL011",
        slug: "randomness",
        severity: Severity::Error,
        title: "the build uses random values",
        breaks: "$RANDOM, uuidgen, /dev/urandom, /proc/sys/kernel/random/uuid, `openssl rand` and shuf differ on every run",
        fix: "use a fixed value or derive it from the source (e.g. a hash of the input)",
        reference: "https://reproducible-builds.org/docs/randomness/",
    },
    Rule {
        id: "KL012",
        slug: "host-identity",
        severity: Severity::Warning,
        title: "the build reads the build machine's name or kernel",
        breaks: "hostname, $HOSTNAME and `uname -a/-n/-r/-v` describe the machine (or builder) that ran the step",
        fix: "do not record the build host; write a fixed value instead",
        reference: "https://reproducible-builds.org/docs/env-variations/",
    },
    Rule {
        id: "KL013",
        slug: "add-url-without-checksum",
        severity: Severity::Error,
        title: "ADD downloads a URL without --checksum",
        breaks: "the server can return different bytes tomorrow",
        fix: "add `--checksum=sha256:<hex>` to the ADD",
        reference: "https://docs.docker.com/reference/dockerfile/#add---checksum",
    },
    Rule {
        id: "KL014",
        slug: "git-not-commit",
        severity: Severity::Error,
        title: "git source fetched by branch or tag instead of a commit",
        breaks: "branches (and tags) move: the same Dockerfile fetches different code later",
        fix: "use a full commit hash: `ADD https://host/repo.git#<40-hex commit> /src`, or `git clone` then `git checkout <commit>` in the same RUN",
        reference: "https://docs.docker.com/reference/dockerfile/#adding-private-git-repositories",
    },
    Rule {
        id: "KL015",
        slug: "go-build-flags",
        severity: Severity::Warning,
        title: "go build without -trimpath and an empty build ID",
        breaks: "Go embeds build paths and a build ID that depend on where and how the toolchain ran",
        fix: "build with `go build -trimpath -ldflags=-buildid=` (or set GOFLAGS=\"-trimpath -ldflags=-buildid=\")",
        reference: "https://go.dev/blog/rebuild",
    },
    Rule {
        id: "KL016",
        slug: "pyc-timestamps",
        severity: Severity::Warning,
        title: "Python bytecode compiled without SOURCE_DATE_EPOCH",
        breaks: ".pyc files record the source files' mtimes unless SOURCE_DATE_EPOCH selects hash-based invalidation",
        fix: "declare `ARG SOURCE_DATE_EPOCH` in the stage (or pass `--no-compile` to pip, `--invalidation-mode checked-hash` to compileall)",
        reference: "https://reproducible-builds.org/docs/source-date-epoch/",
    },
    Rule {
        id: "KL017",
        slug: "npm-install",
        severity: Severity::Error,
        title: "npm/yarn/pnpm install instead of a lockfile-exact install",
        breaks: "`npm install` may update package-lock.json and resolves ranges to the newest releases",
        fix: "use `npm ci` (yarn: `--frozen-lockfile`/`--immutable`, pnpm: `--frozen-lockfile`), and pin packages given by name with an exact version",
        reference: "https://docs.npmjs.com/cli/commands/npm-ci",
    },
    Rule {
        id: "KL018",
        slug: "context-vcs-leak",
        severity: Severity::Error,
        title: "COPY/ADD copies the .git directory of the build context",
        breaks: "the .git directory (index, refs, packs) changes with every commit, checkout and fetch",
        fix: "add `.git` to a .dockerignore next to the Dockerfile or at the context root",
        reference: "https://docs.docker.com/build/concepts/context/#dockerignore-files",
    },
    Rule {
        id: "KL019",
        slug: "sde-arg-missing",
        severity: Severity::Error,
        title: "RUN uses SOURCE_DATE_EPOCH that the stage never declares",
        breaks: "build args are only visible to RUN after `ARG NAME` in the same stage: SOURCE_DATE_EPOCH is empty there",
        fix: "add `ARG SOURCE_DATE_EPOCH` in the stage before this RUN",
        reference: "https://docs.docker.com/build/ci/github-actions/reproducible-builds/",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_id_order_and_unique() {
        for (i, r) in RuleId::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(r.rule().id, format!("KL{:03}", i + 1));
            assert_eq!(RuleId::find(r.rule().slug), Some(*r));
            assert_eq!(RuleId::find(&r.rule().id.to_lowercase()), Some(*r));
        }
        assert_eq!(RuleId::find("KL999"), None);
    }
}
