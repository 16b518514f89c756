//! `kiln crosscheck`: rebuild natively and compare with an image BuildKit built.

use std::path::PathBuf;

use clap::Args;
use kiln_image::gotime::GoTime;
use kiln_image::import::{self, ImageSource};

use crate::cmd::build::{self, BuildArgs, CompressionArg, FallbackArg, Outcome, OutputFormat};
use crate::fail::{CliResult, Failure};

#[derive(Args, Debug)]
#[command(after_long_help = CROSSCHECK_HELP)]
pub struct CrosscheckArgs {
    /// The image BuildKit built: a docker/OCI tarball or an OCI layout directory
    #[arg(value_name = "BUILDKIT_IMAGE")]
    pub image: PathBuf,

    #[command(flatten)]
    pub build: BuildArgs,
}

const CROSSCHECK_HELP: &str = "\
The rebuild always runs natively (never through BuildKit: --fallback, --driver and
--buildkit-image do not apply), in the BuildKit image's format (docker or OCI manifest) and
layer compression, for its platform. Without --sde/--datetime or $SOURCE_DATE_EPOCH, the epoch
is read from the image: its org.opencontainers.image.created index annotation, else its
history, else its creation time (all of which BuildKit sets from SOURCE_DATE_EPOCH). Without
-o the rebuild is discarded.

Per layer the verdict is: identical (same blob), same content (same diff_id, the compressed
blobs differ), or differs, with the first differing files. Exit 0 when kiln reproduces the
image digest, 1 on any difference.

Example:
  kiln crosscheck --sde 1677619260 buildkit.tar -f Dockerfile .";

pub fn run(c: CrosscheckArgs) -> CliResult {
    let mut a = c.build;
    let spec = c.image.display().to_string();
    let platform = match &a.platform {
        Some(p) => Some(kiln_build::platform::parse(p).map_err(Failure::input)?),
        None => None,
    };
    let src = ImageSource::open(&spec)?;
    let theirs = import::load(&src, platform.as_ref(), None)?;

    // Rebuild in the form BuildKit wrote, so that digests are comparable.
    let format = if theirs.manifest_media_type == kiln_image::spec::media::DOCKER_MANIFEST {
        OutputFormat::Docker
    } else if c.image.is_dir() {
        OutputFormat::OciDir
    } else {
        OutputFormat::Oci
    };
    let compression = match theirs.manifest.layers.last() {
        Some(l) if l.media_type.ends_with("tar") => CompressionArg::Uncompressed,
        _ => CompressionArg::Gzip,
    };
    if a.format != OutputFormat::Docker && a.format != format {
        eprintln!("warning: --format is ignored: the rebuild takes the BuildKit image's format");
    }
    if a.compression != CompressionArg::Gzip && a.compression != compression {
        eprintln!(
            "warning: --compression is ignored: the rebuild takes the BuildKit image's compression"
        );
    }
    a.format = format;
    a.compression = compression;
    a.fallback = FallbackArg::Never;
    a.native_only = Some("a cross-check only rebuilds natively");
    if a.platform.is_none() {
        let p = theirs.platform().display();
        if p != kiln_build::platform::host().display() {
            a.platform = Some(p);
        }
    }
    let env_sde = std::env::var("SOURCE_DATE_EPOCH").is_ok_and(|v| !v.is_empty());
    if a.epoch.sde.is_none() && a.epoch.datetime.is_none() && !env_sde {
        if let Some((secs, from)) = epoch_of(&theirs) {
            eprintln!(
                "kiln: SOURCE_DATE_EPOCH {secs} ({}), from {from}",
                GoTime::from_unix(secs)
            );
            a.epoch.sde = Some(secs.to_string());
        }
    }
    let work = tempfile::Builder::new()
        .prefix("kiln-crosscheck-")
        .tempdir()
        .map_err(|e| Failure::env(format!("cannot create a temporary directory: {e}")))?;
    if a.output.as_os_str() == "image.tar" {
        a.output = work.path().join(if format == OutputFormat::OciDir {
            "rebuild"
        } else {
            "rebuild.tar"
        });
    }
    match build::build(&a).map_err(|f| Failure {
        code: f.code,
        message: format!("the native rebuild failed: {}", f.message),
    })? {
        Outcome::Built { .. } => {}
        Outcome::Exit(code) => return Ok(code),
    }
    let ours_src = ImageSource::open(&a.output.display().to_string())?;
    let ours = import::load(&ours_src, None, None)?;
    let cmp = kiln_buildkit::compare(
        kiln_buildkit::Side {
            label: "the BuildKit image",
            source: &src,
            image: &theirs,
        },
        kiln_buildkit::Side {
            label: "kiln's rebuild",
            source: &ours_src,
            image: &ours,
        },
    )
    .map_err(|e| Failure {
        code: e.exit_code(),
        message: e.to_string(),
    })?;
    println!("BuildKit image: {spec} ({})", theirs.manifest_digest);
    println!("kiln rebuild:   {}", ours.manifest_digest);
    print!("{}", cmp.render());
    Ok(if cmp.identical() { 0 } else { 1 })
}

/// The SOURCE_DATE_EPOCH BuildKit built `img` with, as far as the image records it: the
/// index's `org.opencontainers.image.created` annotation, else the newest history entry of
/// a Dockerfile step, else the config's `created` (which, with an `oci-layout://` base, is
/// the base image's time rather than the epoch).
fn epoch_of(img: &import::LoadedImage) -> Option<(i64, &'static str)> {
    let whole = |t: &GoTime| (t.nanos == 0 && t.unix_secs >= 0).then_some(t.unix_secs);
    let annotated = img.index.as_ref().and_then(|(_, index)| {
        index
            .manifests
            .iter()
            .find(|d| d.digest == img.manifest_digest)
            .and_then(|d| d.annotations.get("org.opencontainers.image.created"))
            .and_then(|v| GoTime::parse(v).ok())
            .and_then(|t| whole(&t))
    });
    if let Some(s) = annotated {
        return Some((
            s,
            "the BuildKit image's org.opencontainers.image.created annotation",
        ));
    }
    let step = img
        .config
        .history
        .iter()
        .rev()
        .filter(|h| h.comment == "buildkit.dockerfile.v0")
        .find_map(|h| h.created.as_ref().and_then(whole));
    if let Some(s) = step {
        return Some((s, "the BuildKit image's history"));
    }
    img.config
        .created
        .as_ref()
        .and_then(whole)
        .map(|s| (s, "the BuildKit image's creation time"))
}
