//! One module per subcommand.

pub mod analyze;
pub mod args;
pub mod build;
pub mod crosscheck;
pub mod diff;
pub mod lint;
pub mod normalize;
pub mod pull;
pub mod push;
pub mod verify;
