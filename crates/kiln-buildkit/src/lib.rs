//! kiln's pinned-BuildKit fallback and its cross-check against BuildKit.
//!
//! kiln must never silently produce a different image than BuildKit would. So:
//!
//! - [`plan`] classifies, before anything is built, every step of a build as native or
//!   needing BuildKit, with the reason; the reasons live in one table, [`rules::RULES`]
//!   (cache/secret/ssh mounts, `RUN --security=insecure`, ADD of URLs and git repositories,
//!   `# syntax=` frontends, labs flags).
//! - [`driver`] hands a whole build to the pinned BuildKit
//!   ([`PINNED_IMAGE`]) through `buildctl` (with `$BUILDKIT_HOST`), `docker buildx` or
//!   `podman`, with exactly the flags a reproducible build needs; [`land`] checks the image
//!   BuildKit wrote and moves it to where a native build would have put it.
//! - [`compare`] compares an image BuildKit built with kiln's native rebuild, layer by
//!   layer, down to the first differing files: how auditors use kiln as an independent
//!   implementation.

pub mod command;
pub mod compare;
pub mod driver;
mod error;
pub mod land;
pub mod plan;
pub mod rules;

pub use compare::{compare, Comparison, LayerVerdict, Side};
pub use driver::{Driver, DriverKind, HostEnv, NamedContext, OutputFormat, Request, PINNED_IMAGE};
pub use error::Error;
pub use plan::{plan, Plan, Planned};

use kiln_image::import::LoadedImage;

/// Runs `req` on `driver` and lands the result at `req.output`; returns the image as read
/// back from it. `quiet` keeps the driver's output unless it fails.
pub fn build(driver: &Driver, req: &Request, quiet: bool) -> Result<LoadedImage, Error> {
    let actions = driver::actions(driver, req)?;
    if req.format == OutputFormat::OciDir && req.output.exists() {
        return Err(Error::Input(format!(
            "{}: already exists; choose a new directory for an OCI layout",
            req.output.display()
        )));
    }
    let staging = land::Staging::prepare(&req.output)?;
    driver::execute(&actions, quiet)?;
    land::land(&staging, req)
}
