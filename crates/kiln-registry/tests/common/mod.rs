//! Test harnesses: a real registry (Debian's `docker-registry`) and a scriptable hostile one.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

#[allow(unused_imports)]
pub use kiln_testkit::{
    busybox_blob, busybox_layout, hostile, registry, tool, BUSYBOX_CONFIG, BUSYBOX_LAYER,
    BUSYBOX_MANIFEST,
};

use std::sync::{Arc, Mutex};

use kiln_registry::{Digest, Direction, Progress};

/// One progress report: direction, blob, bytes done, total.
pub type Update = (Direction, Digest, u64, Option<u64>);

/// Records progress reports and finishes.
#[derive(Default)]
pub struct Recorder {
    pub last: Mutex<Vec<Update>>,
    pub finished: Mutex<Vec<(Direction, Digest, bool)>>,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn last_done(&self, direction: Direction, digest: &Digest) -> Option<(u64, Option<u64>)> {
        self.last
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(dir, d, _, _)| *dir == direction && d == digest)
            .map(|(_, _, done, total)| (*done, *total))
    }
}

impl Progress for Recorder {
    fn update(&self, direction: Direction, digest: &Digest, done: u64, total: Option<u64>) {
        self.last
            .lock()
            .unwrap()
            .push((direction, *digest, done, total));
    }
    fn finish(&self, direction: Direction, digest: &Digest, ok: bool) {
        self.finished.lock().unwrap().push((direction, *digest, ok));
    }
}
