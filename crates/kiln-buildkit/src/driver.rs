//! The drivers that run the pinned BuildKit, and the exact commands each one runs.
//!
//! - `buildctl` against `$BUILDKIT_HOST`: a remote or clustered buildkitd (how users scale
//!   out). kiln cannot pin a daemon it does not start, so it first asks the daemon for its
//!   version (`buildctl debug info`) and refuses any other than the pinned image's.
//! - `docker buildx`: a docker-container builder running the pinned image, named after a
//!   hash of the image reference (as freedomofpress/repro-build does), created when missing.
//! - `podman`: the pinned image run once with `buildctl-daemonless.sh`, the context,
//!   Dockerfile directory and output directory bind-mounted (as repro-build does).
//!
//! Every driver gets the same build: `SOURCE_DATE_EPOCH` as a build argument,
//! `rewrite-timestamp=true`, no provenance, kiln's output format and compression, build
//! arguments, target and platform. BuildKit writes into a staging directory beside kiln's
//! `-o` path; [`crate::land`] checks the result and moves it into place.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kiln_digest::Digest;
use kiln_layer::Compression;
use kiln_registry::Reference;

use crate::command::{csv_field, Cmd};
use crate::Error;

/// The BuildKit kiln hands builds to: v0.19.0 (the release repro-build pins), by digest.
pub const PINNED_IMAGE: &str =
    "moby/buildkit:v0.19.0@sha256:14aa1b4dd92ea0a4cd03a54d0c6079046ea98cd0c0ae6176bdd7036ba370cbbe";

/// How BuildKit is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DriverKind {
    /// `buildctl` against the buildkitd at `$BUILDKIT_HOST`.
    Buildctl,
    /// `docker buildx` with a docker-container builder running the pinned image.
    Docker,
    /// `podman run` of the pinned image.
    Podman,
}

impl DriverKind {
    /// Detection order.
    pub const ALL: [DriverKind; 3] = [DriverKind::Buildctl, DriverKind::Docker, DriverKind::Podman];

    /// The executable it runs.
    pub fn program(self) -> &'static str {
        match self {
            DriverKind::Buildctl => "buildctl",
            DriverKind::Docker => "docker",
            DriverKind::Podman => "podman",
        }
    }

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::Buildctl => "buildctl",
            DriverKind::Docker => "docker buildx",
            DriverKind::Podman => "podman",
        }
    }
}

/// What driver detection looks at: `$PATH` and `$BUILDKIT_HOST`.
#[derive(Clone, Debug, Default)]
pub struct HostEnv {
    pub path: Option<OsString>,
    pub buildkit_host: Option<String>,
}

impl HostEnv {
    /// This process's environment.
    pub fn current() -> HostEnv {
        HostEnv {
            path: std::env::var_os("PATH"),
            buildkit_host: std::env::var("BUILDKIT_HOST")
                .ok()
                .filter(|v| !v.is_empty()),
        }
    }

    /// The executable `program` on `$PATH`, if any.
    pub fn find(&self, program: &str) -> Option<PathBuf> {
        let path = self.path.as_ref()?;
        std::env::split_paths(path)
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| d.join(program))
            .find(|p| is_executable(p))
    }
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// The chosen driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Driver {
    pub kind: DriverKind,
    /// buildctl's `--addr` (from `$BUILDKIT_HOST`); `None` uses buildctl's default socket.
    pub addr: Option<String>,
    /// Why this one, for the user.
    pub because: String,
}

/// The command that tells whether docker has buildx (a CLI plugin, often missing).
pub fn buildx_probe() -> Cmd {
    Cmd::new("docker").args(["buildx", "version"])
}

/// Whether `c` runs and exits 0, its output discarded: [`select`]'s probe.
pub fn succeeds(c: &Cmd) -> bool {
    command(c)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Picks the driver: `forced` if given, else the first available of buildctl (with
/// `$BUILDKIT_HOST` set), docker (when `probe` says [`buildx_probe`] succeeds) and podman.
pub fn select(
    forced: Option<DriverKind>,
    env: &HostEnv,
    probe: &dyn Fn(&Cmd) -> bool,
) -> Result<Driver, Error> {
    let addr = env.buildkit_host.clone();
    if let Some(kind) = forced {
        return Ok(Driver {
            kind,
            addr: if kind == DriverKind::Buildctl {
                addr
            } else {
                None
            },
            because: "chosen with --driver".into(),
        });
    }
    if addr.is_some() && env.find("buildctl").is_some() {
        return Ok(Driver {
            kind: DriverKind::Buildctl,
            addr,
            because: "BUILDKIT_HOST is set and buildctl is on PATH".into(),
        });
    }
    let mut note = String::new();
    if env.find("docker").is_some() {
        if probe(&buildx_probe()) {
            return Ok(Driver {
                kind: DriverKind::Docker,
                addr: None,
                because: "docker with buildx is on PATH".into(),
            });
        }
        note = "; docker is on PATH but `docker buildx version` fails".into();
    }
    if env.find("podman").is_some() {
        return Ok(Driver {
            kind: DriverKind::Podman,
            addr: None,
            because: format!("podman is on PATH{note}"),
        });
    }
    Err(Error::env(format!(
        "no BuildKit driver found{note}: set BUILDKIT_HOST and install buildctl (a remote \
         buildkitd), or install docker with buildx, or podman; or choose one with --driver"
    )))
}

/// The image format BuildKit is asked for (kiln's `--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// `type=docker`: a docker-format tarball.
    Docker,
    /// `type=oci`: an OCI-format tarball.
    Oci,
    /// `type=oci,tar=false`: an OCI layout directory.
    OciDir,
}

/// A `--build-context` BuildKit can be given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamedContext {
    /// `oci-layout://DIR[@sha256:...]`.
    Layout {
        dir: PathBuf,
        digest: Option<Digest>,
    },
    /// `docker-image://REF`.
    Image(String),
}

impl NamedContext {
    /// Parses the value of `--build-context NAME=VALUE` for the fallback. Archives are
    /// refused: BuildKit reads layouts, not tarballs.
    pub fn parse(name: &str, value: &str) -> Result<NamedContext, Error> {
        if let Some(rest) = value.strip_prefix("oci-layout://") {
            let (dir, digest) = match rest.rsplit_once('@') {
                Some((d, dg)) => {
                    let digest = dg.parse::<Digest>().map_err(|e| {
                        Error::input(format!("--build-context {name}={value}: {e}"))
                    })?;
                    (d, Some(digest))
                }
                None => (rest, None),
            };
            return Ok(NamedContext::Layout {
                dir: PathBuf::from(dir),
                digest,
            });
        }
        if let Some(r) = value.strip_prefix("docker-image://") {
            return Ok(NamedContext::Image(r.to_string()));
        }
        Err(Error::input(format!(
            "--build-context {name}={value}: the BuildKit fallback takes oci-layout://DIR[@sha256:...] \
             or docker-image://REF (unpack an archive into a layout first: \
             skopeo copy oci-archive:FILE oci:DIR)"
        )))
    }
}

/// One build, as kiln's command line describes it. Paths are absolute.
#[derive(Clone, Debug)]
pub struct Request {
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    pub epoch: i64,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    /// Image names to record (`name=` of the exporter), full form.
    pub names: Vec<String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    pub contexts: BTreeMap<String, NamedContext>,
    /// `--network none`. kiln's default, host, is not passed: BuildKit's default network
    /// (`auto`: host unless buildkitd has CNI configured) is used.
    pub network_none: bool,
    pub format: OutputFormat,
    pub compression: Compression,
    /// kiln's `-o`.
    pub output: PathBuf,
    /// The BuildKit image (`--buildkit-image`).
    pub buildkit_image: String,
}

/// Where BuildKit writes before kiln checks the result: `.<name>.kiln-buildkit/<name>`
/// beside the output. A fixed name keeps `--dry`'s commands exact.
pub fn staging_dir(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    output
        .parent()
        .unwrap_or(Path::new("/"))
        .join(format!(".{name}.kiln-buildkit"))
}

/// The path BuildKit's output gets inside [`staging_dir`].
pub fn staged_output(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "image".into());
    staging_dir(output).join(name)
}

fn utf8<'a>(p: &'a Path, what: &str) -> Result<&'a str, Error> {
    p.to_str().ok_or_else(|| {
        Error::input(format!(
            "{what} {}: BuildKit drivers need UTF-8 paths",
            p.display()
        ))
    })
}

/// The BuildKit version the image reference names (`v0.19.0` for `moby/buildkit:v0.19.0@...`
/// and `...:v0.19.0-rootless`), if it names one.
pub fn image_version(image: &str) -> Option<String> {
    let r = Reference::parse(image).ok()?;
    let tag = r.tag()?;
    let v = tag.strip_suffix("-rootless").unwrap_or(tag);
    v.starts_with('v').then(|| v.to_string())
}

/// The docker buildx builder kiln uses for `image`: `kiln-<sha256 of the reference>`.
pub fn builder_name(image: &str) -> String {
    format!("kiln-{}", Digest::of(image.as_bytes()).hex())
}

/// One thing a driver does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run; it must succeed.
    Run(Cmd),
    /// Ask the daemon its version; it must be `want`.
    CheckVersion { cmd: Cmd, want: String },
    /// Create a builder unless `probe` finds it.
    EnsureBuilder { probe: Cmd, create: Cmd },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Run(c) => write!(f, "{c}"),
            Action::CheckVersion { cmd, want } => {
                write!(f, "{cmd}    # must report BuildKit {want}")
            }
            Action::EnsureBuilder { probe, create } => {
                write!(f, "{probe} >/dev/null 2>&1 || {create}")
            }
        }
    }
}

impl Action {
    /// The commands it may run, in order.
    pub fn commands(&self) -> Vec<&Cmd> {
        match self {
            Action::Run(c) | Action::CheckVersion { cmd: c, .. } => vec![c],
            Action::EnsureBuilder { probe, create } => vec![probe, create],
        }
    }
}

/// Paths as the BuildKit process sees them.
struct Paths {
    context: String,
    dockerfile_dir: String,
    dest: String,
    /// Per layout context: (store id, directory as seen by buildctl).
    layouts: BTreeMap<String, (String, String)>,
}

/// Checks what the drivers cannot express, before anything runs.
pub fn check(req: &Request) -> Result<(), Error> {
    if let Some(v) = req.build_args.get("SOURCE_DATE_EPOCH") {
        if v.trim() != req.epoch.to_string() {
            return Err(Error::input(format!(
                "--build-arg SOURCE_DATE_EPOCH={v} disagrees with the SOURCE_DATE_EPOCH {} kiln \
                 builds with; BuildKit takes the epoch from that build argument, so give one value",
                req.epoch
            )));
        }
    }
    for (what, p) in [
        ("the build context", &req.context),
        ("the Dockerfile", &req.dockerfile),
        ("the output", &req.output),
    ] {
        utf8(p, what)?;
        if !p.is_absolute() {
            return Err(Error::input(format!(
                "{what} {}: must be an absolute path for BuildKit",
                p.display()
            )));
        }
    }
    if req.output.file_name().is_none() {
        return Err(Error::input(format!(
            "-o {}: names no file",
            req.output.display()
        )));
    }
    Ok(())
}

/// The actions `driver` takes for `req`.
pub fn actions(driver: &Driver, req: &Request) -> Result<Vec<Action>, Error> {
    check(req)?;
    let dockerfile_dir = req.dockerfile.parent().unwrap_or(Path::new("/"));
    let staged = staged_output(&req.output);
    let mut layouts = BTreeMap::new();
    let mut i = 0;
    for (name, c) in &req.contexts {
        if let NamedContext::Layout { dir, .. } = c {
            utf8(dir, &format!("--build-context {name}"))?;
            layouts.insert(name.clone(), (format!("ctx{i}"), dir.display().to_string()));
            i += 1;
        }
    }
    match driver.kind {
        DriverKind::Buildctl => {
            let paths = Paths {
                context: utf8(&req.context, "the build context")?.to_string(),
                dockerfile_dir: utf8(dockerfile_dir, "the Dockerfile directory")?.to_string(),
                dest: utf8(&staged, "the output")?.to_string(),
                layouts,
            };
            let mut base = Cmd::new("buildctl");
            if let Some(a) = &driver.addr {
                base = base.arg("--addr").arg(a.clone());
            }
            let mut out = Vec::new();
            match image_version(&req.buildkit_image) {
                Some(want) => out.push(Action::CheckVersion {
                    cmd: base.clone().args(["debug", "info"]),
                    want,
                }),
                None => {
                    return Err(Error::input(format!(
                        "--buildkit-image {}: names no BuildKit version (a tag like v0.19.0), so \
                         kiln cannot check the buildkitd that buildctl reaches",
                        req.buildkit_image
                    )))
                }
            }
            out.push(Action::Run(buildctl_build(base, &paths, req)));
            Ok(out)
        }
        DriverKind::Docker => {
            let name = builder_name(&req.buildkit_image);
            let probe = Cmd::new("docker").args(["buildx", "inspect", &name]);
            let create = Cmd::new("docker").args([
                "buildx",
                "create",
                "--name",
                &name,
                "--driver",
                "docker-container",
                "--driver-opt",
                &format!("image={}", req.buildkit_image),
            ]);
            let mut b = Cmd::new("docker")
                .args(["buildx", "--builder", &name, "build", "--progress", "plain"])
                .arg("--build-arg")
                .arg(format!("SOURCE_DATE_EPOCH={}", req.epoch));
            for (k, v) in &req.build_args {
                if k != "SOURCE_DATE_EPOCH" {
                    b = b.arg("--build-arg").arg(format!("{k}={v}"));
                }
            }
            if let Some(t) = &req.target {
                b = b.arg("--target").arg(t.clone());
            }
            if let Some(p) = &req.platform {
                b = b.arg("--platform").arg(p.clone());
            }
            if req.network_none {
                b = b.args(["--network", "none"]);
            }
            for (name, c) in &req.contexts {
                let v = match c {
                    NamedContext::Layout { dir, digest } => {
                        let mut v = format!("oci-layout://{}", dir.display());
                        if let Some(d) = digest {
                            v.push_str(&format!("@{d}"));
                        }
                        v
                    }
                    NamedContext::Image(r) => format!("docker-image://{r}"),
                };
                b = b.arg("--build-context").arg(format!("{name}={v}"));
            }
            let dest = utf8(&staged, "the output")?;
            b = b
                .args(["--provenance", "false", "--output"])
                .arg(output_option(req, dest))
                .arg("-f")
                .arg(utf8(&req.dockerfile, "the Dockerfile")?)
                .arg(utf8(&req.context, "the build context")?);
            Ok(vec![
                Action::EnsureBuilder { probe, create },
                Action::Run(b),
            ])
        }
        DriverKind::Podman => {
            let image = podman_image(&req.buildkit_image)?;
            let file = staged
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut run = Cmd::new("podman").args(["run", "--rm", "--privileged"]);
            let mut volume = |host: &Path, inside: &str, ro: bool| -> Result<(), Error> {
                let h = utf8(host, "a mounted directory")?;
                if h.contains(':') {
                    return Err(Error::input(format!(
                        "{h}: podman cannot bind-mount a path that contains ':'"
                    )));
                }
                let spec = format!("{h}:{inside}{}", if ro { ":ro" } else { "" });
                run.args.extend(["-v".to_string(), spec]);
                Ok(())
            };
            volume(&req.context, "/tmp/work", true)?;
            volume(dockerfile_dir, "/tmp/dockerfile", true)?;
            volume(&staging_dir(&req.output), "/tmp/image", false)?;
            let mut inside_layouts = BTreeMap::new();
            for (name, (id, dir)) in &layouts {
                let inside = format!("/tmp/contexts/{id}");
                volume(Path::new(dir), &inside, true)?;
                inside_layouts.insert(name.clone(), (id.clone(), inside));
            }
            let paths = Paths {
                context: "/tmp/work".into(),
                dockerfile_dir: "/tmp/dockerfile".into(),
                dest: format!("/tmp/image/{file}"),
                layouts: inside_layouts,
            };
            let base = run.args(["--entrypoint", "buildctl-daemonless.sh", &image]);
            Ok(vec![Action::Run(buildctl_build(base, &paths, req))])
        }
    }
}

/// `buildctl build ...` after `base` (buildctl itself, or podman running the image).
fn buildctl_build(base: Cmd, p: &Paths, req: &Request) -> Cmd {
    let mut c = base.args([
        "build",
        "--progress=plain",
        "--frontend",
        "dockerfile.v0",
        "--local",
        &format!("context={}", p.context),
        "--local",
        &format!("dockerfile={}", p.dockerfile_dir),
    ]);
    let file = req
        .dockerfile
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if file != "Dockerfile" {
        c = c.arg("--opt").arg(format!("filename={file}"));
    }
    c = c
        .arg("--opt")
        .arg(format!("build-arg:SOURCE_DATE_EPOCH={}", req.epoch));
    for (k, v) in &req.build_args {
        if k != "SOURCE_DATE_EPOCH" {
            c = c.arg("--opt").arg(format!("build-arg:{k}={v}"));
        }
    }
    if let Some(t) = &req.target {
        c = c.arg("--opt").arg(format!("target={t}"));
    }
    if let Some(pl) = &req.platform {
        c = c.arg("--opt").arg(format!("platform={pl}"));
    }
    if req.network_none {
        c = c.arg("--opt").arg("force-network-mode=none");
    }
    c = c.arg("--output").arg(output_option(req, &p.dest));
    for (name, ctx) in &req.contexts {
        match ctx {
            NamedContext::Layout { digest, .. } => {
                let Some((id, dir)) = p.layouts.get(name) else {
                    continue;
                };
                let mut v = format!("context:{name}=oci-layout://{id}");
                if let Some(d) = digest {
                    v.push_str(&format!("@{d}"));
                }
                c = c
                    .arg("--oci-layout")
                    .arg(format!("{id}={dir}"))
                    .arg("--opt")
                    .arg(v);
            }
            NamedContext::Image(r) => {
                c = c
                    .arg("--opt")
                    .arg(format!("context:{name}=docker-image://{r}"));
            }
        }
    }
    c
}

/// The exporter's `--output` value.
fn output_option(req: &Request, dest: &str) -> String {
    let mut fields = vec![
        match req.format {
            OutputFormat::Docker => "type=docker".to_string(),
            OutputFormat::Oci | OutputFormat::OciDir => "type=oci".to_string(),
        },
        format!("dest={dest}"),
    ];
    if req.format == OutputFormat::OciDir {
        fields.push("tar=false".into());
    }
    fields.push("rewrite-timestamp=true".into());
    if req.compression == Compression::Uncompressed {
        fields.push("compression=uncompressed".into());
    }
    if !req.names.is_empty() {
        fields.push(format!("name={}", req.names.join(",")));
    }
    for (k, v) in &req.annotations {
        fields.push(format!("annotation.{k}={v}"));
    }
    let fields: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    fields.join(",")
}

/// The image fully qualified: podman does not assume docker.io for short names.
fn podman_image(image: &str) -> Result<String, Error> {
    let r = Reference::parse(image)
        .map_err(|e| Error::input(format!("--buildkit-image {image}: {e}")))?;
    Ok(r.to_string())
}

/// Runs the actions. Child output goes to stderr, or, when `quiet`, is kept and shown
/// only if a command fails.
pub fn execute(actions: &[Action], quiet: bool) -> Result<(), Error> {
    for a in actions {
        match a {
            Action::Run(c) => run(c, quiet)?,
            Action::CheckVersion { cmd, want } => {
                let out = capture(cmd)?;
                let got = reported_version(&out).ok_or_else(|| {
                    Error::env(format!(
                        "`{cmd}` did not report a BuildKit version; its output was: {}",
                        out.trim()
                    ))
                })?;
                if got != *want {
                    return Err(Error::env(format!(
                        "the buildkitd that buildctl reaches is BuildKit {got}, not {want}: its images \
                         may differ from the pinned BuildKit's. Point BUILDKIT_HOST at a {want} \
                         buildkitd, or use --driver docker or podman, which run the pinned image"
                    )));
                }
            }
            Action::EnsureBuilder { probe, create } => {
                if !succeeds(probe) {
                    run(create, quiet)?;
                }
            }
        }
    }
    Ok(())
}

/// `BuildKit: github.com/moby/buildkit v0.19.0 3637d1b...` -> `v0.19.0`.
pub fn reported_version(debug_info: &str) -> Option<String> {
    debug_info.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next()? == "BuildKit:").then_some(())?;
        let _package = w.next()?;
        w.next().map(str::to_string)
    })
}

fn command(c: &Cmd) -> Command {
    let mut cmd = Command::new(&c.program);
    cmd.args(&c.args).stdin(Stdio::null());
    cmd
}

fn spawn_error(c: &Cmd, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::env(format!("cannot run {}: not found on PATH", c.program))
    } else {
        Error::env(format!("cannot run {}: {e}", c.program))
    }
}

fn run(c: &Cmd, quiet: bool) -> Result<(), Error> {
    let mut cmd = command(c);
    if quiet {
        let out = cmd.output().map_err(|e| spawn_error(c, e))?;
        if !out.status.success() {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            return Err(failed(c, &out.status, &text));
        }
        return Ok(());
    }
    // Keep kiln's stdout for its summary: the child's stdout goes to stderr too.
    let status = cmd
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| spawn_error(c, e))?;
    if !status.success() {
        return Err(failed(c, &status, ""));
    }
    Ok(())
}

fn capture(c: &Cmd) -> Result<String, Error> {
    let mut child = command(c)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(c, e))?;
    let mut stdout = String::new();
    if let Some(mut o) = child.stdout.take() {
        let mut buf = Vec::new();
        let _ = o.by_ref().take(1 << 20).read_to_end(&mut buf);
        stdout = String::from_utf8_lossy(&buf).into_owned();
    }
    let mut stderr = Vec::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.by_ref().take(1 << 20).read_to_end(&mut stderr);
    }
    let status = child.wait().map_err(|e| spawn_error(c, e))?;
    if !status.success() {
        return Err(failed(c, &status, &String::from_utf8_lossy(&stderr)));
    }
    Ok(stdout)
}

fn failed(c: &Cmd, status: &std::process::ExitStatus, output: &str) -> Error {
    let mut msg = format!("BuildKit driver command failed ({status}): {c}");
    let lines: Vec<&str> = output.lines().collect();
    let tail = &lines[lines.len().saturating_sub(20)..];
    if !tail.is_empty() {
        msg.push_str("\nits last output:\n");
        msg.push_str(&tail.join("\n"));
    }
    Error::env(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            context: "/src/ctx".into(),
            dockerfile: "/src/ctx/Dockerfile".into(),
            epoch: 1677619260,
            build_args: BTreeMap::new(),
            target: None,
            platform: None,
            names: Vec::new(),
            annotations: BTreeMap::new(),
            contexts: BTreeMap::new(),
            network_none: false,
            format: OutputFormat::Docker,
            compression: Compression::Gzip,
            output: "/out/image.tar".into(),
            buildkit_image: PINNED_IMAGE.into(),
        }
    }

    fn driver(kind: DriverKind, addr: Option<&str>) -> Driver {
        Driver {
            kind,
            addr: addr.map(str::to_string),
            because: String::new(),
        }
    }

    fn lines(a: &[Action]) -> Vec<String> {
        a.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn buildctl_matches_the_fixture_command_lines() {
        // ../shared/fixtures/buildkit-v0.19.0/*/BUILD.txt, minus --no-cache and --metadata-file
        // (kiln writes its own metadata).
        let mut r = request();
        r.compression = Compression::Uncompressed;
        let a = actions(&driver(DriverKind::Buildctl, Some("tcp://bk:1234")), &r).unwrap();
        assert_eq!(
            lines(&a),
            [
                "buildctl --addr tcp://bk:1234 debug info    # must report BuildKit v0.19.0",
                "buildctl --addr tcp://bk:1234 build --progress=plain --frontend dockerfile.v0 \
                 --local context=/src/ctx --local dockerfile=/src/ctx \
                 --opt build-arg:SOURCE_DATE_EPOCH=1677619260 --output \
                 type=docker,dest=/out/.image.tar.kiln-buildkit/image.tar,rewrite-timestamp=true,compression=uncompressed"
            ]
        );
    }

    #[test]
    fn buildctl_named_layout_like_the_ocilayout_fixture() {
        let mut r = request();
        r.dockerfile = "/src/df/Dockerfile.alt".into();
        let d: Digest = "sha256:3f0408471efe0ab36280f5435d6851b5d1ad275341c84ab21349f03cd4f4e9c6"
            .parse()
            .unwrap();
        r.contexts.insert(
            "busybox".into(),
            NamedContext::Layout {
                dir: "/base/busybox".into(),
                digest: Some(d),
            },
        );
        r.contexts
            .insert("tools".into(), NamedContext::Image("alpine:3".into()));
        r.build_args.insert("A".into(), "1".into());
        r.build_args
            .insert("SOURCE_DATE_EPOCH".into(), "1677619260".into());
        r.target = Some("final".into());
        r.platform = Some("linux/arm64".into());
        r.names = vec![
            "docker.io/library/a:1".into(),
            "docker.io/library/a:2".into(),
        ];
        r.annotations.insert("org.x".into(), "y".into());
        r.format = OutputFormat::OciDir;
        let a = actions(&driver(DriverKind::Buildctl, None), &r).unwrap();
        let Action::Run(c) = &a[1] else {
            panic!("{a:?}")
        };
        assert_eq!(
            c.args,
            [
                "build",
                "--progress=plain",
                "--frontend",
                "dockerfile.v0",
                "--local",
                "context=/src/ctx",
                "--local",
                "dockerfile=/src/df",
                "--opt",
                "filename=Dockerfile.alt",
                "--opt",
                "build-arg:SOURCE_DATE_EPOCH=1677619260",
                "--opt",
                "build-arg:A=1",
                "--opt",
                "target=final",
                "--opt",
                "platform=linux/arm64",
                "--output",
                "type=oci,dest=/out/.image.tar.kiln-buildkit/image.tar,tar=false,rewrite-timestamp=true,\
                 \"name=docker.io/library/a:1,docker.io/library/a:2\",annotation.org.x=y",
                "--oci-layout",
                "ctx0=/base/busybox",
                "--opt",
                "context:busybox=oci-layout://ctx0@sha256:3f0408471efe0ab36280f5435d6851b5d1ad275341c84ab21349f03cd4f4e9c6",
                "--opt",
                "context:tools=docker-image://alpine:3",
            ]
        );
    }

    #[test]
    fn docker_buildx() {
        let mut r = request();
        r.build_args.insert("V".into(), "a b".into());
        r.network_none = true;
        let a = actions(&driver(DriverKind::Docker, None), &r).unwrap();
        let name = builder_name(PINNED_IMAGE);
        assert_eq!(name.len(), 5 + 64);
        assert_eq!(
            lines(&a),
            [
                format!(
                    "docker buildx inspect {name} >/dev/null 2>&1 || docker buildx create --name {name} \
                     --driver docker-container --driver-opt image={PINNED_IMAGE}"
                ),
                format!(
                    "docker buildx --builder {name} build --progress plain --build-arg \
                     SOURCE_DATE_EPOCH=1677619260 --build-arg 'V=a b' --network none --provenance false \
                     --output type=docker,dest=/out/.image.tar.kiln-buildkit/image.tar,rewrite-timestamp=true \
                     -f /src/ctx/Dockerfile /src/ctx"
                )
            ]
        );
    }

    #[test]
    fn podman() {
        let a = actions(&driver(DriverKind::Podman, None), &request()).unwrap();
        assert_eq!(
            lines(&a),
            [format!(
                "podman run --rm --privileged -v /src/ctx:/tmp/work:ro -v /src/ctx:/tmp/dockerfile:ro \
                 -v /out/.image.tar.kiln-buildkit:/tmp/image --entrypoint buildctl-daemonless.sh \
                 docker.io/{PINNED_IMAGE} build --progress=plain --frontend dockerfile.v0 \
                 --local context=/tmp/work --local dockerfile=/tmp/dockerfile \
                 --opt build-arg:SOURCE_DATE_EPOCH=1677619260 --output \
                 type=docker,dest=/tmp/image/image.tar,rewrite-timestamp=true"
            )]
        );
    }

    #[test]
    fn requests_the_drivers_cannot_express() {
        let mut r = request();
        r.build_args.insert("SOURCE_DATE_EPOCH".into(), "5".into());
        let e = actions(&driver(DriverKind::Docker, None), &r).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("SOURCE_DATE_EPOCH=5"), "{e}");
        let mut r = request();
        r.context = "relative".into();
        assert_eq!(
            actions(&driver(DriverKind::Docker, None), &r)
                .unwrap_err()
                .exit_code(),
            2
        );
        let mut r = request();
        r.context = "/a:b".into();
        let e = actions(&driver(DriverKind::Podman, None), &r).unwrap_err();
        assert!(e.to_string().contains("':'"), "{e}");
        let mut r = request();
        r.buildkit_image = "example.com/buildkit@sha256:14aa1b4dd92ea0a4cd03a54d0c6079046ea98cd0c0ae6176bdd7036ba370cbbe".into();
        let e = actions(&driver(DriverKind::Buildctl, None), &r).unwrap_err();
        assert!(e.to_string().contains("names no BuildKit version"), "{e}");
        let e = NamedContext::parse("b", "oci-archive:/x.tar").unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn versions() {
        assert_eq!(image_version(PINNED_IMAGE).as_deref(), Some("v0.19.0"));
        assert_eq!(
            image_version("moby/buildkit:v0.19.0-rootless").as_deref(),
            Some("v0.19.0")
        );
        assert_eq!(image_version("moby/buildkit:latest"), None);
        assert_eq!(
            reported_version(
                "BuildKit: github.com/moby/buildkit v0.19.0 3637d1b15a13fc3cdd0c16fcf3be0845ae68f53d\n"
            )
            .as_deref(),
            Some("v0.19.0")
        );
        assert_eq!(reported_version("nothing here"), None);
    }

    #[test]
    fn detection_order() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let mut env = HostEnv {
            path: Some(dir.path().as_os_str().to_owned()),
            buildkit_host: None,
        };
        let buildx = |c: &Cmd| {
            assert_eq!(c.argv(), ["docker", "buildx", "version"]);
            true
        };
        let no_buildx = |_: &Cmd| false;
        assert_eq!(select(None, &env, &buildx).unwrap_err().exit_code(), 3);
        make("podman");
        assert_eq!(
            select(None, &env, &buildx).unwrap().kind,
            DriverKind::Podman
        );
        make("docker");
        assert_eq!(
            select(None, &env, &buildx).unwrap().kind,
            DriverKind::Docker
        );
        let d = select(None, &env, &no_buildx).unwrap();
        assert_eq!(d.kind, DriverKind::Podman);
        assert!(
            d.because.contains("`docker buildx version` fails"),
            "{}",
            d.because
        );
        make("buildctl");
        assert_eq!(
            select(None, &env, &buildx).unwrap().kind,
            DriverKind::Docker
        );
        env.buildkit_host = Some("tcp://x:1".into());
        let d = select(None, &env, &buildx).unwrap();
        assert_eq!(d.kind, DriverKind::Buildctl);
        assert_eq!(d.addr.as_deref(), Some("tcp://x:1"));
        let d = select(Some(DriverKind::Podman), &env, &buildx).unwrap();
        assert_eq!((d.kind, d.addr), (DriverKind::Podman, None));
    }
}
