//! `kiln normalize`: repack any image into kiln's canonical, reproducible form.

use std::path::{Path, PathBuf};

use clap::Args;
use kiln_digest::Digest;
use kiln_image::export::{
    write_file_atomically, write_set_layout_dir, write_set_tarball, ImageSet,
};
use kiln_image::gojson;
use kiln_image::gotime::GoTime;
use kiln_image::import::{self, PlatformIndex};
use kiln_image::spec::{Descriptor, Index};
use kiln_image::store::BlobStore;
use kiln_layer::Compression;
use kiln_normalize::{Devices, ManifestFormat, NormalizedLayer, Options, Scrubber};

use crate::cmd::args::{EpochArgs, RegistryArgs};
use crate::cmd::build::{image_names, write_output, CompressionArg, OutputFormat};
use crate::fail::{CliResult, Failure};
use crate::progress::{LayerProgress, ProgressArgs};

#[derive(Args, Debug)]
#[command(after_long_help = NORMALIZE_EXAMPLES)]
pub struct NormalizeArgs {
    /// Image: a docker/OCI tarball, an OCI layout directory (oci-layout://DIR[@sha256:...]),
    /// or a registry image (docker://HOST/NAME[:TAG|@sha256:...])
    pub image: String,

    /// Where to write the normalized image
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: PathBuf,

    /// Output format
    #[arg(long, value_enum, default_value = "docker")]
    pub format: OutputFormat,

    /// Layer compression
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: CompressionArg,

    #[command(flatten)]
    pub epoch: EpochArgs,

    /// Remove or rewrite files known to differ between otherwise equal builds
    /// (comma-separated rule names, or `all`; see below)
    #[arg(long, value_name = "RULES", value_delimiter = ',', long_help = scrub_help())]
    pub scrub: Vec<String>,

    /// Image name to record in the output (repeatable): name[:tag]
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,

    /// The image to take from a multi-platform input, os/arch[/variant] (default: this
    /// machine's)
    #[arg(long, value_name = "PLATFORM", conflicts_with = "all_platforms")]
    pub platform: Option<String>,

    /// Normalize every image of a multi-platform input (an OCI layout or OCI tarball whose
    /// index.json names one image index, or a registry index) and write them under a new
    /// index (--format oci or oci-dir). Attestation manifests are dropped (and not
    /// downloaded): they attest the images as they were.
    #[arg(long = "all-platforms")]
    pub all_platforms: bool,

    /// Layers normalized at once [default: the number of CPUs]
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Keep character and block device nodes (refused by default)
    #[arg(long = "allow-device-nodes")]
    pub allow_device_nodes: bool,

    #[command(flatten)]
    pub progress: ProgressArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn scrub_help() -> String {
    format!(
        "Remove or rewrite files known to differ between otherwise equal builds. RULES is a \
         comma-separated list of these (or `all`); nothing is scrubbed unless named:\n\n{}",
        kiln_normalize::scrub::help_text()
    )
}

const NORMALIZE_EXAMPLES: &str = "\
What normalizing does to every layer: entries sorted in layer order, names without ./, mtimes
truncated to seconds and clamped to SOURCE_DATE_EPOCH (older ones are kept, as BuildKit's
rewrite-timestamp keeps them), no atime/ctime, numeric owners only, PAX records reduced to
extended attributes, hard links pointing at the first name in layer order, Go-exact tar
headers, kiln's gzip. Config `created` and every history time are set to the epoch.
Entries that could escape the image root, duplicate names and device nodes are refused
(exit code 2), as is any blob that does not match its digest.

Examples:
  kiln normalize --sde 1700000000 -o app.norm.tar app.tar
  kiln normalize --format oci-dir -o layout/ docker://registry.example/app@sha256:...
  kiln normalize --scrub apt-logs,ldconfig-cache,pycache -o out.tar in.oci.tar
  kiln normalize --all-platforms --format oci -o multi.norm.tar buildx-layout/
  kiln normalize --all-platforms --format oci-dir -o multi/ docker://registry.example/app@sha256:...

Normalizing a normalized image with the same options gives the same bytes.";

impl From<kiln_normalize::Error> for Failure {
    fn from(e: kiln_normalize::Error) -> Failure {
        Failure {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

/// Checks that `out` can be created: its directory exists and it is not a directory.
pub fn check_output(out: &Path, dir_output: bool) -> Result<PathBuf, Failure> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Failure::input(format!(
            "{}: the directory {} does not exist",
            out.display(),
            parent.display()
        )));
    }
    if dir_output && out.exists() {
        return Err(Failure::input(format!(
            "{}: already exists; an OCI layout needs a new directory",
            out.display()
        )));
    }
    if !dir_output && out.is_dir() {
        return Err(Failure::input(format!("{}: is a directory", out.display())));
    }
    Ok(parent)
}

/// The summary lines of normalized layers: old and new digest, entries, clamps, scrubs.
fn layer_lines(layers: &[(Descriptor, NormalizedLayer)]) -> String {
    let mut out = String::new();
    for (i, (d, l)) in layers.iter().enumerate() {
        out.push_str(&format!(
            "  {:>2}  {} -> {}  {} entries, {} mtimes clamped{}\n",
            i + 1,
            d.digest.short(),
            l.output.digest.short(),
            l.stats.entries_written,
            l.stats.mtimes_clamped,
            if l.stats.scrubbed.is_empty() {
                String::new()
            } else {
                format!(", {} scrubbed", l.stats.scrubbed.len())
            }
        ));
    }
    out
}

pub fn run(a: NormalizeArgs) -> CliResult {
    let epoch = a.epoch.resolve()?;
    let scrub =
        Scrubber::parse(&a.scrub.join(",")).map_err(|e| Failure::input(format!("--scrub: {e}")))?;
    let names = image_names(&a.tags)?;
    let input = a.registry.input_options(a.platform.as_deref())?;
    let parent = check_output(&a.output, a.format == OutputFormat::OciDir)?;
    let jobs = a.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if jobs == 0 {
        return Err(Failure::input("--jobs must be at least 1"));
    }
    if a.all_platforms && a.format == OutputFormat::Docker {
        return Err(Failure::input(
            "--all-platforms writes an OCI image index: use --format oci or --format oci-dir",
        ));
    }

    // Spill files and new blobs live beside the output (same file system, not a tmpfs), in
    // a directory removed when done.
    let work = tempfile::Builder::new()
        .prefix(".kiln-normalize-")
        .tempdir_in(&parent)
        .map_err(|e| {
            Failure::env(format!(
                "cannot create a work directory in {}: {e}",
                parent.display()
            ))
        })?;
    let store = BlobStore::open(work.path().join("store"))
        .map_err(|e| Failure::env(format!("cannot create the blob store: {e}")))?;
    let opts = Options {
        epoch,
        scrub,
        devices: if a.allow_device_nodes {
            Devices::Keep
        } else {
            Devices::Refuse
        },
        compression: match a.compression {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Uncompressed => Compression::Uncompressed,
        },
        format: match a.format {
            OutputFormat::Docker => ManifestFormat::Docker,
            OutputFormat::Oci | OutputFormat::OciDir => ManifestFormat::Oci,
        },
        jobs,
    };
    let printer = || LayerProgress::new(a.progress.mode());
    let mut out = String::new();
    if a.all_platforms {
        let opened = kiln_normalize::input::open_index(&a.image, &input)?;
        let source = &opened.source;
        let index = PlatformIndex::read(source)?;
        let mut images = Vec::new();
        let mut manifests = Vec::new();
        let mut report = String::new();
        let mut dropped = 0;
        for m in &index.index.manifests {
            if kiln_normalize::input::is_attestation(&m.annotations) {
                dropped += 1;
                continue;
            }
            let loaded = import::load(source, None, Some(&m.digest))?;
            let what = format!("{} ({})", a.image, m.digest);
            let result = kiln_normalize::normalize_image(
                &what,
                source,
                &loaded,
                &opts,
                &store,
                work.path(),
                &printer(),
            )?;
            let img = result.image;
            let mut d = Descriptor::new(
                &img.manifest_media_type,
                img.manifest_digest,
                img.manifest.len() as u64,
            );
            d.platform = m.platform.clone().or_else(|| Some(img.platform.clone()));
            let platform = d.platform.as_ref().map(|p| p.display()).unwrap_or_default();
            report.push_str(&format!("  {platform:<14} {}\n", img.manifest_digest));
            report.push_str(&layer_lines(&result.layers));
            manifests.push(d);
            images.push(img);
        }
        if images.is_empty() {
            return Err(Failure::input(format!(
                "{}: the index lists no image to normalize",
                a.image
            )));
        }
        let index_bytes = gojson::to_vec_indent(&Index::oci(manifests));
        let set = ImageSet {
            images,
            index_digest: Digest::of(&index_bytes),
            index: index_bytes,
        };
        match a.format {
            OutputFormat::OciDir => write_set_layout_dir(&a.output, &set, &store, &names)?,
            _ => write_file_atomically(&a.output, |w| {
                write_set_tarball(w, &set, &store, &names)?;
                Ok(())
            })?,
        }
        out.push_str(&format!("image digest:       {}\n", set.index_digest));
        out.push_str(&format!(
            "source date epoch:  {epoch} ({})\nimages:\n{report}",
            GoTime::from_unix(epoch)
        ));
        if dropped > 0 {
            out.push_str(&format!(
                "attestations:       {dropped} dropped (they attest the images as they were)\n"
            ));
        }
    } else {
        let opened = kiln_normalize::open_image(&a.image, &input)?;
        let result = kiln_normalize::normalize_image(
            &a.image,
            &opened.source,
            &opened.image,
            &opts,
            &store,
            work.path(),
            &printer(),
        )?;
        let image = &result.image;
        write_output(a.format, &a.output, image, &store, &names)?;
        out.push_str(&format!("image digest:       {}\n", image.manifest_digest));
        out.push_str(&format!(
            "source date epoch:  {epoch} ({})\nlayers:\n",
            GoTime::from_unix(epoch)
        ));
        out.push_str(&layer_lines(&result.layers));
    }
    out.push_str(&format!(
        "output:             {} ({})\n",
        a.output.display(),
        a.format.describe()
    ));
    crate::cmd::diff::print(&out);
    Ok(0)
}
