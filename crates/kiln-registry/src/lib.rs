//! kiln-registry moves images between kiln and OCI registries, byte for byte.
//!
//! - [`reference`](mod@reference): Docker image references, parsed and normalized like Docker and BuildKit.
//! - [`Client`]: a blocking OCI distribution client (manifests and blobs, pull and push, bearer
//!   and basic auth, retries), which verifies every byte it fetches against its digest.
//! - [`Cache`]: a content-addressed blob and manifest cache that only ever exposes verified
//!   content, with fetch-through and offline modes.
//! - [`platform`]: platform normalization and per-platform manifest selection, as containerd
//!   does it.
//! - [`manifest`]: just enough of the manifest formats to list what to fetch; the image model
//!   itself lives in kiln-image.
//!
//! Errors are [`Error`]s whose [`Error::class`] tells bad input (exit code 2) from a failing
//! environment (exit code 3).

pub mod auth;
pub mod cache;
pub mod client;
pub mod error;
pub mod manifest;
pub mod platform;
pub mod progress;
pub mod reference;

pub use auth::{docker_config_dir, Credentials, DockerConfig};
pub use cache::{Cache, CachedBlob, PulledImage, Source, Verify};
pub use client::{Client, ClientOptions, PushOutcome, Resolved, UploadMode, MAX_MANIFEST_SIZE};
pub use error::{Error, ErrorClass, Result, Site};
pub use kiln_digest::Digest;
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, ManifestError, MediaType};
pub use platform::{select_manifest, ParsePlatformError, Platform};
pub use progress::{Direction, Progress};
pub use reference::{strip_transport, ParseReferenceError, Reference, Repository, Target};
