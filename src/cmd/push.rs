//! `kiln push`: a docker- or OCI-format tarball or an OCI layout directory to a registry.
//! Blobs the registry has are skipped; the manifest goes up byte for byte with its own media
//! type, so the digest the registry reports is the local image digest (checked). With
//! `--all-platforms`, every image of a multi-platform layout goes up by digest, then its index.

use std::io::{Cursor, Read, Seek};
use std::path::PathBuf;

use clap::Args;
use kiln_digest::Digest;
use kiln_image::import::{self, ImageSource, LoadedImage};
use kiln_registry::{Manifest, MediaType, PushOutcome, Target, UploadMode};

use crate::cmd::pull::{client, parse_reference};
use crate::fail::{CliResult, Failure};
use crate::progress::ProgressArgs;

#[derive(Args, Debug)]
#[command(after_long_help = PUSH_EXAMPLES)]
pub struct PushArgs {
    /// Image to push: docker- or OCI-format tarball, or OCI layout directory
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// Where to: NAME[:TAG] (default tag `latest`) or NAME@sha256:... (must be the image's digest)
    #[arg(value_name = "REF")]
    pub reference: String,

    /// Image to pick when IMAGE holds several, os/arch[/variant]
    #[arg(long, value_name = "PLATFORM", conflicts_with = "all_platforms")]
    pub platform: Option<String>,

    /// Push every image of a multi-platform IMAGE and its index (the index gets REF's tag)
    #[arg(long = "all-platforms")]
    pub all_platforms: bool,

    /// Upload blobs in chunks of this many bytes (PATCH requests) instead of one PUT each
    #[arg(long = "chunk-size", value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_size: Option<u64>,

    /// Registry (host[:port]) that may be reached over plain http (loopback always may)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,

    /// Write the pushed manifest's digest (sha256:...) to this file
    #[arg(long = "digest-file", value_name = "PATH")]
    pub digest_file: Option<PathBuf>,

    #[command(flatten)]
    pub progress: ProgressArgs,
}

const PUSH_EXAMPLES: &str = "\
Examples:
  kiln push image.tar registry.example/app:1.2
  kiln push --chunk-size 5242880 layout-dir registry.example/app@sha256:...
  kiln push --all-platforms buildx-layout/ registry.example/app:1.2   (every platform + index)

Credentials come from Docker's config.json ($DOCKER_CONFIG, else ~/.docker): a
credHelpers entry for the registry, else credsStore (both run docker-credential-NAME
as Docker does), else \"auths\" (docker login / podman login --authfile).";

pub fn run(a: PushArgs) -> CliResult {
    let r = parse_reference(&a.reference)?;
    let platform = match &a.platform {
        Some(p) => Some(kiln_build::platform::parse(p).map_err(Failure::input)?),
        None => None,
    };
    let what = a.image.display().to_string();
    let src = ImageSource::open(&what)?;
    let mode = match a.chunk_size {
        Some(n) => UploadMode::Chunked(usize::try_from(n).unwrap_or(usize::MAX)),
        None => UploadMode::Monolithic,
    };
    let client = client(&a.insecure_registries, a.progress.mode());
    let repo = r.repository();
    let target = match (r.tag(), r.digest()) {
        (Some(t), _) => Target::Tag(t),
        (None, Some(d)) => Target::Digest(d),
        (None, None) => Target::Tag("latest"),
    };

    // A reference by digest must name what is pushed.
    let same_digest = |kind: &str, actual: Digest| match r.digest() {
        Some(d) if d != actual => Err(Failure::input(format!(
            "{}: the reference names {d} but {what} holds {kind} {actual}",
            a.reference
        ))),
        _ => Ok(()),
    };
    let (pushed, counts) = if a.all_platforms {
        let index = import::PlatformIndex::read(&src)?;
        let media_type = MediaType::parse(&index.media_type).ok_or_else(|| {
            Failure::input(format!(
                "{what}: index {} has media type {:?}, which kiln cannot push",
                index.digest, index.media_type
            ))
        })?;
        same_digest("index", index.digest)?;
        let mut counts = (0, 0);
        for m in &index.index.manifests {
            let img = import::load(&src, None, Some(&m.digest))?;
            let (media_type, u, e) = push_image(&client, repo, &src, &img, &what, mode)?;
            let manifest = Manifest::new(media_type, img.manifest_bytes.clone());
            client.put_manifest(repo, &Target::Digest(img.manifest_digest), &manifest)?;
            counts = (counts.0 + u, counts.1 + e);
            println!("platform image:     {}", m.digest);
        }
        let index_manifest = Manifest::new(media_type, index.bytes);
        let pushed = client.put_manifest(repo, &target, &index_manifest)?;
        (pushed, counts)
    } else {
        let img = import::load(&src, platform.as_ref(), None).map_err(|e| {
            let f = Failure::from(e);
            if f.message.contains("holds several images") {
                Failure::input(format!(
                    "{}; or push them all with their index: --all-platforms",
                    f.message
                ))
            } else {
                f
            }
        })?;
        same_digest("image", img.manifest_digest)?;
        let (media_type, u, e) = push_image(&client, repo, &src, &img, &what, mode)?;
        let manifest = Manifest::new(media_type, img.manifest_bytes.clone());
        let pushed = client.put_manifest(repo, &target, &manifest)?;
        (pushed, (u, e))
    };
    if let Some(path) = &a.digest_file {
        std::fs::write(path, format!("{pushed}\n"))
            .map_err(|e| Failure::env(format!("{}: {e}", path.display())))?;
    }
    println!("pushed:             {}@{pushed}", r.name());
    println!("image digest:       {pushed}");
    println!(
        "blobs:              {} uploaded, {} already there",
        counts.0, counts.1
    );
    Ok(0)
}

/// The media type of an image manifest kiln can push (not an index, not a synthesised
/// manifest of an old `docker save` archive).
fn image_media_type(img: &LoadedImage, what: &str) -> Result<MediaType, Failure> {
    if img.index.is_none() {
        return Err(Failure::input(format!(
            "{what}: an old-style `docker save` archive (no index.json): its manifest is not a \
             registry manifest, so it cannot be pushed with its digest; re-export it as an OCI \
             layout (`skopeo copy docker-archive:FILE oci:DIR`) or repack it canonically \
             (`kiln normalize FILE -o OUT.tar`) and push that"
        )));
    }
    match MediaType::parse(&img.manifest_media_type) {
        Some(m) if !m.is_index() => Ok(m),
        _ => Err(Failure::input(format!(
            "{what}: manifest {} has media type {:?}, not an image manifest kiln can push",
            img.manifest_digest, img.manifest_media_type
        ))),
    }
}

/// Pushes an image's config and layers (skipping what the registry has); returns the
/// manifest's media type and the blobs (uploaded, already there).
fn push_image(
    client: &kiln_registry::Client,
    repo: &kiln_registry::Repository,
    src: &ImageSource,
    img: &LoadedImage,
    what: &str,
    mode: UploadMode,
) -> Result<(MediaType, usize, usize), Failure> {
    let media_type = image_media_type(img, what)?;
    let mut seen: Vec<Digest> = Vec::new();
    let config = &img.manifest.config;
    let blobs = std::iter::once(config).chain(img.manifest.layers.iter());
    let (mut uploaded, mut existed) = (0usize, 0usize);
    for desc in blobs {
        if seen.contains(&desc.digest) {
            continue;
        }
        seen.push(desc.digest);
        let size = u64::try_from(desc.size).map_err(|_| {
            Failure::input(format!(
                "{what}: blob {} has a negative size {}",
                desc.digest, desc.size
            ))
        })?;
        let mut reader = open_blob(src, img, &desc.digest)?;
        match client.push_blob(repo, &desc.digest, size, &mut reader, mode)? {
            PushOutcome::Uploaded => uploaded += 1,
            PushOutcome::Exists => existed += 1,
        }
    }
    Ok((media_type, uploaded, existed))
}

/// Something `push_blob` can read and rewind.
trait Blob: Read + Seek {}
impl<T: Read + Seek> Blob for T {}

/// A seekable reader of one blob: the config from memory, a layer from the layout's file or
/// from its member's bytes inside the tarball (read in place, never extracted).
fn open_blob<'a>(
    src: &ImageSource,
    img: &'a LoadedImage,
    digest: &Digest,
) -> Result<Box<dyn Blob + 'a>, Failure> {
    if *digest == img.manifest.config.digest {
        return Ok(Box::new(Cursor::new(img.config_bytes.as_slice())));
    }
    match src.open_blob_raw(digest) {
        Ok(Some(section)) => Ok(Box::new(section)),
        Ok(None) => Err(Failure::input(format!(
            "{}: blob {digest} is missing",
            src.describe()
        ))),
        Err(e) => Err(Failure::env(format!(
            "{}: blob {digest}: {e}",
            src.describe()
        ))),
    }
}
