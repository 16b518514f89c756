//! Images named on the command line: docker/OCI tarballs, OCI layout directories
//! (`oci-layout://DIR[@sha256:...]`), or registry references (`docker://host/name@sha256:...`),
//! which are pulled through kiln's verified blob cache and then read like a layout.

use std::path::PathBuf;

use kiln_digest::Digest;
use kiln_image::import::{self, ImageSource, LoadedImage};
use kiln_image::spec::{media, Descriptor, Index, Platform};
use kiln_registry::{Cache, Client, ClientOptions, PulledImage, Reference, Source};

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

/// kiln's blob cache and, unless offline, a registry client.
struct Registry {
    cache: Cache,
    client: Option<Client>,
}

impl Registry {
    fn open(opts: &InputOptions) -> Result<Registry> {
        let cache_root = match &opts.cache_dir {
            Some(d) => d.clone(),
            None => Cache::default_root().ok_or_else(|| {
                Error::env("no cache directory: set $KILN_CACHE_DIR, $XDG_CACHE_HOME or $HOME, or pass --cache-dir")
            })?,
        };
        Ok(Registry {
            cache: Cache::open(&cache_root).map_err(registry_err)?,
            client: (!opts.offline).then(|| {
                Client::new(ClientOptions {
                    insecure_registries: opts.insecure_registries.clone(),
                    ..ClientOptions::default()
                })
            }),
        })
    }

    fn source(&self) -> Source<'_> {
        match &self.client {
            Some(c) => Source::Online(c),
            None => Source::Offline,
        }
    }
}

/// A temporary OCI layout whose blobs are links into the cache (manifests and indexes are
/// written out): the importer then verifies and reads pulled images like any local image.
struct PulledLayout {
    dir: tempfile::TempDir,
}

impl PulledLayout {
    fn new() -> Result<PulledLayout> {
        let dir = tempfile::Builder::new()
            .prefix("kiln-pulled-")
            .tempdir()
            .map_err(|e| Error::env(format!("cannot create a temporary directory: {e}")))?;
        let layout = PulledLayout { dir };
        std::fs::create_dir_all(layout.blobs()).map_err(|e| layout.env(e))?;
        std::fs::write(
            layout.dir.path().join("oci-layout"),
            kiln_image::export::OCI_LAYOUT,
        )
        .map_err(|e| layout.env(e))?;
        Ok(layout)
    }

    fn blobs(&self) -> PathBuf {
        self.dir.path().join("blobs/sha256")
    }

    fn env(&self, e: std::io::Error) -> Error {
        Error::env(format!("{}: {e}", self.dir.path().display()))
    }

    /// Adds an image's manifest, config and layers.
    fn add_image(&self, pulled: &PulledImage) -> Result<()> {
        for b in std::iter::once(&pulled.config).chain(&pulled.layers) {
            let link = self.blobs().join(b.descriptor.digest.hex());
            if !link.exists() {
                std::os::unix::fs::symlink(&b.path, &link).map_err(|e| self.env(e))?;
            }
        }
        self.add_manifest(&pulled.manifest)
    }

    fn add_manifest(&self, m: &kiln_registry::Manifest) -> Result<()> {
        std::fs::write(self.blobs().join(m.digest.hex()), &m.bytes).map_err(|e| self.env(e))
    }

    /// Writes index.json, naming `desc` alone.
    fn finish(self, desc: Descriptor) -> Result<(ImageSource, tempfile::TempDir)> {
        let index = Index {
            schema_version: 2,
            media_type: media::OCI_INDEX.into(),
            artifact_type: String::new(),
            manifests: vec![desc],
            subject: None,
            annotations: Default::default(),
        };
        std::fs::write(
            self.dir.path().join("index.json"),
            kiln_image::gojson::to_vec(&index),
        )
        .map_err(|e| self.env(e))?;
        Ok((ImageSource::Layout(self.dir.path().to_path_buf()), self.dir))
    }
}

fn parse_reference(spec: &str, reference: &str) -> Result<Reference> {
    Reference::parse(reference).map_err(|e| Error::input(format!("{spec}: {e}")))
}

fn pull(spec: &str, reference: &str, opts: &InputOptions) -> Result<OpenedImage> {
    let r = parse_reference(spec, reference)?;
    let registry = Registry::open(opts)?;
    let p = &opts.platform;
    let platform = kiln_registry::Platform::new(
        &p.os,
        &p.architecture,
        (!p.variant.is_empty()).then_some(p.variant.as_str()),
    );
    let pulled = registry
        .cache
        .pull(registry.source(), &r, &platform)
        .map_err(|e| registry_err(e).context(spec))?;

    let layout = PulledLayout::new()?;
    layout.add_image(&pulled)?;
    let m = &pulled.manifest;
    let mut desc = Descriptor::new(m.media_type.as_str(), m.digest, m.bytes.len() as u64);
    desc.platform = Some(p.clone());
    let (source, dir) = layout.finish(desc)?;
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

/// A multi-platform image ready to be read: a source whose index.json names one image
/// index (see `kiln_image::import::PlatformIndex`).
pub struct OpenedIndex {
    pub source: ImageSource,
    /// For registry images: the layout (links into the cache) it is read through.
    _pulled: Option<tempfile::TempDir>,
}

/// Opens the multi-platform image named by `spec`: a local layout or tarball, or a registry
/// index, whose images (attestation manifests excepted: normalizing drops them) are pulled
/// through the cache.
pub fn open_index(spec: &str, opts: &InputOptions) -> Result<OpenedIndex> {
    let Some(reference) = spec.strip_prefix("docker://") else {
        let path = spec.strip_prefix("oci-layout://").unwrap_or(spec);
        return Ok(OpenedIndex {
            source: ImageSource::open(path)?,
            _pulled: None,
        });
    };
    let r = parse_reference(spec, reference)?;
    let registry = Registry::open(opts)?;
    let ctx = |e: kiln_registry::Error| registry_err(e).context(spec);
    let r = match (&registry.client, r.digest()) {
        (Some(client), None) => r.pinned(client.resolve(&r).map_err(ctx)?),
        _ => r,
    };
    let top = registry
        .cache
        .top_manifest(registry.source(), &r)
        .map_err(ctx)?;
    if !top.media_type.is_index() {
        return Err(Error::input(format!(
            "{spec}: {} is a single image ({}), not a multi-platform index: normalize it \
             without --all-platforms",
            top.digest,
            top.media_type.as_str()
        )));
    }
    let layout = PulledLayout::new()?;
    let pulled = registry
        .cache
        .pull_index_images(registry.source(), &r, &top, |d| {
            is_attestation(&d.annotations)
        })
        .map_err(ctx)?;
    for image in &pulled {
        layout.add_image(image)?;
    }
    layout.add_manifest(&top)?;
    let desc = Descriptor::new(top.media_type.as_str(), top.digest, top.bytes.len() as u64);
    let (source, dir) = layout.finish(desc)?;
    Ok(OpenedIndex {
        source,
        _pulled: Some(dir),
    })
}

/// Whether an index entry with these annotations is an attestation manifest, as buildx
/// lists one.
pub fn is_attestation(annotations: &std::collections::BTreeMap<String, String>) -> bool {
    annotations
        .get("vnd.docker.reference.type")
        .map(String::as_str)
        == Some("attestation-manifest")
}
