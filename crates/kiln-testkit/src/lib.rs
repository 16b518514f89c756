//! Test harnesses shared by kiln's test suites, not part of kiln itself: Debian's
//! `docker-registry` on a free loopback port ([`registry`]), a scriptable registry that lies,
//! breaks or fails ([`hostile`]), a fixed-seed random source ([`rng`]), tar archives ([`tars`]), the BuildKit fixtures' busybox base image, and finding (or
//! installing) the Debian tools the tests drive.

pub mod hostile;
pub mod registry;
pub mod rng;
pub mod tars;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The busybox base image of the BuildKit fixtures, as an OCI layout.
pub fn busybox_layout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/base/busybox")
}

pub const BUSYBOX_MANIFEST: &str =
    "sha256:3f0408471efe0ab36280f5435d6851b5d1ad275341c84ab21349f03cd4f4e9c6";
pub const BUSYBOX_CONFIG: &str =
    "sha256:c4a8d26b93b117b8867fa41b7961402798568299b71cdb535c52cc513dc52e93";
pub const BUSYBOX_LAYER: &str =
    "sha256:bd12cd9dfdc46f65a573432ffaf203725a958eac3cd08f3c73a31974a58ed607";

/// A blob of the busybox layout.
pub fn busybox_blob(digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    std::fs::read(busybox_layout().join("blobs/sha256").join(hex)).expect("busybox blob")
}

/// Finds `tool`, installing Debian package `package` once if it is missing and we may.
/// `None` (with a message saying why) when it cannot be had.
pub fn tool(tool: &str, package: &str) -> Option<PathBuf> {
    let find = || {
        ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
            .iter()
            .map(|d| PathBuf::from(d).join(tool))
            .find(|p| p.is_file())
    };
    if let Some(p) = find() {
        return Some(p);
    }
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if find().is_none() {
        eprintln!("{tool} is missing: trying `apt-get install -y {package}`");
        let status = Command::new("apt-get")
            .args(["install", "-y", "-q", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "SKIPPED: {tool} (Debian package {package}) is not installed and could not be \
                 installed ({status:?})"
            );
        }
    }
    find()
}
