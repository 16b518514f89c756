//! Shared helpers of the integration tests and the unprivileged example: the busybox base
//! image of the BuildKit fixtures, unpacked, and small wrappers around `run`.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use kiln_sandbox::{Change, ChangeKind, Rootfs, RunOutcome, RunSpec};

/// The busybox base layer (gzip tar) of `testdata/base/busybox`.
pub fn busybox_layer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/base/busybox/blobs/sha256")
        .join("bd12cd9dfdc46f65a573432ffaf203725a958eac3cd08f3c73a31974a58ed607")
}

/// Unpacks the busybox layer into `dest` (created), keeping owners when `owners` is set.
pub fn unpack_busybox(dest: &Path, owners: bool) {
    fs::create_dir_all(dest).unwrap();
    let gz = fs::File::open(busybox_layer()).expect("busybox layer blob");
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_preserve_ownerships(owners);
    ar.set_unpack_xattrs(false);
    ar.set_overwrite(true);
    ar.unpack(dest).expect("unpack busybox");
}

/// A scratch area with an unpacked busybox lower.
pub struct Base {
    pub tmp: tempfile::TempDir,
    pub lower: PathBuf,
}

impl Base {
    pub fn new() -> Base {
        let tmp = tempfile::tempdir().unwrap();
        let lower = tmp.path().join("base");
        unpack_busybox(&lower, true);
        Base { tmp, lower }
    }

    /// A fresh pair of upper and work directories.
    pub fn layer(&self, name: &str) -> (PathBuf, PathBuf) {
        let dir = self.tmp.path().join(name);
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        fs::create_dir_all(&upper).unwrap();
        fs::create_dir_all(&work).unwrap();
        (upper, work)
    }

    pub fn scratch(&self) -> PathBuf {
        let s = self.tmp.path().join("scratch");
        fs::create_dir_all(&s).unwrap();
        s
    }
}

/// `/bin/sh -c script` as the engine builds it.
pub fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

/// Runs `script` on an overlay of `lowers` (top first) into a new layer `name`; returns the
/// outcome, the output, the changes and the upper dir.
pub fn overlay_run(
    base: &Base,
    lowers: &[PathBuf],
    name: &str,
    script: &str,
    tweak: impl FnOnce(&mut RunSpec),
) -> (RunOutcome, String, Vec<Change>, PathBuf) {
    let (upper, work) = base.layer(name);
    let mut spec = RunSpec::new(
        Rootfs::Overlay {
            lowers: lowers.to_vec(),
            upper: upper.clone(),
            work,
        },
        sh(script),
        base.scratch(),
    );
    tweak(&mut spec);
    let mut out = Vec::new();
    let outcome = kiln_sandbox::run(&spec, &mut |b: &[u8]| out.extend_from_slice(b)).expect("run");
    let changes = kiln_sandbox::changes(lowers, &upper).expect("changes");
    (
        outcome,
        String::from_utf8_lossy(&out).into_owned(),
        changes,
        upper,
    )
}

/// The same on a plain copy of the merged lowers, compared with the double walk.
pub fn tree_run(
    base: &Base,
    lowers: &[PathBuf],
    name: &str,
    script: &str,
    tweak: impl FnOnce(&mut RunSpec),
) -> (RunOutcome, Vec<Change>, PathBuf) {
    let tree = base.tmp.path().join(name).join("tree");
    fs::create_dir_all(&tree).unwrap();
    kiln_sandbox::snapshot::copy_merged(lowers, &tree).expect("copy lowers");
    let mut spec = RunSpec::new(Rootfs::Dir(tree.clone()), sh(script), base.scratch());
    tweak(&mut spec);
    let outcome = kiln_sandbox::run(&spec, &mut |_: &[u8]| {}).expect("run");
    let changes = kiln_sandbox::tree_changes(lowers, &tree).expect("tree changes");
    (outcome, changes, tree)
}

/// Changes as `"A path"`, `"M path"`, `"D path"` strings (Unmodified dropped), for asserts.
pub fn summary(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .filter(|c| c.kind != ChangeKind::Unmodified)
        .map(|c| {
            let k = match c.kind {
                ChangeKind::Add => "A",
                ChangeKind::Modify => "M",
                ChangeKind::Delete => "D",
                ChangeKind::Unmodified => "U",
            };
            format!("{k} {}", c.path.display())
        })
        .collect()
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests mount file systems: run them as root (the unprivileged path is tested by \
         unprivileged_user_* through examples/userns_run.rs)"
    );
}
