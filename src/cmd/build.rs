//! `kiln build`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use kiln_build::output::ManifestFormat;
use kiln_build::{BuildOptions, BuildOutput};
use kiln_image::export::{write_file_atomically, write_layout_dir, write_tarball};
use kiln_image::gotime::GoTime;
use kiln_image::store::{BlobStore, Sources};
use kiln_image::{Image, ImageName, TarballKind};
use kiln_layer::Compression;

use crate::fail::{CliResult, Failure};
use crate::progress::{Printer, ProgressMode};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Docker-format tarball (OCI layout + manifest.json): `docker load`, skopeo docker-archive:
    Docker,
    /// OCI-format tarball (OCI layout in a tar): skopeo oci-archive:
    Oci,
    /// OCI layout directory
    OciDir,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Uncompressed,
}

#[derive(Args, Debug)]
#[command(after_long_help = BUILD_EXAMPLES)]
pub struct BuildArgs {
    /// Build context directory
    #[arg(default_value = ".")]
    pub context: PathBuf,

    /// Dockerfile (default: CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Where to write the image
    #[arg(
        short = 'o',
        long = "output",
        value_name = "PATH",
        default_value = "image.tar"
    )]
    pub output: PathBuf,

    /// Output format
    #[arg(long, value_enum, default_value = "docker")]
    pub format: OutputFormat,

    /// Layer compression (base image layers are always kept as they are)
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: CompressionArg,

    /// SOURCE_DATE_EPOCH: clamp every timestamp to this many seconds since 1970
    /// [default: $SOURCE_DATE_EPOCH, else 0]
    #[arg(
        long = "sde",
        visible_alias = "source-date-epoch",
        value_name = "N",
        conflicts_with = "datetime"
    )]
    pub sde: Option<String>,

    /// SOURCE_DATE_EPOCH as an RFC 3339 time (2023-02-28T21:21:00Z)
    #[arg(long, value_name = "RFC3339")]
    pub datetime: Option<String>,

    /// Build argument (repeatable); KEY alone takes the value from the environment
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,

    /// Build this stage (default: the last one)
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,

    /// Target platform, os/arch[/variant] (default: this machine's)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    /// Image name to record in the output (repeatable): name[:tag]
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,

    /// Annotation to add to the image manifest (repeatable)
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// Write build metadata (digests, descriptor) as JSON, with buildx's keys
    #[arg(long = "metadata-file", value_name = "PATH")]
    pub metadata_file: Option<PathBuf>,

    /// Progress output on stderr
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,

    /// Default network for RUN (RUN --network overrides it)
    #[arg(long, value_enum, default_value = "host")]
    pub network: NetworkArg,

    /// Named context (repeatable): NAME=oci-layout://DIR[@sha256:...], NAME=docker-image://REF,
    /// NAME=oci-archive:PATH or NAME=docker-archive:PATH. `FROM NAME` and `COPY --from=NAME` use it.
    #[arg(long = "build-context", value_name = "NAME=SOURCE")]
    pub build_contexts: Vec<String>,

    /// Cache of downloaded blobs [default: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln]
    #[arg(long = "cache-dir", value_name = "DIR", env = "KILN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Use only the local cache; fail naming every missing blob
    #[arg(long)]
    pub offline: bool,

    /// Build from `FROM name:tag` without a digest (prints the digest used)
    #[arg(long = "allow-floating-tags")]
    pub allow_floating_tags: bool,

    /// Registry (host[:port]) that may be reached over plain http (loopback always may)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    /// A new network namespace with only loopback
    None,
    /// The host's network
    Host,
}

const BUILD_EXAMPLES: &str = "\
Examples:
  kiln build --sde 1677619260 -o image.tar .
  kiln build -f docker/Dockerfile --format oci -o app.oci.tar --build-arg VERSION=1.2 .
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) kiln build -t app:1.2 --metadata-file meta.json .

The same inputs always give the same image digest; `kiln analyze image.tar` shows it.";

/// SOURCE_DATE_EPOCH from --sde, --datetime, $SOURCE_DATE_EPOCH, else 0.
fn source_date_epoch(a: &BuildArgs) -> Result<i64, Failure> {
    let parse = |v: &str, from: &str| -> Result<i64, Failure> {
        let n: i64 = v.trim().parse().map_err(|_| {
            Failure::input(format!(
                "{from}: {v:?} is not a SOURCE_DATE_EPOCH (a whole number of seconds since 1970)"
            ))
        })?;
        if n < 0 {
            return Err(Failure::input(format!(
                "{from}: SOURCE_DATE_EPOCH must not be negative"
            )));
        }
        Ok(n)
    };
    if let Some(v) = &a.sde {
        return parse(v, "--sde");
    }
    if let Some(d) = &a.datetime {
        let t = GoTime::parse(d).map_err(|e| Failure::input(format!("--datetime: {e}")))?;
        if t.nanos != 0 {
            return Err(Failure::input(
                "--datetime: SOURCE_DATE_EPOCH has whole seconds only",
            ));
        }
        if t.unix_secs < 0 {
            return Err(Failure::input(
                "--datetime: times before 1970 are not allowed",
            ));
        }
        return Ok(t.unix_secs);
    }
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => parse(&v, "$SOURCE_DATE_EPOCH"),
        _ => Ok(0),
    }
}

fn key_values(
    items: &[String],
    flag: &str,
    env_fallback: bool,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            None if env_fallback && !item.is_empty() => {
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            _ => {
                return Err(Failure::input(format!(
                    "{flag} {item:?}: expected KEY=VALUE"
                )))
            }
        }
    }
    Ok(out)
}

/// `-t` values as the exporters record them.
pub fn image_names(tags: &[String]) -> Result<Vec<ImageName>, Failure> {
    tags.iter()
        .map(|t| {
            let r = kiln_registry::Reference::parse(t)
                .map_err(|e| Failure::input(format!("-t {t:?}: {e}")))?;
            let tag = r.tag().map(str::to_string);
            Ok(ImageName {
                full: r.to_string(),
                familiar: r.familiar(),
                tag,
            })
        })
        .collect()
}

pub fn run(a: BuildArgs) -> CliResult {
    let printer = Printer::new(a.progress);
    let epoch = source_date_epoch(&a)?;
    let build_args = key_values(&a.build_args, "--build-arg", true)?;
    let annotations = key_values(&a.annotations, "--annotation", false)?;
    let names = image_names(&a.tags)?;
    let platform = match &a.platform {
        Some(p) => Some(kiln_build::platform::parse(p).map_err(Failure::input)?),
        None => None,
    };
    if !a.context.is_dir() {
        return Err(Failure::input(format!(
            "build context {}: not a directory",
            a.context.display()
        )));
    }
    let dockerfile = a
        .file
        .clone()
        .unwrap_or_else(|| a.context.join("Dockerfile"));
    let display = a
        .file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "Dockerfile".into());
    let text = std::fs::read(&dockerfile).map_err(|e| {
        Failure::input(format!(
            "{}: cannot read the Dockerfile: {e}",
            dockerfile.display()
        ))
    })?;
    let df = kiln_dockerfile::parse_bytes(&text, &display, Default::default())
        .map_err(|e| Failure::input(e.to_string()))?;
    if has_run(&df) {
        // RUN needs (namespace) root: as an unprivileged user, kiln re-executes itself in a
        // user namespace. Nothing has started a thread yet.
        kiln_sandbox::userns::reexec_into_userns()
            .map_err(|e| Failure::env(format!("cannot enter a user namespace for RUN: {e}")))?;
    }
    check_output_parent(&a.output)?;

    let work = tempfile::Builder::new()
        .prefix("kiln-build-")
        .tempdir()
        .map_err(|e| Failure::env(format!("cannot create a temporary directory: {e}")))?;
    let store = BlobStore::open(work.path().join("store"))
        .map_err(|e| Failure::env(format!("cannot create the blob store: {e}")))?;
    let mut named = BTreeMap::new();
    for bc in &a.build_contexts {
        let (name, value) = bc.split_once('=').ok_or_else(|| {
            Failure::input(format!("--build-context {bc:?}: expected NAME=SOURCE"))
        })?;
        let src = kiln_build::bases::NamedSource::parse(value)
            .map_err(|e| Failure::input(format!("--build-context {name}: {e}")))?;
        named.insert(kiln_build::bases::named_context_key(name), src);
    }
    // The default cache may belong to someone else (another user with the same $HOME): a
    // build then falls back to a cache of its own; an explicit --cache-dir must work.
    let (cache_root, cache_fallback) = match (&a.cache_dir, kiln_registry::Cache::default_root()) {
        (Some(d), _) => (d.clone(), None),
        (None, Some(d)) => (d, Some(work.path().join("cache"))),
        (None, None) => (work.path().join("cache"), None),
    };
    let client = if a.offline {
        None
    } else {
        Some(kiln_registry::Client::new(kiln_registry::ClientOptions {
            insecure_registries: a.insecure_registries.clone(),
            progress: crate::progress::transfers(a.progress),
            ..Default::default()
        }))
    };
    let blobs_dir = work.path().join("blobs");
    std::fs::create_dir_all(&blobs_dir).map_err(|e| Failure::env(e.to_string()))?;
    let resolver = kiln_build::bases::ImageResolver::new(
        client,
        cache_root,
        cache_fallback,
        named,
        a.allow_floating_tags,
        a.offline,
        blobs_dir,
        &printer,
    );
    let sandbox_dir = work.path().join("sandbox");
    std::fs::create_dir_all(&sandbox_dir).map_err(|e| Failure::env(e.to_string()))?;
    let executor = kiln_build::run::SandboxExecutor::new(
        &sandbox_dir,
        match a.network {
            NetworkArg::None => kiln_sandbox::Network::None,
            NetworkArg::Host => kiln_sandbox::Network::Host,
        },
    );
    let opts = BuildOptions {
        context_dir: a.context.clone(),
        dockerfile: dockerfile.clone(),
        dockerfile_display: display,
        epoch,
        build_args,
        target: a.target.clone(),
        platform,
        compression: match a.compression {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Uncompressed => Compression::Uncompressed,
        },
        store: &store,
        work_dir: work.path(),
        resolver: Some(&resolver),
        executor: Some(&executor),
        progress: &printer,
    };
    let out = kiln_build::build(&df, &opts)?;
    let image = export(&out, &store, &a, &annotations, &names)?;
    if let Some(mf) = &a.metadata_file {
        write_metadata(mf, &image, &names)?;
    }
    println!("image digest:       {}", image.manifest_digest);
    println!("source date epoch:  {epoch} ({})", GoTime::from_unix(epoch));
    println!(
        "output:             {} ({})",
        a.output.display(),
        match a.format {
            OutputFormat::Docker => "docker-format tarball",
            OutputFormat::Oci => "OCI-format tarball",
            OutputFormat::OciDir => "OCI layout directory",
        }
    );
    Ok(0)
}

fn has_run(df: &kiln_dockerfile::Dockerfile) -> bool {
    df.stages.iter().any(|s| {
        s.commands
            .iter()
            .any(|c| matches!(c.instruction, kiln_dockerfile::Instruction::Run(_)))
    })
}

fn check_output_parent(out: &Path) -> Result<(), Failure> {
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
    if out.is_dir() {
        return Err(Failure::input(format!("{}: is a directory", out.display())));
    }
    Ok(())
}

pub fn export(
    out: &BuildOutput,
    store: &BlobStore,
    a: &BuildArgs,
    annotations: &BTreeMap<String, String>,
    names: &[ImageName],
) -> Result<Image, Failure> {
    let format = match a.format {
        OutputFormat::Docker => ManifestFormat::Docker,
        OutputFormat::Oci | OutputFormat::OciDir => ManifestFormat::Oci,
    };
    let image = out.image(format, annotations);
    let base = out.base_blobs();
    let sources = Sources(vec![store, &base]);
    match a.format {
        OutputFormat::Docker | OutputFormat::Oci => {
            let kind = if a.format == OutputFormat::Docker {
                TarballKind::Docker
            } else {
                TarballKind::Oci
            };
            write_file_atomically(&a.output, |w| {
                write_tarball(w, &image, &sources, kind, names)?;
                Ok(())
            })?;
        }
        OutputFormat::OciDir => write_layout_dir(&a.output, &image, &sources, names)?,
    }
    Ok(image)
}

/// buildx/buildctl `--metadata-file` content.
pub fn write_metadata(path: &Path, image: &Image, names: &[ImageName]) -> Result<(), Failure> {
    let mut desc = serde_json::Map::new();
    desc.insert("mediaType".into(), image.manifest_media_type.clone().into());
    desc.insert("digest".into(), image.manifest_digest.to_string().into());
    desc.insert("size".into(), (image.manifest.len() as u64).into());
    let mut m = serde_json::Map::new();
    m.insert(
        "containerimage.config.digest".into(),
        image.config_digest.to_string().into(),
    );
    m.insert(
        "containerimage.descriptor".into(),
        serde_json::Value::Object(desc),
    );
    m.insert(
        "containerimage.digest".into(),
        image.manifest_digest.to_string().into(),
    );
    if !names.is_empty() {
        let joined: Vec<&str> = names.iter().map(|n| n.full.as_str()).collect();
        m.insert("image.name".into(), joined.join(",").into());
    }
    let mut text = serde_json::to_vec_pretty(&serde_json::Value::Object(m))
        .map_err(|e| Failure::env(e.to_string()))?;
    text.push(b'\n');
    write_file_atomically(path, |w| {
        use std::io::Write;
        w.write_all(&text)?;
        Ok(())
    })?;
    Ok(())
}
