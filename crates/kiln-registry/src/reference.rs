//! Docker image references (`[host[:port]/]path[:tag][@sha256:...]`), parsed and normalized the
//! way `distribution/reference` (`ParseNormalizedNamed`) and containerd do, so that kiln names the
//! same repository Docker and BuildKit would for the same string.
//!
//! The grammar is checked by hand rather than with a regex so that every error can name the
//! part that is wrong.

use std::fmt;
use std::str::FromStr;

use kiln_digest::Digest;

/// The registry a reference without a host names (Docker Hub).
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Docker Hub's legacy name, folded into [`DEFAULT_REGISTRY`].
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// Namespace of single-component Docker Hub names (`busybox` is `library/busybox`).
const OFFICIAL_PREFIX: &str = "library/";
/// The tag a reference gets when it has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository path distribution accepts.
pub const MAX_PATH_LEN: usize = 255;
/// Longest tag distribution accepts.
const MAX_TAG_LEN: usize = 128;

/// A repository: a registry host and a path inside it (`docker.io` + `library/busybox`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Repository {
    registry: String,
    path: String,
}

/// What an image reference points at inside its repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target<'a> {
    Tag(&'a str),
    Digest(Digest),
}

/// A parsed, normalized image reference. It always has a tag or a digest (or both): a bare
/// name gets the tag `latest`, as Docker does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    repo: Repository,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference; the message quotes the input and names the part
/// that is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input:?}: {problem}")]
pub struct ParseReferenceError {
    input: String,
    problem: ReferenceProblem,
}

/// The part of a reference that is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceProblem {
    #[error("repository name must have at least one component")]
    Empty,
    #[error("a repository name takes no tag or digest")]
    NotARepository,
    #[error("a bare 64-hex-digit identifier is not a repository name")]
    HexIdentifier,
    #[error("registry host {0:?} is not a valid host[:port]")]
    BadRegistry(String),
    #[error("repository name {0:?} must be lowercase")]
    Uppercase(String),
    #[error(
        "path component {0:?} is invalid (lowercase letters and digits, separated by one '.', \
         one or two '_', or dashes)"
    )]
    BadComponent(String),
    #[error("repository path is {0} characters long, more than the limit of 255")]
    PathTooLong(usize),
    #[error(
        "tag {0:?} is invalid (1 to 128 letters, digits, '_', '.' or '-', not starting with '.' \
         or '-')"
    )]
    BadTag(String),
    #[error("digest {digest:?} is invalid: {reason}")]
    BadDigest { digest: String, reason: String },
}

impl ParseReferenceError {
    fn new(input: &str, problem: ReferenceProblem) -> Self {
        ParseReferenceError {
            input: input.to_string(),
            problem,
        }
    }

    /// The string that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }

    pub fn problem(&self) -> &ReferenceProblem {
        &self.problem
    }
}

/// Strips the `docker://` transport prefix skopeo and BuildKit users write in front of a
/// reference, if there is one.
pub fn strip_transport(s: &str) -> &str {
    s.strip_prefix("docker://").unwrap_or(s)
}

impl Repository {
    /// Parses a repository name alone (no tag, no digest), normalized like a reference.
    pub fn parse(s: &str) -> Result<Repository, ParseReferenceError> {
        if s.contains('@') || last_tag_separator(s).is_some() {
            return Err(ParseReferenceError::new(
                s,
                ReferenceProblem::NotARepository,
            ));
        }
        parse_name(s, s)
    }

    /// The registry host, with its port if any (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The path inside the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The short form Docker shows: Docker Hub's host and `library/` namespace dropped.
    pub fn familiar(&self) -> String {
        if self.registry != DEFAULT_REGISTRY {
            return self.to_string();
        }
        match self.path.strip_prefix(OFFICIAL_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

impl FromStr for Repository {
    type Err = ParseReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Repository::parse(s)
    }
}

impl Reference {
    /// Parses a reference like Docker does (`busybox`, `user/app:1.0`,
    /// `127.0.0.1:5000/busybox@sha256:...`). A leading `docker://` is not accepted here; strip it
    /// with [`strip_transport`] where a transport prefix is allowed.
    pub fn parse(s: &str) -> Result<Reference, ParseReferenceError> {
        let err = |p| ParseReferenceError::new(s, p);
        if s.is_empty() {
            return Err(err(ReferenceProblem::Empty));
        }
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(err(ReferenceProblem::HexIdentifier));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((name_tag, d)) => {
                let digest = d.parse::<Digest>().map_err(|e| {
                    err(ReferenceProblem::BadDigest {
                        digest: d.to_string(),
                        reason: e.to_string(),
                    })
                })?;
                (name_tag, Some(digest))
            }
            None => (s, None),
        };
        let (name, tag) = split_tag(name_tag);
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(err(ReferenceProblem::BadTag(tag.to_string())));
            }
        }
        let repo = parse_name(s, name)?;
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference { repo, tag, digest })
    }

    /// A reference to `repo` by tag.
    pub fn with_tag(repo: Repository, tag: &str) -> Result<Reference, ParseReferenceError> {
        if !valid_tag(tag) {
            return Err(ParseReferenceError::new(
                &format!("{repo}:{tag}"),
                ReferenceProblem::BadTag(tag.to_string()),
            ));
        }
        Ok(Reference {
            repo,
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// A reference to `repo` by digest.
    pub fn with_digest(repo: Repository, digest: Digest) -> Reference {
        Reference {
            repo,
            tag: None,
            digest: Some(digest),
        }
    }

    /// This reference pinned to `digest`, its tag dropped (what BuildKit records after
    /// resolving a tag, like `ParseDockerRef`).
    pub fn pinned(&self, digest: Digest) -> Reference {
        Reference::with_digest(self.repo.clone(), digest)
    }

    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    pub fn registry(&self) -> &str {
        &self.repo.registry
    }

    pub fn path(&self) -> &str {
        &self.repo.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<Digest> {
        self.digest
    }

    /// What to fetch: the digest when there is one (it wins over a tag), else the tag.
    pub fn target(&self) -> Target<'_> {
        match (&self.digest, &self.tag) {
            (Some(d), _) => Target::Digest(*d),
            (None, Some(t)) => Target::Tag(t),
            // Parsing guarantees a tag or a digest; `latest` keeps this total anyway.
            (None, None) => Target::Tag(DEFAULT_TAG),
        }
    }

    /// The normalized repository name without tag or digest (`docker.io/library/busybox`).
    pub fn name(&self) -> String {
        self.repo.to_string()
    }

    /// The short form Docker shows (`busybox:latest`, `user/app@sha256:...`).
    pub fn familiar(&self) -> String {
        self.with_name(self.repo.familiar())
    }

    fn with_name(&self, mut s: String) -> String {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The full normalized form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_name(self.repo.to_string()))
    }
}

impl FromStr for Reference {
    type Err = ParseReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tag(t) => f.write_str(t),
            Target::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// Index of the `:` that starts a tag: the last colon after the last slash.
fn last_tag_separator(s: &str) -> Option<usize> {
    let colon = s.rfind(':')?;
    match s.rfind('/') {
        Some(slash) if slash > colon => None,
        _ => Some(colon),
    }
}

fn split_tag(s: &str) -> (&str, Option<&str>) {
    match last_tag_separator(s) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

/// Splits off the registry host and validates both halves. `input` is only for messages.
fn parse_name(input: &str, name: &str) -> Result<Repository, ParseReferenceError> {
    let err = |p| ParseReferenceError::new(input, p);
    if name.is_empty() {
        return Err(err(ReferenceProblem::Empty));
    }
    // The first component is a host if it is `localhost`, looks like a domain or an address
    // (has a '.' or ':'), or has uppercase letters (which a path may not have): the rule of
    // distribution's splitDockerDomain.
    let (registry, mut path) = match name.split_once('/') {
        None => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        Some((first, rest)) => {
            if first == "localhost" || first.contains(['.', ':']) || first.to_lowercase() != first {
                let host = if first == LEGACY_DEFAULT_REGISTRY {
                    DEFAULT_REGISTRY
                } else {
                    first
                };
                (host.to_string(), rest.to_string())
            } else {
                (DEFAULT_REGISTRY.to_string(), name.to_string())
            }
        }
    };
    if registry == DEFAULT_REGISTRY && !path.contains('/') {
        path.insert_str(0, OFFICIAL_PREFIX);
    }
    if !valid_host_port(&registry) {
        return Err(err(ReferenceProblem::BadRegistry(registry)));
    }
    if path.to_lowercase() != path {
        return Err(err(ReferenceProblem::Uppercase(path)));
    }
    for component in path.split('/') {
        if !valid_path_component(component) {
            return Err(err(ReferenceProblem::BadComponent(component.to_string())));
        }
    }
    if path.len() > MAX_PATH_LEN {
        return Err(err(ReferenceProblem::PathTooLong(path.len())));
    }
    Ok(Repository { registry, path })
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && word(b[0])
        && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    // Every run of non-alphanumerics must be one of the allowed separators.
    b.split(alnum)
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|&c| c == b'-'))
}

/// `host[:port]` where host is a domain name (components of letters, digits and inner dashes,
/// joined by dots), a dotted IPv4 address (which is also a domain name), or `[ipv6]`.
fn valid_host_port(s: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        let v6 = |b: u8| b.is_ascii_hexdigit() || b == b':';
        (!inner.is_empty() && inner.bytes().all(v6), port)
    } else {
        let (host, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        (host.split('.').all(valid_domain_component), port)
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:3f0408471efe0ab36280f5435d6851b5d1ad275341c84ab21349f03cd4f4e9c6";

    /// (input, full normalized form, familiar form)
    const VALID: &[(&str, &str, &str)] = &[
        (
            "busybox",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        (
            "busybox:1.36",
            "docker.io/library/busybox:1.36",
            "busybox:1.36",
        ),
        (
            "docker.io/busybox",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        (
            "index.docker.io/busybox",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        (
            "docker.io/library/busybox:latest",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        ("user/app", "docker.io/user/app:latest", "user/app:latest"),
        (
            "library/a/b",
            "docker.io/library/a/b:latest",
            "library/a/b:latest",
        ),
        (
            "localhost/app",
            "localhost/app:latest",
            "localhost/app:latest",
        ),
        (
            "localhost:5000/app:v1",
            "localhost:5000/app:v1",
            "localhost:5000/app:v1",
        ),
        // A lone "localhost:5000" is Docker Hub's library/localhost at tag 5000.
        (
            "localhost:5000",
            "docker.io/library/localhost:5000",
            "localhost:5000",
        ),
        (
            "example.com/a/b/c:T_1.x-y",
            "example.com/a/b/c:T_1.x-y",
            "example.com/a/b/c:T_1.x-y",
        ),
        (
            "Example.COM/app",
            "Example.COM/app:latest",
            "Example.COM/app:latest",
        ),
        (
            "[::1]:5000/app",
            "[::1]:5000/app:latest",
            "[::1]:5000/app:latest",
        ),
        (
            "[fe80::1]/app",
            "[fe80::1]/app:latest",
            "[fe80::1]/app:latest",
        ),
        (
            "a-b_c__d---e/g.h",
            "docker.io/a-b_c__d---e/g.h:latest",
            "a-b_c__d---e/g.h:latest",
        ),
        (
            "registry:5000/x",
            "registry:5000/x:latest",
            "registry:5000/x:latest",
        ),
    ];

    #[test]
    fn valid_references_normalize_like_docker() {
        for (input, full, familiar) in VALID {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *full, "full form of {input}");
            assert_eq!(r.familiar(), *familiar, "familiar form of {input}");
            assert_eq!(
                r.to_string().parse::<Reference>().unwrap(),
                r,
                "round trip {input}"
            );
        }
    }

    #[test]
    fn digests_pin_and_win_over_tags() {
        let r = Reference::parse(&format!("127.0.0.1:5000/busybox@{D}")).unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.path(), "busybox");
        assert_eq!(r.tag(), None, "no default tag when a digest is given");
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.target(), Target::Digest(D.parse().unwrap()));
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/busybox@{D}"));

        let both = Reference::parse(&format!("busybox:1.36@{D}")).unwrap();
        assert_eq!(both.tag(), Some("1.36"));
        assert_eq!(both.target(), Target::Digest(D.parse().unwrap()));
        assert_eq!(
            both.to_string(),
            format!("docker.io/library/busybox:1.36@{D}")
        );
        assert_eq!(both.familiar(), format!("busybox:1.36@{D}"));
        let pinned = both.pinned(both.digest().unwrap());
        assert_eq!(pinned.to_string(), format!("docker.io/library/busybox@{D}"));

        let tagged = Reference::parse("busybox").unwrap();
        assert_eq!(tagged.target(), Target::Tag("latest"));
        assert_eq!(tagged.name(), "docker.io/library/busybox");
    }

    #[test]
    fn transport_prefix_is_stripped_only_when_present() {
        let s = format!("docker://127.0.0.1:5000/busybox@{D}");
        let r = Reference::parse(strip_transport(&s)).unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(strip_transport("busybox"), "busybox");
        assert!(
            Reference::parse(&s).is_err(),
            "docker:// is not part of the grammar"
        );
    }

    fn problem(input: &str) -> ReferenceProblem {
        match Reference::parse(input) {
            Ok(r) => panic!("{input:?} parsed as {r}"),
            Err(e) => {
                assert_eq!(e.input(), input);
                assert!(e.to_string().contains(&format!("{input:?}")), "{e}");
                e.problem().clone()
            }
        }
    }

    #[test]
    fn invalid_references_name_the_bad_part() {
        use ReferenceProblem as P;
        let hex = &D[7..];
        assert_eq!(problem(""), P::Empty);
        assert_eq!(problem(":tag"), P::Empty);
        assert_eq!(problem(hex), P::HexIdentifier);
        assert_eq!(problem("Busybox"), P::Uppercase("library/Busybox".into()));
        assert_eq!(problem("example.com/Foo"), P::Uppercase("Foo".into()));
        assert_eq!(problem("busybox:-x"), P::BadTag("-x".into()));
        assert_eq!(problem("busybox:.x"), P::BadTag(".x".into()));
        assert_eq!(problem("busybox:"), P::BadTag("".into()));
        assert_eq!(problem("busybox:a+b"), P::BadTag("a+b".into()));
        let long_tag = "a".repeat(129);
        assert_eq!(problem(&format!("busybox:{long_tag}")), P::BadTag(long_tag));
        assert!(Reference::parse(&format!("busybox:{}", "a".repeat(128))).is_ok());
        assert!(
            matches!(problem("busybox@sha256:abc"), P::BadDigest { digest, .. } if digest == "sha256:abc")
        );
        assert!(matches!(
            problem(&format!("busybox@sha512:{hex}")),
            P::BadDigest { .. }
        ));
        assert!(matches!(
            problem(&format!("busybox@{}", D.to_uppercase())),
            P::BadDigest { .. }
        ));
        assert_eq!(problem("a//b"), P::BadComponent("".into()));
        assert_eq!(problem("user/-app"), P::BadComponent("-app".into()));
        assert_eq!(problem("user/app-"), P::BadComponent("app-".into()));
        assert_eq!(problem("user/a..b"), P::BadComponent("a..b".into()));
        assert_eq!(problem("user/a___b"), P::BadComponent("a___b".into()));
        assert_eq!(problem("user/a._b"), P::BadComponent("a._b".into()));
        assert_eq!(problem("user/a b"), P::BadComponent("a b".into()));
        assert_eq!(problem("example.com/"), P::BadComponent("".into()));
        assert_eq!(problem("host:port/app"), P::BadRegistry("host:port".into()));
        assert_eq!(problem("-bad.com/app"), P::BadRegistry("-bad.com".into()));
        // A '.' makes the first component a host, where '_' is not allowed.
        assert_eq!(problem("a_b.c/app"), P::BadRegistry("a_b.c".into()));
        assert_eq!(problem("bad..com/app"), P::BadRegistry("bad..com".into()));
        assert_eq!(problem("[::1/app"), P::BadRegistry("[::1".into()));
        assert_eq!(
            problem("[::g]:5000/app"),
            P::BadRegistry("[::g]:5000".into())
        );
        assert_eq!(problem("host.com:/app"), P::BadRegistry("host.com:".into()));
        let long = format!("a/{}", "b".repeat(254));
        assert_eq!(problem(&long), P::PathTooLong(256));
        assert!(Reference::parse(&format!("a/{}", "b".repeat(253))).is_ok());
    }

    #[test]
    fn repositories_parse_without_tag_or_digest() {
        let r = Repository::parse("127.0.0.1:5000/busybox").unwrap();
        assert_eq!((r.registry(), r.path()), ("127.0.0.1:5000", "busybox"));
        assert_eq!(r.familiar(), "127.0.0.1:5000/busybox");
        let hub = Repository::parse("busybox").unwrap();
        assert_eq!(hub.to_string(), "docker.io/library/busybox");
        assert_eq!(hub.familiar(), "busybox");
        assert!(Repository::parse("busybox:latest").is_err());
        assert!(Repository::parse(&format!("busybox@{D}")).is_err());
        assert!(Repository::parse("BAD").is_err());
    }
}
