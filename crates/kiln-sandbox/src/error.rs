//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in this crate.
///
/// A command that runs and fails is *not* an error: it is a [`crate::RunOutcome`] with a non-zero
/// status. Errors are problems with the input or the environment.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"lstat"`, `"read directory"`, ...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The run specification is unusable.
    #[error("invalid run spec: {0}")]
    Spec(String),
    /// A `USER`/`--chown` value could not be resolved.
    #[error(transparent)]
    User(#[from] crate::user::UserError),
    /// Setting up the sandbox failed (an environment problem, not the command's).
    #[error("sandbox set-up failed ({step}): {message}")]
    Setup {
        /// The step that failed, e.g. `"mount overlay"`.
        step: String,
        /// What the OS said.
        message: String,
    },
    /// The command could not be started (not found, not executable, ...).
    #[error("cannot start {program:?}: {message}")]
    Exec {
        /// `argv[0]` as given.
        program: String,
        /// Why, in the words runc would use.
        message: String,
    },
    /// The upper directory uses an overlayfs feature BuildKit's differ refuses.
    #[error("overlay redirect_dir is used at {} but not supported by the overlay differ", .0.display())]
    Redirect(PathBuf),
    /// Entering or describing a user namespace failed.
    #[error("user namespace: {0}")]
    Userns(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches an operation name and a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, op: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}
