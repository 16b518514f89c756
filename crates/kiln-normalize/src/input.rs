//! Images named on the command line: docker/OCI tarballs, OCI layout directories
//! (`oci-layout://DIR[@sha256:...]`), or registry references (`docker://host/name@sha256:...`),
//! which are pulled through kiln's verified blob cache and then read like a layout.

use std::path::PathBuf;

use kiln_digest::Digest;
use kiln_image::import::{self, ImageSource, LoadedImage};
use kiln_image::spec::{media, Descriptor, Index, Platform};
use kiln_registry::{Cache, Client, ClientOptions, Reference, Source};

use crate::error::{Error, Result};

/// How to find images.
#[derive(Clone, Debug)]
pub struct InputOptions {
    /// The image to pick from a multi-platform index.
    pub platform: Platform,
    /// Blob cache for registry images (default: kiln's cache directory).
    pub cache_dir: Option<PathBuf>,
    /// Use only the cache for registry images.
    pub offline: bool,
    /// Registries that may be reached over plain http (loopback always may).
    pub insecure_registries: Vec<String>,
}

/// An image ready to be read.
pub struct OpenedImage {
    /// The argument it was opened from.
    pub name: String,
    pub source: ImageSource,
    pub image: LoadedImage,
    /// For registry images: the index the reference named (digest, media type, bytes).
    /// Their `image.index` is the single-entry index kiln made to read them.
    pub registry_index: Option<(Digest, String, Vec<u8>)>,
    /// For registry images: the layout (links into the cache) it is read through.
    _pulled: Option<tempfile::TempDir>,
}

fn registry_err(e: kiln_registry::Error) -> Error {
    match e.class() {
        kiln_registry::ErrorClass::BadInput => Error::input(e.to_string()),
        kiln_registry::ErrorClass::Environment => Error::env(e.to_string()),
    }
}

/// Opens the image named by `spec`.
pub fn open_image(spec: &str, opts: &InputOptions) -> Result<OpenedImage> {
    if let Some(r) = spec.strip_prefix("docker://") {
        return pull(spec, r, opts);
    }
    let (path, digest) = match spec.strip_prefix("oci-layout://") {
        Some(rest) => match rest.rsplit_once('@') {
            Some((dir, d)) => (
                dir.to_string(),
                Some(
                    d.parse::<Digest>()
                        .map_err(|e| Error::input(format!("{spec}: {e}")))?,
                ),
            ),
            None => (rest.to_string(), None),
        },
        None => (spec.to_string(), None),
    };
    let source = ImageSource::open(&path)?;
    let image = import::load(&source, Some(&opts.platform), digest.as_ref())
        .map_err(|e| Error::from(e).context(spec))?;
    Ok(OpenedImage {
        name: spec.to_string(),
        source,
        image,
        registry_index: None,
        _pulled: None,
    })
}

fn pull(spec: &str, reference: &str, opts: &InputOptions) -> Result<OpenedImage> {
    let r = Reference::parse(reference).map_err(|e| Error::input(format!("{spec}: {e}")))?;
    let cache_root = match &opts.cache_dir {
        Some(d) => d.clone(),
        None => Cache::default_root().ok_or_else(|| {
            Error::env("no cache directory: set $KILN_CACHE_DIR, $XDG_CACHE_HOME or $HOME, or pass --cache-dir")
        })?,
    };
    let cache = Cache::open(&cache_root).map_err(registry_err)?;
    let client;
    let source = if opts.offline {
        Source::Offline
    } else {
        client = Client::new(ClientOptions {
            insecure_registries: opts.insecure_registries.clone(),
            ..ClientOptions::default()
        });
        Source::Online(&client)
    };
    let p = &opts.platform;
    let platform = kiln_registry::Platform::new(
        &p.os,
        &p.architecture,
        (!p.variant.is_empty()).then_some(p.variant.as_str()),
    );
    let pulled = cache
        .pull(source, &r, &platform)
        .map_err(|e| registry_err(e).context(spec))?;

    // A layout whose blobs are links into the cache: the importer then verifies and reads
    // it like any local image.
    let dir = tempfile::Builder::new()
        .prefix("kiln-pulled-")
        .tempdir()
        .map_err(|e| Error::env(format!("cannot create a temporary directory: {e}")))?;
    let blobs = dir.path().join("blobs/sha256");
    let env = |e: std::io::Error| Error::env(format!("{}: {e}", dir.path().display()));
    std::fs::create_dir_all(&blobs).map_err(env)?;
    for b in std::iter::once(&pulled.config).chain(&pulled.layers) {
        let link = blobs.join(b.descriptor.digest.hex());
        if !link.exists() {
            std::os::unix::fs::symlink(&b.path, &link).map_err(env)?;
        }
    }
    let m = &pulled.manifest;
    std::fs::write(blobs.join(m.digest.hex()), &m.bytes).map_err(env)?;
    let mut desc = Descriptor::new(m.media_type.as_str(), m.digest, m.bytes.len() as u64);
    desc.platform = Some(p.clone());
    let index = Index {
        schema_version: 2,
        media_type: media::OCI_INDEX.into(),
        artifact_type: String::new(),
        manifests: vec![desc],
        subject: None,
        annotations: Default::default(),
    };
    std::fs::write(
        dir.path().join("index.json"),
        kiln_image::gojson::to_vec(&index),
    )
    .map_err(env)?;
    std::fs::write(
        dir.path().join("oci-layout"),
        kiln_image::export::OCI_LAYOUT,
    )
    .map_err(env)?;
    let source = ImageSource::Layout(dir.path().to_path_buf());
    let image = import::load(&source, None, None).map_err(|e| Error::from(e).context(spec))?;
    Ok(OpenedImage {
        name: spec.to_string(),
        source,
        image,
        registry_index: pulled
            .index
            .map(|m| (m.digest, m.media_type.as_str().to_string(), m.bytes)),
        _pulled: Some(dir),
    })
}
