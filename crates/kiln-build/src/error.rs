//! Build errors, classified for the CLI's exit codes.

use std::fmt;

/// What kind of failure: the user's input, or the environment kiln runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad Dockerfile, context, arguments: exit code 2.
    Input,
    /// Something kiln cannot do natively (yet): exit code 2, with the reason.
    Unsupported,
    /// The machine: sandbox unavailable, disk errors, registry unreachable: exit code 3.
    Environment,
    /// A RUN command failed: exit code 2 unless the caller decides otherwise.
    CommandFailed,
}

/// A build failure with where it happened.
#[derive(Debug)]
pub struct BuildError {
    pub kind: ErrorKind,
    /// `Dockerfile:12` or a path, when known.
    pub location: Option<String>,
    pub message: String,
}

impl BuildError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> BuildError {
        BuildError {
            kind,
            location: None,
            message: message.into(),
        }
    }

    pub fn input(message: impl Into<String>) -> BuildError {
        BuildError::new(ErrorKind::Input, message)
    }

    pub fn env(message: impl Into<String>) -> BuildError {
        BuildError::new(ErrorKind::Environment, message)
    }

    /// Attaches `file:line` unless a location is already known.
    pub fn at(mut self, file: &str, line: usize) -> BuildError {
        if self.location.is_none() {
            self.location = Some(format!("{file}:{line}"));
        }
        self
    }

    /// The process exit code the CLI contract assigns.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Input | ErrorKind::Unsupported | ErrorKind::CommandFailed => 2,
            ErrorKind::Environment => 3,
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(l) => write!(f, "{l}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for BuildError {}

impl From<kiln_dockerfile::ParseError> for BuildError {
    fn from(e: kiln_dockerfile::ParseError) -> BuildError {
        BuildError::input(e.to_string())
    }
}

impl From<kiln_layer::pipeline::PipelineError> for BuildError {
    fn from(e: kiln_layer::pipeline::PipelineError) -> BuildError {
        BuildError::env(format!("writing a layer: {e}"))
    }
}

impl From<std::io::Error> for BuildError {
    fn from(e: std::io::Error) -> BuildError {
        BuildError::env(e.to_string())
    }
}

impl From<crate::context::ContextError> for BuildError {
    fn from(e: crate::context::ContextError) -> BuildError {
        let kind = if e.source.kind() == std::io::ErrorKind::NotFound
            || e.source.kind() == std::io::ErrorKind::InvalidInput
        {
            ErrorKind::Input
        } else {
            ErrorKind::Environment
        };
        BuildError::new(kind, e.to_string())
    }
}

impl From<kiln_image::ImageError> for BuildError {
    fn from(e: kiln_image::ImageError) -> BuildError {
        let kind = match &e {
            kiln_image::ImageError::Io(_) => ErrorKind::Environment,
            _ => ErrorKind::Input,
        };
        BuildError::new(kind, e.to_string())
    }
}
