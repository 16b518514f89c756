//! The kiln build engine: from a parsed Dockerfile and a build context to image layers and
//! config, following BuildKit v0.19.0's semantics step by step.
//!
//! The state of each stage is an in-memory [`tree::Tree`]; COPY/ADD/WORKDIR mutate it the way
//! BuildKit's file backend mutates a snapshot, and [`emit`] turns what a step touched into a
//! layer with BuildKit's rules. RUN is delegated to a [`engine::RunExecutor`] (the sandbox),
//! base images to a [`engine::BaseResolver`].

pub mod bases;
pub mod chmod;
pub mod context;
pub mod copy;
pub mod emit;
pub mod engine;
pub mod error;
pub mod gofmt;
pub mod gomatch;
pub mod layers;
pub mod materialize;
pub mod output;
pub mod platform;
pub mod ports;
pub mod run;
pub mod signal;
pub mod tree;
pub mod unpack;
pub mod users;

pub use engine::{build, BuildOptions, BuildOutput, LayerOrigin, LayerRecord, Progress, Quiet};
pub use error::{BuildError, ErrorKind};
