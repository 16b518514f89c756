//! kiln-normalize repacks container images built elsewhere into kiln's canonical,
//! reproducible form: two images that differ only in mtimes later than SOURCE_DATE_EPOCH,
//! tar entry order, tar header dialect, compression, or config and history times
//! normalize to the same digest, and normalizing an already normalized image changes
//! nothing.
//!
//! - [`input`]: images named on the command line (tarballs, layouts, registry references
//!   pulled through kiln's verified cache);
//! - [`source`]: opening an image's layers, decompressing and verifying them while they
//!   stream (also used by kiln-diff);
//! - [`names`]: canonical entry names, and what counts as leaving the image root;
//! - [`scrub`]: the opt-in, data-driven rules that remove or rewrite files known to differ
//!   between otherwise equal builds;
//! - [`layer`]: normalizing one layer with memory that does not grow with its size;
//! - [`image`]: all layers in parallel, then config and manifest.

mod canon;
pub mod error;
pub mod image;
pub mod input;
pub mod layer;
pub mod names;
pub mod scrub;
pub mod source;

pub use error::{Error, ErrorKind, Result};
pub use image::{normalize_config, normalize_image, ManifestFormat, NormalizedImage, Options};
pub use input::{open_image, InputOptions, OpenedImage};
pub use layer::{normalize_layer, Devices, LayerOptions, LayerStats, NormalizedLayer};
pub use scrub::Scrubber;
pub use source::{read_layer, Expected, ImageLayers};
