//! One module per subcommand.

pub mod analyze;
pub mod build;
pub mod crosscheck;
pub mod lint;
pub mod pull;
pub mod push;
