//! Container images as BuildKit writes them.
//!
//! - [`spec`]: config, manifest, index and descriptor types in Go field order;
//! - [`gojson`]: serialisation with Go `encoding/json`'s exact bytes;
//! - [`gotime`]: Go's RFC 3339 time format;
//! - [`store`]: content-addressed blob directories and blob sources;
//! - [`sniff`]: a blob's compression from its magic number;
//! - [`section`]: a byte range of a file read as a file (tarball members, blobs);
//! - [`export`]: docker/OCI tarballs and OCI layout directories, written atomically.

pub mod export;
pub mod gojson;
pub mod gotime;
pub mod import;
pub mod section;
pub mod sniff;
pub mod spec;
pub mod store;

use std::path::PathBuf;

use kiln_digest::Digest;

pub use export::{Image, ImageName, TarballKind};
pub use store::{BlobSource, BlobStore};

/// Errors of image handling.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tar(#[from] kiln_layer::TarError),
    #[error("blob {0} is not available")]
    MissingBlob(Digest),
    #[error("blob {digest}: {message}")]
    Blob { digest: Digest, message: String },
    #[error("content does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("{path}: {message}")]
    Output { path: PathBuf, message: String },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}
