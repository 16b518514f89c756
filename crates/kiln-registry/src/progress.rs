//! Progress reporting for blob transfers, so that a CLI can draw progress bars. Nothing is
//! reported unless a [`Progress`] is given to the client.

use kiln_digest::Digest;

/// Which way a blob moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Pull,
    Push,
}

/// Receives per-blob progress. Called from the thread doing the transfer; implementations
/// must be cheap (they are called for every buffer of data).
pub trait Progress: Send + Sync {
    /// `done` bytes of `digest` have moved, out of `total` when known. Called with `done == 0`
    /// when a transfer starts (and again if it restarts from the beginning).
    fn update(&self, direction: Direction, digest: &Digest, done: u64, total: Option<u64>);

    /// The transfer of `digest` ended, successfully or not.
    fn finish(&self, direction: Direction, digest: &Digest, ok: bool) {
        let _ = (direction, digest, ok);
    }
}
