//! kiln-sandbox runs a Dockerfile `RUN` command the way BuildKit v0.19.0 (runc executor, overlayfs
//! snapshotter) does, without a daemon, and tells which paths it changed with BuildKit's exact
//! rules, so that kiln can write a bit-for-bit identical layer.
//!
//! * [`run`]: the command in new mount, pid, ipc, uts (and, for [`Network::None`], net)
//!   namespaces, on an overlayfs root (or a plain copied tree), with BuildKit's `/dev`, `/proc`,
//!   `/sys`, `/etc/hosts`, `/etc/resolv.conf`, hostname, Docker's default capabilities and,
//!   as BuildKit, no `no_new_privs` (setuid binaries work); the command is pid 1 of its pid
//!   namespace, as under runc; mount stubs are
//!   removed afterwards like BuildKit's `MountStubsCleaner`. Needs (namespace) root.
//! * [`changes`] / [`tree_changes`]: BuildKit's overlay differ and containerd's double-walk
//!   differ; [`locate`] says where to stat a path of the merged result.
//! * [`user`]: `USER` and `--chown` resolution against `/etc/passwd` and `/etc/group`.
//! * [`userns`]: running as an unprivileged user, by re-executing the program in a user
//!   namespace where it is root.
//! * [`snapshot`]: the plain-tree fallback's copy of the lowers, and clean-up helpers.

mod changes;
mod container;
mod error;
mod exec;
mod layers;
mod rootpath;
mod sandbox;
pub mod snapshot;
mod spec;
pub mod user;
pub mod userns;

pub use changes::{changes, same_dirent, tree_changes, Change, ChangeKind};
pub use error::{Error, Result};
pub use exec::DEFAULT_CAPS;
pub use layers::{is_opaque, is_whiteout, locate, Entry, LayerStack};
pub use rootpath::root_path;
pub use sandbox::{run, HOSTS, RESOLV_CONF_NO_NETWORK};
pub use spec::{
    ExitStatus, Mount, Network, Rootfs, RunOutcome, RunSpec, DEFAULT_PATH_ENV, OUTPUT_TAIL,
};
