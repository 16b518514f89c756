//! Errors of normalization. Each says whether the input was bad (exit code 2) or the
//! environment failed (exit code 3), and names the image, layer and entry it is about.

use std::fmt;

/// Who is to blame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The image is malformed, hostile, or does not match its digests.
    Input,
    /// Reading or writing local files failed (disk full, permissions).
    Environment,
}

/// An error with the context it happened in (`image X: layer 2 (sha256:...): entry "y": ...`).
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    pub fn input(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Input,
            message: message.into(),
        }
    }

    pub fn env(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Environment,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// kiln's exit code for this error: 2 for bad input, 3 for the environment.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Input => 2,
            ErrorKind::Environment => 3,
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with where it happened.
    pub fn context(self, what: impl fmt::Display) -> Error {
        Error {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
        }
    }
}

impl From<kiln_layer::pipeline::PipelineError> for Error {
    fn from(e: kiln_layer::pipeline::PipelineError) -> Error {
        Error::env(e.to_string())
    }
}

impl From<kiln_image::ImageError> for Error {
    fn from(e: kiln_image::ImageError) -> Error {
        match e {
            kiln_image::ImageError::Io(e) => Error::env(e.to_string()),
            other => Error::input(other.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Shows a tar name (raw bytes) in messages.
pub(crate) fn show(name: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(name))
}
