//! The crate's error type. Every error is either the user's input being wrong (a bad
//! reference, content that does not match its digest, something that does not exist) or the
//! environment failing (network, TLS, credentials, a registry that keeps erroring, the disk);
//! kiln exits 2 for the first and 3 for the second, so [`Error::class`] keeps them apart.

use std::fmt;
use std::io;
use std::path::PathBuf;

use kiln_digest::Digest;

use crate::manifest::ManifestError;
use crate::reference::ParseReferenceError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whose fault an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request itself is wrong: retrying cannot help, fixing the input can.
    BadInput,
    /// The network, the registry, credentials or the local disk failed.
    Environment,
}

impl ErrorClass {
    /// kiln's exit code for this class of error.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorClass::BadInput => 2,
            ErrorClass::Environment => 3,
        }
    }
}

/// Where an error happened: the repository (with its registry) and the object in it, e.g.
/// `blob sha256:… in 127.0.0.1:5000/busybox`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// `registry/path`.
    pub repository: String,
    /// `blob sha256:…`, `manifest latest`, `upload`, …
    pub object: String,
}

impl Site {
    pub fn new(repository: impl fmt::Display, object: impl fmt::Display) -> Site {
        Site {
            repository: repository.to_string(),
            object: object.to_string(),
        }
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}", self.object, self.repository)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] ParseReferenceError),

    #[error("{site}: content does not match its digest (its bytes hash to {actual})")]
    DigestMismatch { site: Site, actual: Digest },

    #[error("{site}: expected {expected} bytes, found {actual}")]
    SizeMismatch {
        site: Site,
        expected: u64,
        actual: u64,
    },

    #[error("{site}: manifest is larger than the {limit}-byte limit ({size})")]
    ManifestTooLarge {
        site: Site,
        limit: u64,
        /// e.g. "5242880 bytes" or "more than 4194304 bytes".
        size: String,
    },

    #[error("{site}: unsupported manifest media type {media_type:?}")]
    UnknownMediaType { site: Site, media_type: String },

    #[error("{site}: {source}")]
    Manifest {
        site: Site,
        #[source]
        source: ManifestError,
    },

    #[error("{site}: not found")]
    NotFound { site: Site },

    #[error("{site}: the registry rejected the request: HTTP {status}{detail}")]
    Rejected {
        site: Site,
        status: u16,
        detail: String,
    },

    #[error("offline: tag {reference} cannot be resolved without the registry; pin it by digest")]
    OfflineTag { reference: String },

    #[error("{site}: authentication failed: {reason}")]
    Auth { site: Site, reason: String },

    #[error("{path}: {reason}")]
    Credentials { path: PathBuf, reason: String },

    #[error("{site}: cannot reach the registry: {reason}")]
    Unreachable { site: Site, reason: String },

    #[error("{site}: TLS failure: {reason}")]
    Tls { site: Site, reason: String },

    #[error("{site}: the registry kept failing (HTTP {status}{detail}) after {attempts} attempts")]
    Server {
        site: Site,
        status: u16,
        attempts: u32,
        detail: String,
    },

    #[error("{site}: transfer cut short after {received} of {expected} bytes: {reason}")]
    Truncated {
        site: Site,
        received: u64,
        expected: String,
        reason: String,
    },

    #[error("{site}: malformed registry response: {reason}")]
    Protocol { site: Site, reason: String },

    #[error("{site}: the registry stored it as {registry}, not as {local}")]
    RegistryDigest {
        site: Site,
        local: Digest,
        registry: String,
    },

    #[error("{site}: reading the local content failed: {source}")]
    Source {
        site: Site,
        #[source]
        source: io::Error,
    },

    #[error("{site}: writing the downloaded bytes failed: {source}")]
    Sink {
        site: Site,
        #[source]
        source: io::Error,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "offline: {} missing from the cache at {}: {}",
        plural(missing.len(), "blob is", "blobs are"),
        cache.display(),
        missing.iter().map(Digest::to_string).collect::<Vec<_>>().join(", ")
    )]
    Offline {
        cache: PathBuf,
        missing: Vec<Digest>,
    },
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

impl Error {
    /// Whether this is the input's fault or the environment's (exit code 2 or 3).
    pub fn class(&self) -> ErrorClass {
        use Error::*;
        match self {
            Reference(_)
            | DigestMismatch { .. }
            | SizeMismatch { .. }
            | ManifestTooLarge { .. }
            | UnknownMediaType { .. }
            | Manifest { .. }
            | NotFound { .. }
            | Rejected { .. }
            | OfflineTag { .. } => ErrorClass::BadInput,
            Auth { .. }
            | Credentials { .. }
            | Unreachable { .. }
            | Tls { .. }
            | Server { .. }
            | Truncated { .. }
            | Protocol { .. }
            | RegistryDigest { .. }
            | Source { .. }
            | Sink { .. }
            | Io { .. }
            | Offline { .. } => ErrorClass::Environment,
        }
    }

    /// Whether trying the same thing again later might succeed.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. } | Error::Server { .. } | Error::Truncated { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_repository_object_and_digest() {
        let d = Digest::of(b"x");
        let e = Error::DigestMismatch {
            site: Site::new("127.0.0.1:5000/busybox", format!("blob {d}")),
            actual: Digest::of(b"y"),
        };
        assert_eq!(
            e.to_string(),
            format!(
                "blob {d} in 127.0.0.1:5000/busybox: content does not match its digest (its \
                 bytes hash to {})",
                Digest::of(b"y")
            )
        );
        assert_eq!(e.class(), ErrorClass::BadInput);
        assert_eq!(e.class().exit_code(), 2);

        let off = Error::Offline {
            cache: "/c".into(),
            missing: vec![d, Digest::of(b"y")],
        };
        assert_eq!(
            off.to_string(),
            format!(
                "offline: 2 blobs are missing from the cache at /c: {d}, {}",
                Digest::of(b"y")
            )
        );
        assert_eq!(off.class().exit_code(), 3);
    }
}
