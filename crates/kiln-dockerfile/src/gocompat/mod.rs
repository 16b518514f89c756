//! Small re-implementations of Go standard-library behaviour that BuildKit's
//! Dockerfile frontend relies on.
//!
//! These exist because byte-exact compatibility with BuildKit v0.19.0 (built
//! with Go 1.23) demands Go's exact rules for things Rust's standard library
//! does slightly differently: which characters are "space", "letter" or
//! "digit", how `strconv.Quote` escapes, how `time.ParseDuration`,
//! `filepath.Clean` and `filepath.Match` behave, how `encoding/json` accepts
//! an array, and how `regexp.ReplaceAllString` expands its template.

pub(crate) mod filepath;
pub(crate) mod json;
pub(crate) mod regexp;
pub(crate) mod strconv;
pub(crate) mod suggest;
pub(crate) mod time;
pub(crate) mod unicode;
