//! `kiln pull`: an image from a registry, through the verified cache, into a docker- or
//! OCI-format tarball or an OCI layout directory. The output is written the way `kiln build`
//! writes its own, so the same image always gives the same bytes.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use clap::Args;
use kiln_digest::{Digest, HashingReader};
use kiln_image::export::{
    write_file_atomically, write_set_layout_dir, write_set_tarball, ImageSet,
};
use kiln_image::spec::{self, ImageConfig};
use kiln_image::store::BlobSource;
use kiln_image::{Image, ImageName};
use kiln_registry::{Cache, Client, ClientOptions, PulledImage, Reference, Source, Verify};

use crate::cmd::args::RegistryArgs;
use crate::cmd::build::{image_names, write_output, OutputFormat};
use crate::fail::{CliResult, Failure};
use crate::progress::{self, ProgressArgs, ProgressMode};

#[derive(Args, Debug)]
#[command(after_long_help = PULL_EXAMPLES)]
pub struct PullArgs {
    /// Image to pull: NAME@sha256:... (NAME:TAG alone needs --allow-floating-tags)
    #[arg(value_name = "REF")]
    pub reference: String,

    /// Where to write the image
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: PathBuf,

    /// Output format
    #[arg(long, value_enum, default_value = "docker")]
    pub format: OutputFormat,

    /// Platform to pick from a multi-platform image, os/arch[/variant] (default: this machine's)
    #[arg(long, value_name = "PLATFORM", conflicts_with = "all_platforms")]
    pub platform: Option<String>,

    /// Pull every image of a multi-platform image and keep its index (--format oci or
    /// oci-dir): the output's index digest is the registry's
    #[arg(long = "all-platforms")]
    pub all_platforms: bool,

    /// Image name to record in the output (repeatable): name[:tag] [default: REF's name and
    /// tag, when REF has a tag]
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,

    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Pull `NAME:TAG` without a digest (prints the digest used)
    #[arg(long = "allow-floating-tags")]
    pub allow_floating_tags: bool,

    #[command(flatten)]
    pub progress: ProgressArgs,
}

const PULL_EXAMPLES: &str = "\
Examples:
  kiln pull -o busybox.tar registry.example/busybox@sha256:3f0408471efe0ab36280f5435d6851b5d1ad275341c84ab21349f03cd4f4e9c6
  kiln pull --format oci-dir -o busybox-layout --platform linux/arm64 busybox@sha256:...
  kiln pull --format oci -o all.tar --all-platforms registry.example/app@sha256:<index>

Every byte is checked against its digest before it is cached or written; the same image
always gives the same output bytes.";

/// The registry client the CLI uses.
pub fn client(insecure_registries: &[String], mode: ProgressMode) -> Client {
    Client::new(ClientOptions {
        insecure_registries: insecure_registries.to_vec(),
        progress: progress::transfers(mode),
        ..ClientOptions::default()
    })
}

/// Parses a reference given on the command line (a `docker://` prefix is allowed).
pub fn parse_reference(s: &str) -> Result<Reference, Failure> {
    Reference::parse(kiln_registry::strip_transport(s)).map_err(|e| Failure::input(e.to_string()))
}

/// The refusal of a floating tag: the digest it points to now and the pinned form to use.
pub fn floating_tag_error(given: &str, r: &Reference, digest: &Digest) -> Failure {
    Failure::input(format!(
        "{given} is a floating tag: it points to {digest} today and may point elsewhere tomorrow.\n\
         Pin it for a reproducible result:\n    {}@{digest}\n\
         (or pass --allow-floating-tags to use whatever the tag points to)",
        r.familiar()
    ))
}

pub fn run(a: PullArgs) -> CliResult {
    let r = parse_reference(&a.reference)?;
    let platform = match &a.platform {
        Some(p) => kiln_build::platform::parse(p).map_err(Failure::input)?,
        None => kiln_build::platform::host(),
    };
    let mut names = image_names(&a.tags)?;
    if names.is_empty() {
        if let Some(tag) = r.tag() {
            names = image_names(&[format!("{}:{tag}", r.name())])?;
        }
    }
    check_output(&a.output, a.format)?;
    if a.all_platforms && a.format == OutputFormat::Docker {
        return Err(Failure::input(
            "--all-platforms keeps the image index: use --format oci or --format oci-dir",
        ));
    }

    let cache_root = match &a.registry.cache_dir {
        Some(d) => d.clone(),
        None => Cache::default_root().ok_or_else(|| {
            Failure::env("no cache directory: set --cache-dir, $KILN_CACHE_DIR or $HOME")
        })?,
    };
    let cache = Cache::open(&cache_root).map_err(|e| Failure::env(format!("cache: {e}")))?;
    let client =
        (!a.registry.offline).then(|| client(&a.registry.insecure_registries, a.progress.mode()));
    let source = match &client {
        Some(c) => Source::Online(c),
        None => Source::Offline,
    };

    let pinned = match (r.digest(), &client) {
        (Some(_), _) => r.clone(),
        // Offline, `Cache::pull` reports the tag it cannot resolve.
        (None, None) => r.clone(),
        (None, Some(c)) => {
            let digest = c.resolve(&r)?;
            if !a.allow_floating_tags {
                return Err(floating_tag_error(&a.reference, &r, &digest));
            }
            eprintln!(
                "warning: {} resolved to {}@{digest}",
                a.reference,
                r.familiar()
            );
            r.pinned(digest)
        }
    };
    let rplatform = kiln_registry::Platform::new(
        &platform.os,
        &platform.architecture,
        (!platform.variant.is_empty()).then_some(platform.variant.as_str()),
    );
    if a.all_platforms {
        return pull_all(&a, &cache, source, &pinned, &names);
    }
    let pulled = cache.pull(source, &pinned, &rplatform)?;
    let image = image_of(&pulled)?;
    let blobs = CacheBlobs(&cache);
    write_output(a.format, &a.output, &image, &blobs, &names)?;

    if let Some(index) = &pulled.index {
        println!("index digest:       {}", index.digest);
    }
    println!("image digest:       {}", image.manifest_digest);
    println!("platform:           {}", image.platform.display());
    println!("output:             {}", a.output.display());
    Ok(0)
}

/// `--all-platforms`: every image the index lists, and the index itself, byte for byte.
fn pull_all(
    a: &PullArgs,
    cache: &Cache,
    source: Source<'_>,
    pinned: &Reference,
    names: &[ImageName],
) -> CliResult {
    let top = cache.top_manifest(source, pinned)?;
    if !top.media_type.is_index() {
        return Err(Failure::input(format!(
            "{}: {} is a single image ({}), not a multi-platform index: pull it without \
             --all-platforms",
            a.reference,
            top.digest,
            top.media_type.as_str()
        )));
    }
    let images = cache
        .pull_index_images(source, pinned, &top, |_| false)?
        .iter()
        .map(image_of)
        .collect::<Result<Vec<_>, _>>()?;
    let set = ImageSet {
        images,
        index_digest: top.digest,
        index: top.bytes,
    };
    let blobs = CacheBlobs(cache);
    match a.format {
        OutputFormat::OciDir => write_set_layout_dir(&a.output, &set, &blobs, names)?,
        _ => write_file_atomically(&a.output, |w| {
            write_set_tarball(w, &set, &blobs, names)?;
            Ok(())
        })?,
    }
    println!("image digest:       {}", set.index_digest);
    for img in &set.images {
        println!(
            "platform image:     {} {}",
            img.manifest_digest,
            img.platform.display()
        );
    }
    println!("output:             {}", a.output.display());
    Ok(0)
}

/// Refuses an output that cannot be written before anything is downloaded.
fn check_output(out: &Path, format: OutputFormat) -> Result<(), Failure> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Failure::input(format!(
            "{}: the directory {} does not exist",
            out.display(),
            parent.display()
        )));
    }
    if format == OutputFormat::OciDir && out.exists() {
        return Err(Failure::input(format!(
            "{}: already exists; choose a new directory for an OCI layout",
            out.display()
        )));
    }
    if format != OutputFormat::OciDir && out.is_dir() {
        return Err(Failure::input(format!("{}: is a directory", out.display())));
    }
    Ok(())
}

/// The pulled image in kiln-image's terms, its manifest and config kept byte for byte.
fn image_of(p: &PulledImage) -> Result<Image, Failure> {
    let what = format!("{}", p.reference);
    let manifest: spec::Manifest = serde_json::from_slice(&p.manifest.bytes)
        .map_err(|e| Failure::input(format!("{what}: manifest {}: {e}", p.manifest.digest)))?;
    let config_digest = p.config.descriptor.digest;
    let config = std::fs::read(&p.config.path)
        .map_err(|e| Failure::env(format!("{}: {e}", p.config.path.display())))?;
    if Digest::of(&config) != config_digest {
        return Err(Failure::env(format!(
            "{}: cached config {config_digest} changed on disk",
            p.config.path.display()
        )));
    }
    let parsed: ImageConfig = serde_json::from_slice(&config)
        .map_err(|e| Failure::input(format!("{what}: config {config_digest}: {e}")))?;
    Ok(Image {
        manifest_digest: p.manifest.digest,
        manifest_media_type: p.manifest.media_type.as_str().to_string(),
        manifest: p.manifest.bytes.clone(),
        config,
        config_digest,
        layers: manifest.layers,
        platform: parsed.platform(),
        created: None,
    })
}

/// Cached blobs as a blob source for the exporters. The cache only holds verified content,
/// but a file can change on disk after that: every blob is hashed again as it is copied out,
/// and a mismatch fails the write (which then leaves no output behind).
struct CacheBlobs<'a>(&'a Cache);

impl BlobSource for CacheBlobs<'_> {
    fn open_blob(&self, digest: &Digest) -> io::Result<Option<Box<dyn Read + '_>>> {
        let path = self
            .0
            .blob(digest, None, Verify::Size)
            .map_err(|e| io::Error::other(e.to_string()))?;
        match path {
            Some(p) => Ok(Some(Box::new(Checked {
                inner: Some(HashingReader::new(std::fs::File::open(p)?)),
                expected: *digest,
            }))),
            None => Ok(None),
        }
    }
}

/// A reader that fails at its end when the bytes did not have the expected digest.
struct Checked<R> {
    inner: Option<HashingReader<R>>,
    expected: Digest,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        let n = inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(done) = self.inner.take() {
                let (_, actual, _) = done.finish();
                if actual != self.expected {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "cached blob {} changed on disk (its bytes hash to {actual})",
                            self.expected
                        ),
                    ));
                }
            }
        }
        Ok(n)
    }
}
