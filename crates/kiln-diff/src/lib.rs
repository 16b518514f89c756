//! kiln-diff compares two container images and says exactly where they differ: index,
//! manifest and config fields, then layer by layer and file by file (content hash, mode,
//! uid/gid, mtime, xattrs, link target, type) — or, semantically, only what changes the
//! root file system a container sees (not timestamps, history, layer boundaries,
//! compression or tar dialect). `kiln diff`, `kiln verify` and `kiln crosscheck` use it.
//!
//! - [`listing`]: what a layer holds, read and verified in one pass;
//! - [`rootfs`]: the root file system the layers build up (OCI whiteouts, hard links);
//! - [`jsondiff`]: field-by-field differences of JSON documents;
//! - [`compare`]: the comparison itself;
//! - [`report`]: differences as a `TYPE NAME INPUT-0 INPUT-1` table or JSON;
//! - [`extract`]: both sides of each differing file, for inspection.

pub mod compare;
pub mod extract;
pub mod jsondiff;
pub mod listing;
pub mod report;
pub mod rootfs;

pub use compare::{diff, Input, Options};
pub use extract::write_report_dir;
pub use report::{Category, Difference, Report};
