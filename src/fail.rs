//! Errors at the edge: a message for the user and the exit code of kiln's contract
//! (1 check failed, 2 bad input or usage, 3 environment).

pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn input(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    pub fn env(message: impl Into<String>) -> Failure {
        Failure {
            code: 3,
            message: message.into(),
        }
    }
}

impl From<kiln_build::BuildError> for Failure {
    fn from(e: kiln_build::BuildError) -> Failure {
        Failure {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

impl From<kiln_image::ImageError> for Failure {
    fn from(e: kiln_image::ImageError) -> Failure {
        use kiln_image::ImageError as E;
        let code = match &e {
            E::Io(_) => 3,
            E::Output { .. } => 2,
            _ => 2,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

impl From<kiln_registry::Error> for Failure {
    fn from(e: kiln_registry::Error) -> Failure {
        Failure {
            code: e.class().exit_code(),
            message: e.to_string(),
        }
    }
}

pub type CliResult = Result<i32, Failure>;
