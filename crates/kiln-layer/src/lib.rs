//! Deterministic container image layers.
//!
//! kiln's layers must equal, byte for byte, what BuildKit v0.19.0 writes with
//! `rewrite-timestamp=true`. This crate holds the pieces that decide those bytes:
//!
//! - [`tar`]: Go `archive/tar`-exact header encoding, a writer with Go's write pattern, and a
//!   hardened reader with Go's semantics (for re-serialising base layers and for imports);
//! - [`order`]: the entry order of a layer (depth-first, names sorted by bytes);
//! - [`compress`]: the one place that picks the gzip implementation;
//! - [`layer`]: streaming a layer into a blob while computing its diff_id and digest;
//! - [`pipeline`]: the same with the compression on other cores than the tar stream;
//! - [`rewrite`]: BuildKit's timestamp-clamping re-serialisation of an existing layer.

pub mod compress;
pub mod layer;
pub mod order;
pub mod pipeline;
pub mod rewrite;
pub mod tar;

pub use compress::Compression;
pub use layer::{LayerInfo, LayerWriter};
pub use tar::{Header, TarError, TarReader, TarWriter, Timestamp};
