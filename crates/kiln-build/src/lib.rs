//! The kiln build engine: stages, the build context, COPY/ADD and metadata steps, and the
//! layers they produce.

pub mod chmod;
pub mod context;
pub mod copy;
pub mod emit;
pub mod gofmt;
pub mod gomatch;
pub mod tree;
pub mod unpack;
