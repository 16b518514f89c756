//! What to run and what came out of it.

use std::path::PathBuf;

/// The root file system of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rootfs {
    /// An overlayfs mount: read-only `lowers` (top first, as in `lowerdir=`; may be empty), the
    /// `upper` directory that receives every change and an empty `work` directory on the same
    /// file system as `upper`. Afterwards, [`crate::changes`]`(lowers, upper)` tells what
    /// changed.
    Overlay {
        /// Lower layers, top first.
        lowers: Vec<PathBuf>,
        /// Receives the changes (overlay format: whiteouts, opaque markers).
        upper: PathBuf,
        /// overlayfs' work directory; left with fixed permissions after the run.
        work: PathBuf,
    },
    /// A plain directory the command changes in place (the fallback without overlayfs, e.g. made
    /// by [`crate::snapshot::copy_merged`]); compare with [`crate::tree_changes`].
    Dir(PathBuf),
}

/// Network of the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// A new network namespace with only `lo` (up). `/etc/resolv.conf` has no nameserver.
    None,
    /// The host's network; `/etc/resolv.conf` is a copy of the host's.
    Host,
}

/// An extra mount (`RUN --mount=...`). Targets are container paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// An empty tmpfs (`nosuid`), as `--mount=type=tmpfs`.
    Tmpfs {
        /// Absolute path in the container.
        target: String,
    },
    /// A host file or directory. BuildKit binds are read-only by default; with
    /// `readonly: false` writes are allowed but discarded (an overlay, or a copy for a file,
    /// sits in between), as with `--mount=type=bind,rw`.
    Bind {
        /// Host path.
        source: PathBuf,
        /// Absolute path in the container.
        target: String,
        /// Read-only (the default in Dockerfiles).
        readonly: bool,
    },
}

impl Mount {
    /// The container path this mount covers.
    pub fn target(&self) -> &str {
        match self {
            Mount::Tmpfs { target } | Mount::Bind { target, .. } => target,
        }
    }
}

/// Everything a `RUN` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// The root file system.
    pub rootfs: Rootfs,
    /// The command, verbatim (the engine builds `["/bin/sh", "-c", ...]`). `argv[0]` without a
    /// `/` is looked up in the `PATH` of `env`, like runc does.
    pub argv: Vec<String>,
    /// `KEY=value` strings, in order. A later duplicate key replaces the earlier one in place,
    /// an entry without `=` removes the key (containerd's rules); runc then adds `HOME` from
    /// `/etc/passwd` if it is missing or empty.
    pub env: Vec<String>,
    /// Working directory in the container (absolute). Created, owned by the user, if missing
    /// (BuildKit does; it stays in the layer).
    pub cwd: String,
    /// Dockerfile `USER` value (`""` = root), resolved with [`crate::user::resolve`] against the
    /// container's files.
    pub user: String,
    /// Network mode.
    pub network: Network,
    /// Extra mounts.
    pub mounts: Vec<Mount>,
    /// Directory under which the run's temporary files go (host path, must exist).
    pub scratch_dir: PathBuf,
}

impl RunSpec {
    /// A spec with BuildKit's defaults: cwd `/`, root, no network, no mounts.
    pub fn new(rootfs: Rootfs, argv: Vec<String>, scratch_dir: PathBuf) -> RunSpec {
        RunSpec {
            rootfs,
            argv,
            env: vec![DEFAULT_PATH_ENV.to_string()],
            cwd: "/".to_string(),
            user: String::new(),
            network: Network::None,
            mounts: Vec::new(),
            scratch_dir,
        }
    }
}

/// BuildKit's default `PATH` (`util/system DefaultPathEnvUnix`).
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// What a finished command left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// Exit status of the command (the caller decides what a failure means).
    pub status: ExitStatus,
    /// The last [`OUTPUT_TAIL`] bytes of stdout and stderr (one stream, in write order).
    pub output_tail: Vec<u8>,
}

/// How much output [`RunOutcome::output_tail`] keeps.
pub const OUTPUT_TAIL: usize = 4096;
