//! Base images for `FROM` and `COPY --from`: pinned registry references through the verified
//! local cache, named build contexts (`--build-context NAME=oci-layout://DIR@sha256:...`,
//! `docker-image://REF`, `oci-archive:PATH`, `docker-archive:PATH`), and local layouts or
//! archives named directly in `FROM`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_digest::Digest;
use kiln_image::import::{self, ImageSource, LoadedImage};
use kiln_image::spec::{ImageConfig, Platform};
use kiln_registry::{Cache, Client, Reference, Source};

use crate::engine::{BaseImage, BaseLayer, BaseResolver, Progress};
use crate::error::{BuildError, ErrorKind};

/// Where a named context comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamedSource {
    /// An OCI layout directory, optionally narrowed to one manifest or index digest.
    Layout {
        dir: PathBuf,
        digest: Option<Digest>,
    },
    /// A docker- or OCI-format tarball.
    Archive(PathBuf),
    /// An image in a registry.
    Image(String),
}

impl NamedSource {
    /// Parses the value of `--build-context NAME=VALUE`.
    pub fn parse(value: &str) -> Result<NamedSource, String> {
        if let Some(rest) = value.strip_prefix("oci-layout://") {
            let (dir, digest) = match rest.rsplit_once('@') {
                Some((d, dg)) => (
                    d,
                    Some(dg.parse::<Digest>().map_err(|e| format!("{value}: {e}"))?),
                ),
                None => (rest, None),
            };
            // BuildKit allows a ":tag" after the layout name; a directory path keeps it.
            let dir = PathBuf::from(dir);
            return Ok(NamedSource::Layout { dir, digest });
        }
        if let Some(r) = value.strip_prefix("docker-image://") {
            return Ok(NamedSource::Image(r.to_string()));
        }
        for p in ["oci-archive:", "docker-archive:"] {
            if let Some(path) = value.strip_prefix(p) {
                return Ok(NamedSource::Archive(PathBuf::from(path)));
            }
        }
        Err(format!(
            "{value:?}: expected oci-layout://DIR[@sha256:...], docker-image://REF, oci-archive:PATH or docker-archive:PATH"
        ))
    }
}

/// Resolves base images.
pub struct ImageResolver<'a> {
    pub client: Option<Client>,
    /// The blob cache directory; opened (and created) only when an image is pulled.
    pub cache_root: PathBuf,
    /// Used (with a warning) when `cache_root` cannot be opened.
    pub cache_fallback: Option<PathBuf>,
    cache: std::cell::OnceCell<Cache>,
    pub named: BTreeMap<String, NamedSource>,
    pub allow_floating_tags: bool,
    pub offline: bool,
    /// Where archive members are copied to be used as blobs.
    pub work: PathBuf,
    pub progress: &'a dyn Progress,
}

fn registry_err(e: kiln_registry::Error) -> BuildError {
    let kind = match e.class() {
        kiln_registry::ErrorClass::BadInput => ErrorKind::Input,
        kiln_registry::ErrorClass::Environment => ErrorKind::Environment,
    };
    BuildError::new(kind, e.to_string())
}

fn to_registry_platform(p: &Platform) -> kiln_registry::Platform {
    kiln_registry::Platform::new(
        &p.os,
        &p.architecture,
        (!p.variant.is_empty()).then_some(p.variant.as_str()),
    )
}

/// The key BuildKit's `NamedContext` looks up: the familiar name without `:latest`.
pub fn named_context_key(name: &str) -> String {
    match Reference::parse(name) {
        Ok(r) => {
            let f = r.familiar();
            f.strip_suffix(":latest").map(str::to_string).unwrap_or(f)
        }
        Err(_) => name.to_string(),
    }
}

impl<'a> ImageResolver<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Option<Client>,
        cache_root: PathBuf,
        cache_fallback: Option<PathBuf>,
        named: BTreeMap<String, NamedSource>,
        allow_floating_tags: bool,
        offline: bool,
        work: PathBuf,
        progress: &'a dyn Progress,
    ) -> ImageResolver<'a> {
        ImageResolver {
            client,
            cache_root,
            cache_fallback,
            cache: std::cell::OnceCell::new(),
            named,
            allow_floating_tags,
            offline,
            work,
            progress,
        }
    }

    fn cache(&self) -> Result<&Cache, BuildError> {
        if let Some(c) = self.cache.get() {
            return Ok(c);
        }
        let c = match (Cache::open(&self.cache_root), &self.cache_fallback) {
            (Ok(c), _) => c,
            (Err(e), Some(fallback)) => {
                self.progress.warn(&format!(
                    "the image cache {} cannot be used ({e}); using a temporary cache for this build",
                    self.cache_root.display()
                ));
                Cache::open(fallback)
                    .map_err(|e| BuildError::env(format!("cache {}: {e}", fallback.display())))?
            }
            (Err(e), None) => {
                return Err(BuildError::env(format!(
                    "the image cache {} cannot be used: {e} (choose another with --cache-dir)",
                    self.cache_root.display()
                )))
            }
        };
        Ok(self.cache.get_or_init(|| c))
    }

    fn base_image(
        &self,
        src: &ImageSource,
        img: LoadedImage,
        reference: String,
        named: bool,
    ) -> Result<BaseImage, BuildError> {
        let config: ImageConfig = img.config.clone();
        let diff_ids = config.diff_ids().to_vec();
        if diff_ids.len() != img.manifest.layers.len() {
            return Err(BuildError::input(format!(
                "{reference}: the config lists {} diff_ids for {} layers",
                diff_ids.len(),
                img.manifest.layers.len()
            )));
        }
        let mut layers = Vec::new();
        for (l, diff_id) in img.manifest.layers.iter().zip(diff_ids) {
            let path = match src {
                ImageSource::Layout(dir) => dir.join("blobs/sha256").join(l.digest.hex()),
                ImageSource::Tarball { .. } => {
                    // Copy the member out once, verifying it on the way.
                    let dest = self.work.join(format!("blob-{}", l.digest.hex()));
                    if !dest.exists() {
                        let mut r = src.open_blob_verified(&l.digest, l.size as u64)?;
                        let tmp = dest.with_extension("partial");
                        let mut f = std::fs::File::create(&tmp)?;
                        std::io::copy(&mut r, &mut f).map_err(|e| {
                            BuildError::input(format!("{reference}: layer {}: {e}", l.digest))
                        })?;
                        std::fs::rename(&tmp, &dest)?;
                    }
                    dest
                }
            };
            if matches!(src, ImageSource::Layout(_)) {
                verify_file(&path, &l.digest, l.size as u64)
                    .map_err(|e| BuildError::input(format!("{reference}: {e}")))?;
            }
            layers.push(BaseLayer {
                media_type: l.media_type.clone(),
                digest: l.digest,
                size: l.size as u64,
                diff_id,
                path,
            });
        }
        Ok(BaseImage {
            reference,
            config,
            layers,
            named_context: named,
        })
    }

    fn load_local(
        &self,
        src_spec: &str,
        digest: Option<&Digest>,
        platform: &Platform,
        named: bool,
    ) -> Result<BaseImage, BuildError> {
        let src = ImageSource::open(src_spec)?;
        let img = import::load(&src, Some(platform), digest)?;
        let reference = format!("{}@{}", src_spec, img.manifest_digest);
        self.base_image(&src, img, reference, named)
    }

    fn pull(
        &self,
        reference: &str,
        platform: &Platform,
        named: bool,
    ) -> Result<BaseImage, BuildError> {
        let r = Reference::parse(reference).map_err(|e| BuildError::input(e.to_string()))?;
        let r = if r.digest().is_some() {
            r
        } else {
            let Some(client) = &self.client else {
                return Err(BuildError::input(format!(
                    "FROM {reference}: a tag without a digest cannot be resolved offline; pin it as name@sha256:..."
                )));
            };
            let digest = match client.resolve(&r) {
                Ok(d) => d,
                // Unpinned is the first thing to fix, and it needs no registry to say so.
                Err(e) if !self.allow_floating_tags => {
                    return Err(BuildError::input(format!(
                        "FROM {reference} is a floating tag: pin it by digest (name@sha256:...) \
                         for a reproducible build, or pass --allow-floating-tags.\n\
                         (kiln tried to look up the digest it points to now: {e})"
                    )))
                }
                Err(e) => return Err(registry_err(e)),
            };
            // The user's name and tag kept, the digest added: `debian:bookworm@sha256:...`
            // (the digest wins; the tag stays as documentation).
            let pinned = format!("{}@{digest}", r.familiar());
            if !self.allow_floating_tags {
                return Err(BuildError::input(format!(
                    "FROM {reference} is a floating tag: it points to {digest} today and may point elsewhere tomorrow.\n\
                     Pin it for a reproducible build:\n    FROM {pinned}\n\
                     (or pass --allow-floating-tags to build from whatever the tag points to)"
                )));
            }
            self.progress
                .warn(&format!("{reference} resolved to {pinned}"));
            r.pinned(digest)
        };
        let source = match (&self.client, self.offline) {
            (Some(c), false) => Source::Online(c),
            _ => Source::Offline,
        };
        let pulled = self
            .cache()?
            .pull(source, &r, &to_registry_platform(platform))
            .map_err(registry_err)?;
        let config_bytes = std::fs::read(&pulled.config.path)?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| BuildError::input(format!("{r}: image config: {e}")))?;
        let diff_ids = config.diff_ids().to_vec();
        if diff_ids.len() != pulled.layers.len() {
            return Err(BuildError::input(format!(
                "{r}: the config lists {} diff_ids for {} layers",
                diff_ids.len(),
                pulled.layers.len()
            )));
        }
        let layers = pulled
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(l, diff_id)| BaseLayer {
                media_type: l.descriptor.media_type.clone(),
                digest: l.descriptor.digest,
                size: l.descriptor.size,
                diff_id,
                path: l.path.clone(),
            })
            .collect();
        Ok(BaseImage {
            reference: pulled.reference.to_string(),
            config,
            layers,
            named_context: named,
        })
    }
}

/// Checks that a blob file has the expected size and digest.
fn verify_file(path: &Path, digest: &Digest, size: u64) -> Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("blob {digest}: {e}"))?;
    let (d, n) = kiln_digest::digest_reader(std::io::BufReader::new(f))
        .map_err(|e| format!("blob {digest}: {e}"))?;
    if n != size {
        return Err(format!(
            "blob {digest} is {n} bytes, the manifest says {size}"
        ));
    }
    if d != *digest {
        return Err(format!(
            "blob {digest} has the wrong content (its digest is {d})"
        ));
    }
    Ok(())
}

impl BaseResolver for ImageResolver<'_> {
    fn named_context(
        &self,
        name: &str,
        platform: &Platform,
    ) -> Result<Option<BaseImage>, BuildError> {
        let key = named_context_key(name);
        let Some(src) = self.named.get(&key).or_else(|| self.named.get(name)) else {
            return Ok(None);
        };
        let img = match src {
            NamedSource::Layout { dir, digest } => {
                self.load_local(&dir.display().to_string(), digest.as_ref(), platform, true)?
            }
            NamedSource::Archive(p) => {
                self.load_local(&p.display().to_string(), None, platform, true)?
            }
            NamedSource::Image(r) => self.pull(r, platform, true)?,
        };
        Ok(Some(img))
    }

    fn resolve(&self, reference: &str, platform: &Platform) -> Result<BaseImage, BuildError> {
        // Local images named directly in FROM are pinned by their path and digest.
        if let Some(rest) = reference.strip_prefix("oci-layout://") {
            let (dir, digest) = match rest.rsplit_once('@') {
                Some((d, dg)) => (
                    d,
                    Some(
                        dg.parse::<Digest>()
                            .map_err(|e| BuildError::input(e.to_string()))?,
                    ),
                ),
                None => (rest, None),
            };
            return self.load_local(dir, digest.as_ref(), platform, false);
        }
        for p in ["oci-archive:", "docker-archive:"] {
            if let Some(path) = reference.strip_prefix(p) {
                return self.load_local(path, None, platform, false);
            }
        }
        self.pull(reference, platform, false)
    }
}
