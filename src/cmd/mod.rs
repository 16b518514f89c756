//! One module per subcommand.

pub mod analyze;
pub mod build;
pub mod diff;
pub mod normalize;
pub mod verify;
