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

use crate::cmd::args::RegistryArgs;
use crate::fail::{CliResult, Failure};
use crate::progress::{Printer, ProgressArgs};

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

    #[command(flatten)]
    pub epoch: crate::cmd::args::EpochArgs,

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

    #[command(flatten)]
    pub progress: ProgressArgs,

    /// Default network for RUN (RUN --network overrides it)
    #[arg(long, value_enum, default_value = "host")]
    pub network: NetworkArg,

    /// Named context (repeatable): NAME=oci-layout://DIR[@sha256:...], NAME=docker-image://REF,
    /// NAME=oci-archive:PATH or NAME=docker-archive:PATH. `FROM NAME` and `COPY --from=NAME` use it.
    #[arg(long = "build-context", value_name = "NAME=SOURCE")]
    pub build_contexts: Vec<String>,

    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Build from `FROM name:tag` without a digest (prints the digest used)
    #[arg(long = "allow-floating-tags")]
    pub allow_floating_tags: bool,

    /// Print the plan (each step native or BuildKit, and why) and the BuildKit commands; build nothing
    #[arg(long)]
    pub dry: bool,

    /// BuildKit fallback: auto hands the whole build to BuildKit when a step needs it,
    /// never fails naming every such step, always uses BuildKit
    #[arg(long, value_enum, default_value = "auto")]
    pub fallback: FallbackArg,

    /// How to run BuildKit [default: buildctl if $BUILDKIT_HOST is set and buildctl is
    /// installed, else docker buildx, else podman]
    #[arg(long, value_enum)]
    pub driver: Option<DriverArg>,

    /// The pinned BuildKit image the fallback runs (with buildctl: the version the daemon must report)
    #[arg(long = "buildkit-image", value_name = "REF", default_value = kiln_buildkit::PINNED_IMAGE)]
    pub buildkit_image: String,

    /// Why BuildKit is not allowed, when not because of `--fallback never` (crosscheck).
    #[arg(skip)]
    pub native_only: Option<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FallbackArg {
    Auto,
    Never,
    Always,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DriverArg {
    /// buildctl against $BUILDKIT_HOST
    Buildctl,
    /// docker buildx with a builder running the pinned image
    Docker,
    /// podman running the pinned image
    Podman,
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

/// What a build ended with.
pub enum Outcome {
    /// An image was written to `-o` (and `--metadata-file`).
    Built {
        image: Box<Image>,
        epoch: i64,
        /// Who built it when it was not kiln itself.
        by: Option<String>,
    },
    /// Nothing built (`--dry`); exit with this code.
    Exit(i32),
}

pub fn run(a: BuildArgs) -> CliResult {
    let (image, epoch, by) = match build(&a)? {
        Outcome::Built { image, epoch, by } => (image, epoch, by),
        Outcome::Exit(code) => return Ok(code),
    };
    println!("image digest:       {}", image.manifest_digest);
    println!("source date epoch:  {epoch} ({})", GoTime::from_unix(epoch));
    println!(
        "output:             {} ({})",
        a.output.display(),
        a.format.describe()
    );
    if let Some(by) = by {
        println!("built by:           {by}");
    }
    Ok(0)
}

/// Builds as `a` says: natively, or through BuildKit when the plan says so.
pub fn build(a: &BuildArgs) -> Result<Outcome, Failure> {
    let printer = Printer::new(a.progress.mode());
    let epoch = a.epoch.resolve()?;
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
    let text = kiln_dockerfile::read_file(&dockerfile).map_err(|e| {
        Failure::input(format!(
            "{}: cannot read the Dockerfile: {e}",
            dockerfile.display()
        ))
    })?;
    let ctx = Routing {
        text: &text,
        display: &display,
        dockerfile: &dockerfile,
        epoch,
        build_args: &build_args,
        annotations: &annotations,
        names: &names,
        quiet: printer.quiet(),
    };
    let df = match route(a, &ctx)? {
        Route::Native(df) => df,
        Route::Done(outcome) => return Ok(outcome),
    };
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
    let (cache_root, cache_fallback) =
        match (&a.registry.cache_dir, kiln_registry::Cache::default_root()) {
            (Some(d), _) => (d.clone(), None),
            (None, Some(d)) => (d, Some(work.path().join("cache"))),
            (None, None) => (work.path().join("cache"), None),
        };
    let client = if a.registry.offline {
        None
    } else {
        Some(kiln_registry::Client::new(kiln_registry::ClientOptions {
            insecure_registries: a.registry.insecure_registries.clone(),
            progress: crate::progress::transfers(a.progress.mode()),
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
        a.registry.offline,
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
        dockerfile_display: display.clone(),
        epoch,
        build_args: build_args.clone(),
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
    let out = match kiln_build::build(&df, &opts) {
        Ok(out) => out,
        Err(e) => return retry_with_buildkit(a, &ctx, e),
    };
    let image = export(&out, &store, a, &annotations, &names)?;
    if let Some(mf) = &a.metadata_file {
        write_metadata(mf, &image, &names)?;
    }
    Ok(Outcome::Built {
        image: Box::new(image),
        epoch,
        by: None,
    })
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
    write_output(a.format, &a.output, &image, &sources, names)?;
    Ok(image)
}

impl OutputFormat {
    /// What the summary calls it.
    pub fn describe(self) -> &'static str {
        match self {
            OutputFormat::Docker => "docker-format tarball",
            OutputFormat::Oci => "OCI-format tarball",
            OutputFormat::OciDir => "OCI layout directory",
        }
    }
}

/// Writes `image` to `output` in `format`, atomically (nothing is left on failure).
pub fn write_output(
    format: OutputFormat,
    output: &Path,
    image: &Image,
    source: &dyn kiln_image::BlobSource,
    names: &[ImageName],
) -> Result<(), Failure> {
    let kind = match format {
        OutputFormat::Docker => TarballKind::Docker,
        OutputFormat::Oci => TarballKind::Oci,
        OutputFormat::OciDir => {
            write_layout_dir(output, image, source, names)?;
            return Ok(());
        }
    };
    write_file_atomically(output, |w| {
        write_tarball(w, image, source, kind, names)?;
        Ok(())
    })?;
    Ok(())
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

// --- The plan and the BuildKit fallback (kiln-buildkit) ---

/// What [`route`] needs from the build besides its arguments.
struct Routing<'a> {
    text: &'a [u8],
    display: &'a str,
    dockerfile: &'a Path,
    epoch: i64,
    build_args: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    names: &'a [ImageName],
    quiet: bool,
}

enum Route {
    Native(kiln_dockerfile::Dockerfile),
    Done(Outcome),
}

fn bk(e: kiln_buildkit::Error) -> Failure {
    Failure {
        code: e.exit_code(),
        message: e.to_string(),
    }
}

/// Plans the build and either returns the Dockerfile for the native engine, or prints the
/// plan (`--dry`), or has the pinned BuildKit build it, as `--fallback` says.
fn route(a: &BuildArgs, r: &Routing<'_>) -> Result<Route, Failure> {
    let planned =
        kiln_buildkit::plan(r.text, r.display, r.build_args, a.target.as_deref()).map_err(bk)?;
    let plan = &planned.plan;
    let reasons = plan.reasons();
    let buildkit = match a.fallback {
        FallbackArg::Always => true,
        FallbackArg::Auto => plan.needs_buildkit(),
        FallbackArg::Never if plan.needs_buildkit() => {
            if a.dry {
                print!("{}", plan.render());
            }
            return Err(Failure::input(format!(
                "{} BuildKit, and {}:\n  {}",
                steps_need(plan.buildkit_steps()),
                a.native_only.unwrap_or("--fallback never forbids it"),
                reasons.join("\n  ")
            )));
        }
        FallbackArg::Never => false,
    };
    if !buildkit {
        if a.dry {
            print!("{}", plan.render());
            println!("kiln builds this image itself: every step is native");
            return Ok(Route::Done(Outcome::Exit(0)));
        }
        return planned
            .dockerfile
            .map(Route::Native)
            .ok_or_else(|| Failure::input("kiln cannot read this Dockerfile itself"));
    }
    check_pinned_bases(a, plan)?;
    let req = fallback_request(a, r)?;
    let driver = kiln_buildkit::driver::select(
        a.driver.map(driver_kind),
        &kiln_buildkit::HostEnv::current(),
        &kiln_buildkit::driver::succeeds,
    );
    let why = if a.fallback == FallbackArg::Always {
        "--fallback always".to_string()
    } else {
        format!("{} it", steps_need(plan.buildkit_steps()))
    };
    if a.dry {
        print!("{}", plan.render());
        println!("BuildKit builds this image ({why}): {}", a.buildkit_image);
        let driver = driver.map_err(bk)?;
        println!("driver: {} ({})", driver.kind.name(), driver.because);
        for action in kiln_buildkit::driver::actions(&driver, &req).map_err(bk)? {
            println!("  {action}");
        }
        println!(
            "then kiln checks the image in {} and moves it to {}",
            kiln_buildkit::driver::staging_dir(&req.output).display(),
            req.output.display()
        );
        return Ok(Route::Done(Outcome::Exit(0)));
    }
    let driver = driver.map_err(bk)?;
    via_buildkit(a, r, driver, req, &why, &reasons).map(Route::Done)
}

/// Has the pinned BuildKit build the image through `driver`, saying why first.
fn via_buildkit(
    a: &BuildArgs,
    r: &Routing<'_>,
    driver: kiln_buildkit::driver::Driver,
    req: kiln_buildkit::Request,
    why: &str,
    reasons: &[String],
) -> Result<Outcome, Failure> {
    check_output_parent(&a.output)?;
    eprintln!(
        "kiln: BuildKit builds this image ({why}), with {} through {} ({}):",
        a.buildkit_image,
        driver.kind.name(),
        driver.because
    );
    for reason in reasons {
        eprintln!("  {reason}");
    }
    if a.registry.offline || !a.registry.insecure_registries.is_empty() {
        eprintln!(
            "warning: --offline and --insecure-registry do not apply to the BuildKit fallback"
        );
    }
    let loaded = kiln_buildkit::build(&driver, &req, r.quiet).map_err(bk)?;
    let image = Image {
        platform: loaded.platform(),
        manifest: loaded.manifest_bytes,
        manifest_digest: loaded.manifest_digest,
        manifest_media_type: loaded.manifest_media_type,
        config: loaded.config_bytes,
        config_digest: loaded.manifest.config.digest,
        layers: loaded.manifest.layers,
        created: None,
    };
    if let Some(mf) = &a.metadata_file {
        write_metadata(mf, &image, r.names)?;
    }
    Ok(Outcome::Built {
        image: Box::new(image),
        epoch: r.epoch,
        by: Some(format!(
            "BuildKit ({}) through {}",
            a.buildkit_image,
            driver.kind.name()
        )),
    })
}

/// The native engine met a step it cannot do that the plan did not foresee (it depends on
/// what the inputs hold, e.g. a base layer only GNU tar can describe): with `--fallback
/// auto` BuildKit builds the image instead, otherwise the error stands.
fn retry_with_buildkit(
    a: &BuildArgs,
    r: &Routing<'_>,
    e: kiln_build::BuildError,
) -> Result<Outcome, Failure> {
    if a.fallback != FallbackArg::Auto || e.kind != kiln_build::ErrorKind::Unsupported {
        return Err(e.into());
    }
    let reason = e.to_string();
    let req = fallback_request(a, r)?;
    let driver = kiln_buildkit::driver::select(
        a.driver.map(driver_kind),
        &kiln_buildkit::HostEnv::current(),
        &kiln_buildkit::driver::succeeds,
    )
    .map_err(|d| {
        Failure::input(format!(
            "{reason}\n(--fallback auto would hand the build to BuildKit, but: {})",
            bk(d).message
        ))
    })?;
    via_buildkit(
        a,
        r,
        driver,
        req,
        "kiln met a step it cannot do natively",
        &[reason],
    )
}

fn driver_kind(d: DriverArg) -> kiln_buildkit::DriverKind {
    match d {
        DriverArg::Buildctl => kiln_buildkit::DriverKind::Buildctl,
        DriverArg::Docker => kiln_buildkit::DriverKind::Docker,
        DriverArg::Podman => kiln_buildkit::DriverKind::Podman,
    }
}

/// `1 step needs` / `3 steps need`.
fn steps_need(n: usize) -> String {
    if n == 1 {
        "1 step needs".into()
    } else {
        format!("{n} steps need")
    }
}

/// kiln's rule for base images holds for BuildKit builds too: pinned by digest unless
/// `--allow-floating-tags` (BuildKit would resolve a tag at build time).
fn check_pinned_bases(a: &BuildArgs, plan: &kiln_buildkit::Plan) -> Result<(), Failure> {
    if a.allow_floating_tags {
        return Ok(());
    }
    let named: Vec<String> = a
        .build_contexts
        .iter()
        .filter_map(|c| {
            c.split_once('=')
                .map(|(n, _)| kiln_build::bases::named_context_key(n))
        })
        .collect();
    let floating: Vec<&String> = plan
        .images
        .iter()
        .filter(|i| !i.contains('@') && !named.contains(&kiln_build::bases::named_context_key(i)))
        .collect();
    if floating.is_empty() {
        return Ok(());
    }
    Err(Failure::input(format!(
        "{}: not pinned by digest; BuildKit would resolve the tag when it builds. Pin it \
         (name@sha256:...) or pass --allow-floating-tags",
        floating
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The build as the BuildKit drivers take it.
fn fallback_request(a: &BuildArgs, r: &Routing<'_>) -> Result<kiln_buildkit::Request, Failure> {
    let abs = |p: &Path| {
        std::path::absolute(p).map_err(|e| Failure::input(format!("{}: {e}", p.display())))
    };
    let mut contexts = BTreeMap::new();
    for bc in &a.build_contexts {
        let (name, value) = bc.split_once('=').ok_or_else(|| {
            Failure::input(format!("--build-context {bc:?}: expected NAME=SOURCE"))
        })?;
        let mut c = kiln_buildkit::NamedContext::parse(name, value).map_err(bk)?;
        if let kiln_buildkit::NamedContext::Layout { dir, .. } = &mut c {
            *dir = abs(dir)?;
        }
        contexts.insert(name.to_string(), c);
    }
    Ok(kiln_buildkit::Request {
        context: abs(&a.context)?,
        dockerfile: abs(r.dockerfile)?,
        epoch: r.epoch,
        build_args: r.build_args.clone(),
        target: a.target.clone(),
        platform: a.platform.clone(),
        names: r.names.iter().map(|n| n.full.clone()).collect(),
        annotations: r.annotations.clone(),
        contexts,
        network_none: a.network == NetworkArg::None,
        format: match a.format {
            OutputFormat::Docker => kiln_buildkit::OutputFormat::Docker,
            OutputFormat::Oci => kiln_buildkit::OutputFormat::Oci,
            OutputFormat::OciDir => kiln_buildkit::OutputFormat::OciDir,
        },
        compression: match a.compression {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Uncompressed => Compression::Uncompressed,
        },
        output: abs(&a.output)?,
        buildkit_image: a.buildkit_image.clone(),
    })
}
