//! The stage dispatcher: BuildKit v0.19.0's `dockerfile2llb` semantics for each instruction
//! (config changes, history entries, which steps make layers), executed directly on trees.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kiln_digest::Digest;
use kiln_dockerfile::{
    Dockerfile, EnvList, EnvLookup, Expanded, IgnoreMatcher, Instruction, Lexer, StageGraph,
    StageRef,
};
use kiln_image::gotime::GoTime;
use kiln_image::spec::{Healthcheck, History, ImageConfig, Platform, RunConfig};
use kiln_image::store::BlobStore;
use kiln_layer::tar::TarError;
use kiln_layer::{Compression, LayerInfo, LayerWriter, Timestamp};

use crate::chmod::Chmod;
use crate::context::{self, IgnoreMatcher as CtxIgnore};
use crate::copy::{self, CopyError, CopyOptions, Touched};
use crate::emit;
use crate::error::{BuildError, ErrorKind};
use crate::gofmt;
use crate::layers;
use crate::platform;
use crate::ports;
use crate::signal;
use crate::tree::{Node, Tree};
use crate::unpack;
use crate::users;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";
/// How many bytes of history (`created_by`) one build's instructions may write. BuildKit sets
/// no limit, and one 45-byte `EXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp` writes 2.6 MB of
/// history, so a 44 KB Dockerfile asked for a 2.6 GB config (and 5 GB of memory). Real
/// builds write kilobytes.
pub const HISTORY_BUDGET: usize = 64 << 20;
/// How much stage state one build may copy, in estimated bytes of memory. A stage is
/// copied when it is the base of a stage while another one still needs it; its file system
/// tree is shared, not copied, but its history, environment and labels are, and a few
/// lines can ask for thousands of copies (a chain of 2,000 stages that a last stage copies
/// from took 1 GB). Real builds copy a few stages of a few KB each.
pub const COPY_BUDGET: usize = 2 << 30;

/// Receives what the build is doing (step headers, warnings, command output).
pub trait Progress {
    /// A build step starts (`[stage 2/5] COPY a /b`).
    fn step(&self, header: &str);
    /// Something the user should know but that does not stop the build.
    fn warn(&self, message: &str);
    /// Output of a RUN command.
    fn output(&self, _bytes: &[u8]) {}
}

/// A progress sink that drops everything.
pub struct Quiet;

impl Progress for Quiet {
    fn step(&self, _: &str) {}
    fn warn(&self, _: &str) {}
}

/// A base image ready to build on.
pub struct BaseImage {
    /// Canonical reference for messages (`host/name@sha256:...`).
    pub reference: String,
    pub config: ImageConfig,
    pub layers: Vec<BaseLayer>,
    /// BuildKit treats an image that comes in as a named context (`oci-layout://`)
    /// differently from a resolved `FROM`: it is not "the base image", so its layers are
    /// rewritten and its `created` time is kept.
    pub named_context: bool,
}

/// One layer of a base image with its blob on disk.
#[derive(Clone, Debug)]
pub struct BaseLayer {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
    pub path: PathBuf,
}

/// Provides base images (`FROM image`, `COPY --from=image`, named contexts).
pub trait BaseResolver {
    /// A named build context (`--build-context NAME=...`) called `name`, if any.
    fn named_context(
        &self,
        name: &str,
        platform: &Platform,
    ) -> Result<Option<BaseImage>, BuildError>;
    /// Resolves an image reference (already expanded) for `platform`.
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<BaseImage, BuildError>;
}

/// A RUN to execute.
pub struct RunRequest<'a> {
    /// Index of the stage (executors may cache per stage).
    pub stage: usize,
    /// The stage this one was built `FROM`, if any.
    pub parent_stage: Option<usize>,
    /// The stage's root file system before the command.
    pub tree: &'a Tree,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub network: kiln_dockerfile::NetworkMode,
    pub mounts: Vec<RunMount>,
    /// A `#!` heredoc script to provide at `/dev/pipes/<name>` (mode 0755).
    pub script: Option<(String, Vec<u8>)>,
}

/// A mount of a RUN that kiln provides natively.
pub enum RunMount {
    Tmpfs {
        target: String,
        size: i64,
    },
    /// A tree (context or stage) mounted at `target`.
    Bind {
        tree: Tree,
        source: String,
        target: String,
        read_only: bool,
    },
}

/// What a RUN changed.
pub struct RunResult {
    /// The root file system after the command.
    pub tree: Tree,
    /// The layer changes in layer order.
    pub changes: Vec<emit::Change>,
}

/// Runs RUN commands (the sandbox).
pub trait RunExecutor {
    fn run(&self, req: RunRequest<'_>, progress: &dyn Progress) -> Result<RunResult, BuildError>;
}

/// Everything a build needs.
pub struct BuildOptions<'a> {
    pub context_dir: PathBuf,
    pub dockerfile: PathBuf,
    /// How the Dockerfile is named in messages.
    pub dockerfile_display: String,
    pub epoch: i64,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<Platform>,
    pub compression: Compression,
    /// Where blobs are written while building.
    pub store: &'a BlobStore,
    /// Scratch space (extracted archives, sandbox directories).
    pub work_dir: &'a Path,
    pub resolver: Option<&'a dyn BaseResolver>,
    pub executor: Option<&'a dyn RunExecutor>,
    pub progress: &'a dyn Progress,
}

/// How a layer of the result came about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerOrigin {
    /// Carried unchanged from the base image, with its original media type.
    Base { media_type: String, path: PathBuf },
    /// Written by this build (BuildKit marks these `buildkit/rewritten-timestamp`).
    New(Compression),
}

/// One layer of the result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRecord {
    pub diff_id: Digest,
    pub digest: Digest,
    pub size: u64,
    pub origin: LayerOrigin,
}

/// The outcome of a build: a config and layers, before choosing a manifest format.
#[derive(Clone, Debug)]
pub struct BuildOutput {
    pub config: ImageConfig,
    pub layers: Vec<LayerRecord>,
    pub platform: Platform,
    pub epoch: i64,
}

#[derive(Clone)]
struct StageState {
    index: usize,
    parent: Option<usize>,
    tree: Tree,
    image: ImageConfig,
    layers: Vec<LayerRecord>,
    /// History of the resolved base image (BuildKit's `baseImg`): entries equal to it keep
    /// their timestamps.
    base_history: Option<Vec<History>>,
    env: EnvList,
    /// Key -> position of its first entry in `image.config.env`, built on first use
    /// (BuildKit's `addEnv` scans the list on every ENV: a Dockerfile of 40,000 ENV lines
    /// took 6.6 s). Cleared whenever `image.config.env` changes otherwise.
    env_slots: Option<BTreeMap<String, usize>>,
    build_args: Vec<(String, Option<String>)>,
    dir: String,
    user: String,
    platform: Platform,
    cmd_set: bool,
}

impl StageState {
    /// Roughly how many bytes of memory a copy of this state takes (the tree is shared).
    fn footprint(&self) -> usize {
        // A history entry, an environment entry or a label, with their allocations: about
        // 128 bytes besides their text.
        const ENTRY: usize = 128;
        let strings = |v: &[String]| v.iter().map(|s| s.len() + ENTRY).sum::<usize>();
        let c = &self.image.config;
        self.image
            .history
            .iter()
            .map(|h| h.created_by.len() + ENTRY)
            .sum::<usize>()
            + strings(&c.env)
            + strings(&self.env.to_list())
            + c.labels
                .iter()
                .map(|(k, v)| k.len() + v.len() + ENTRY)
                .sum::<usize>()
    }

    /// `FROM scratch`.
    fn scratch(index: usize, platform: &Platform) -> StageState {
        StageState {
            index,
            parent: None,
            tree: Tree::new(),
            image: empty_image(platform),
            layers: Vec::new(),
            base_history: None,
            env: EnvList::new(),
            env_slots: None,
            build_args: Vec::new(),
            dir: "/".into(),
            user: String::new(),
            platform: platform.clone(),
            cmd_set: false,
        }
    }

    /// BuildKit's `addEnv`: replaces the first entry of `key` in the config's environment,
    /// else appends one.
    fn set_config_env(&mut self, key: &str, value: &str) {
        let env = &mut self.image.config.env;
        let slots = self.env_slots.get_or_insert_with(|| {
            let mut slots = BTreeMap::new();
            for (i, kv) in env.iter().enumerate() {
                let k = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
                slots.entry(k.to_string()).or_insert(i);
            }
            slots
        });
        let entry = format!("{key}={value}");
        match slots.get(key) {
            Some(&i) => env[i] = entry,
            None => {
                slots.insert(key.to_string(), env.len());
                env.push(entry);
            }
        }
    }
}

struct Builder<'a> {
    opts: &'a BuildOptions<'a>,
    df: &'a Dockerfile,
    lex: Lexer,
    meta: EnvList,
    ignore: Option<IgnoreMatcher>,
    context: Option<Tree>,
    stages: Vec<Option<StageState>>,
    epoch: Timestamp,
    created: GoTime,
    target_platform: Platform,
    /// Bytes of [`HISTORY_BUDGET`] spent so far.
    history_bytes: usize,
    /// For each stage: the last stage that uses it (as FROM, `--from` or mount), after
    /// which its state is released; `None` to keep it (the target, unused stages, and every
    /// stage when ONBUILD triggers could refer to stages the graph does not show). A chain
    /// of stages then moves one state along instead of keeping a copy per stage: 2,000
    /// chained stages took 1.1 GB, 8,000 took 18 GB.
    last_use: Vec<Option<usize>>,
    /// Stages whose state was released.
    released: Vec<bool>,
    /// Bytes of stage state copied so far, and the most that may be ([`COPY_BUDGET`]).
    copied_bytes: usize,
    copy_budget: usize,
}

struct IgnoreAdapter<'a>(&'a IgnoreMatcher);

impl CtxIgnore for IgnoreAdapter<'_> {
    fn excluded(&self, path: &str, is_dir: bool) -> bool {
        self.0.is_excluded(path, is_dir)
    }
    fn may_include_inside(&self, dir: &str) -> bool {
        self.0.may_include_inside(dir)
    }
}

/// BuildKit's predefined platform args (`defaultArgs`), overridable by build args.
fn default_args(
    build: &Platform,
    target: &Platform,
    stage: &str,
    build_args: &BTreeMap<String, String>,
) -> EnvList {
    let mut env = EnvList::new();
    let pairs = [
        ("BUILDPLATFORM", platform::format(build)),
        ("BUILDOS", build.os.clone()),
        ("BUILDOSVERSION", build.os_version.clone()),
        ("BUILDARCH", build.architecture.clone()),
        ("BUILDVARIANT", build.variant.clone()),
        ("TARGETPLATFORM", platform::format(target)),
        ("TARGETOS", target.os.clone()),
        ("TARGETOSVERSION", target.os_version.clone()),
        ("TARGETARCH", target.architecture.clone()),
        ("TARGETVARIANT", target.variant.clone()),
        ("TARGETSTAGE", stage.to_string()),
    ];
    for (k, v) in pairs {
        let v = build_args.get(k).cloned().unwrap_or(v);
        env.set(k, &v);
    }
    env
}

/// ARGs that never reach the environment.
const NON_ENV_ARGS: &[&str] = &["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// Builds the Dockerfile's target stage.
pub fn build(df: &Dockerfile, opts: &BuildOptions<'_>) -> Result<BuildOutput, BuildError> {
    build_within(df, opts, COPY_BUDGET)
}

/// [`build`], copying at most `copy_budget` bytes of stage state.
fn build_within(
    df: &Dockerfile,
    opts: &BuildOptions<'_>,
    copy_budget: usize,
) -> Result<BuildOutput, BuildError> {
    let host = platform::host();
    let target_platform = opts.platform.clone().unwrap_or_else(|| host.clone());
    let mut build_args = opts.build_args.clone();
    build_args
        .entry("SOURCE_DATE_EPOCH".into())
        .or_insert_with(|| opts.epoch.to_string());
    let target_name = match &opts.target {
        Some(t) => t.clone(),
        None => df
            .stages
            .last()
            .and_then(|s| s.name.clone())
            .unwrap_or_default(),
    };
    let predefined = default_args(
        &host,
        &target_platform,
        if target_name.is_empty() {
            "default"
        } else {
            &target_name
        },
        &build_args,
    );
    let meta = df.meta_env(&predefined, &build_args)?;
    let graph = StageGraph::new(df, &meta)?;
    let target = graph
        .target(opts.target.as_deref())
        .map_err(|e| BuildError::input(e.to_string()))?;
    let deps = graph
        .dependencies(target)
        .map_err(|e| BuildError::input(e.to_string()))?;

    let ignore = match kiln_dockerfile::find_dockerignore(&opts.dockerfile, &opts.context_dir) {
        Some(p) => {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| BuildError::input(format!("{}: {e}", p.display())))?;
            Some(
                IgnoreMatcher::parse(&text)
                    .map_err(|e| BuildError::input(format!("{}: {e}", p.display())))?,
            )
        }
        None => None,
    };

    let mut b = Builder {
        opts,
        df,
        lex: df.lexer(),
        meta,
        ignore,
        context: None,
        stages: vec![None; df.stages.len()],
        epoch: Timestamp::from_secs(opts.epoch),
        created: GoTime::from_unix(opts.epoch),
        target_platform: target_platform.clone(),
        history_bytes: 0,
        last_use: last_uses(df, &graph, &deps, target),
        released: vec![false; df.stages.len()],
        copied_bytes: 0,
        copy_budget,
    };
    for i in deps {
        b.dispatch_stage(i, &graph, &build_args)?;
    }
    let st = b.stages[target]
        .take()
        .expect("target stage was dispatched");
    Ok(b.finish(st))
}

/// For each stage, the last of `deps` that uses it (see `Builder::last_use`).
fn last_uses(
    df: &Dockerfile,
    graph: &StageGraph,
    deps: &BTreeSet<usize>,
    target: usize,
) -> Vec<Option<usize>> {
    let onbuild = df.stages.iter().any(|s| {
        s.commands
            .iter()
            .any(|c| matches!(c.instruction, Instruction::Onbuild(_)))
    });
    if onbuild {
        return vec![None; df.stages.len()];
    }
    let mut last = graph.last_users(deps, true);
    last[target] = None;
    last
}

/// The empty image of `FROM scratch` (BuildKit's `emptyImage`).
fn empty_image(p: &Platform) -> ImageConfig {
    ImageConfig {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        os_version: p.os_version.clone(),
        os_features: p.os_features.clone(),
        variant: p.variant.clone(),
        config: RunConfig {
            working_dir: "/".into(),
            env: vec![format!("PATH={DEFAULT_PATH}")],
            ..RunConfig::default()
        },
        ..ImageConfig::default()
    }
}

/// BuildKit's `system.NormalizePath(parent, p, "linux", keep_slash)`: relative paths are
/// joined to `parent` and cleaned; absolute ones are kept as written.
pub fn normalize_path(parent: &str, p: &str, keep_slash: bool) -> String {
    let parent = if parent.is_empty() { "/" } else { parent };
    let parent = if parent.starts_with('/') {
        parent.to_string()
    } else {
        copy::clean_abs(parent)
    };
    let mut new = if p.is_empty() {
        parent.clone()
    } else {
        p.to_string()
    };
    if !new.starts_with('/') {
        new = copy::clean_abs(&format!("{parent}/{new}"));
    }
    if keep_slash {
        if p.ends_with('/') && !new.ends_with('/') {
            new.push('/');
        } else if p.ends_with("/.") {
            if new != "/" {
                new.push('/');
            }
            new.push('.');
        }
    }
    new
}

/// Where a layer's tar stream goes on its way to the blob store.
type LayerSink = kiln_layer::pipeline::Handoff<std::io::BufWriter<std::fs::File>>;

/// A base layer that could not be applied: bad input, or beyond what kiln handles.
fn apply_error(e: &layers::ApplyError, message: String) -> BuildError {
    let kind = if e.is_unsupported() {
        ErrorKind::Unsupported
    } else {
        ErrorKind::Input
    };
    BuildError::new(kind, message)
}

impl Builder<'_> {
    fn file(&self) -> &str {
        &self.opts.dockerfile_display
    }

    fn context_tree(&mut self) -> Result<&Tree, BuildError> {
        if self.context.is_none() {
            let adapter = self.ignore.as_ref().map(IgnoreAdapter);
            let t = context::load(
                &self.opts.context_dir,
                adapter.as_ref().map(|a| a as &dyn CtxIgnore),
            )?;
            self.context = Some(t);
        }
        Ok(self.context.as_ref().expect("loaded above"))
    }

    /// Charges new history entries to [`HISTORY_BUDGET`].
    fn spend_history(&mut self, new: &[History]) -> Result<(), BuildError> {
        let bytes: usize = new.iter().map(|h| h.created_by.len()).sum();
        self.history_bytes = self.history_bytes.saturating_add(bytes);
        if self.history_bytes > HISTORY_BUDGET {
            return Err(BuildError::input(format!(
                "the image history would grow past {} MiB (kiln's limit per build; this \
                 instruction alone writes {bytes} bytes of it)",
                HISTORY_BUDGET >> 20
            )));
        }
        Ok(())
    }

    fn history(&self, created_by: String, empty_layer: bool) -> History {
        History {
            created: Some(self.created),
            created_by,
            author: String::new(),
            comment: HISTORY_COMMENT.into(),
            empty_layer,
        }
    }

    /// A state for a base image from a resolver.
    fn image_state(&self, img: BaseImage, platform: &Platform) -> Result<StageState, BuildError> {
        let mut tree = Tree::new();
        for l in &img.layers {
            layers::apply_layer_file(&mut tree, &l.path, &l.digest.to_string())
                .map_err(|e| apply_error(&e, format!("{}: {e}", img.reference)))?;
        }
        let mut image = img.config.clone();
        let (layers_out, base_history) = if img.named_context {
            // Not a "base image" for BuildKit: layers are rewritten, created is kept.
            let mut out = Vec::new();
            for l in &img.layers {
                out.push(self.rewrite_layer(l)?);
            }
            (out, None)
        } else {
            image.created = None;
            let out = img
                .layers
                .iter()
                .map(|l| LayerRecord {
                    diff_id: l.diff_id,
                    digest: l.digest,
                    size: l.size,
                    origin: LayerOrigin::Base {
                        media_type: l.media_type.clone(),
                        path: l.path.clone(),
                    },
                })
                .collect();
            (out, Some(img.config.history.clone()))
        };
        let mut p = platform.clone();
        if !image.architecture.is_empty() && !image.os.is_empty() {
            p = image.platform();
        }
        Ok(StageState {
            index: 0,
            parent: None,
            tree,
            image,
            layers: layers_out,
            base_history,
            env: EnvList::new(),
            env_slots: None,
            build_args: Vec::new(),
            dir: "/".into(),
            user: String::new(),
            platform: p,
            cmd_set: false,
        })
    }

    /// BuildKit's rewrite-timestamp conversion of a layer it does not treat as immutable.
    fn rewrite_layer(&self, l: &BaseLayer) -> Result<LayerRecord, BuildError> {
        let (input, _) = layers::open_layer_blob(&l.path)?;
        self.store_layer(|lw| {
            kiln_layer::rewrite::rewrite_tar(input, Some(self.epoch), lw)
                .map(|_| ())
                .map_err(|e| {
                    let kind = match e {
                        TarError::Unsupported { .. } => ErrorKind::Unsupported,
                        _ => ErrorKind::Input,
                    };
                    BuildError::new(kind, format!("layer {}: {e}", l.digest))
                })
        })
    }

    /// Streams a layer into the blob store: `body` writes the tar entries; digests come from
    /// the [`LayerWriter`], compression runs beside it on the other cores.
    fn store_layer(
        &self,
        body: impl FnOnce(&mut LayerWriter<LayerSink>) -> Result<(), BuildError>,
    ) -> Result<LayerRecord, BuildError> {
        let tmp = self.opts.store.temp_file()?;
        let file = tmp.reopen()?;
        let (w, info) = kiln_layer::pipeline::write_layer(
            std::io::BufWriter::with_capacity(1 << 20, file),
            self.opts.compression,
            body,
        )?;
        w.into_inner().map_err(|e| e.into_error())?;
        self.opts.store.adopt(tmp, &info.digest)?;
        Ok(new_record(info))
    }

    fn dispatch_stage(
        &mut self,
        i: usize,
        graph: &StageGraph,
        build_args: &BTreeMap<String, String>,
    ) -> Result<(), BuildError> {
        let stage = &self.df.stages[i];
        let file = self.file().to_string();
        let stage_label = stage.name.clone().unwrap_or_else(|| format!("stage-{i}"));
        let platform = match graph.platform(i) {
            Some(p) => {
                platform::parse(p).map_err(|e| BuildError::input(e).at(&file, stage.line))?
            }
            None => self.target_platform.clone(),
        };
        self.opts
            .progress
            .step(&format!("[{stage_label}] {}", stage.original));
        let mut onbuild_from_parent: Vec<String> = Vec::new();
        let mut st = match graph.base(i) {
            StageRef::Stage(j) => {
                // The last use takes the state instead of copying it, unless this stage
                // also copies or mounts from it.
                let last = self.last_use[*j] == Some(i)
                    && !graph.references(i).contains(&StageRef::Stage(*j));
                let s = if last {
                    self.released[*j] = true;
                    self.stages[*j].take()
                } else {
                    if let Some(s) = &self.stages[*j] {
                        self.copied_bytes = self.copied_bytes.saturating_add(s.footprint());
                    }
                    if self.copied_bytes > self.copy_budget {
                        return Err(BuildError::input(format!(
                            "stages built on stages that are still needed would copy more than \
                             {} MiB of stage state (kiln's limit per build)",
                            self.copy_budget >> 20
                        ))
                        .at(&file, stage.line));
                    }
                    self.stages[*j].clone()
                };
                let mut s = s.ok_or_else(|| {
                    self.missing_stage(*j, |name| {
                        format!("cannot use stage {name:?}, it needs to be defined before the current stage")
                    })
                    .at(&file, stage.line)
                })?;
                // ONBUILD triggers of the parent stage run here; they do not carry over.
                for c in &self.df.stages[*j].commands {
                    if let Instruction::Onbuild(o) = &c.instruction {
                        onbuild_from_parent.push(o.expression.clone());
                    }
                }
                s.image.config.on_build.clear();
                s.cmd_set = false;
                s.parent = Some(*j);
                s
            }
            StageRef::Image(name) if name == "scratch" => StageState::scratch(i, &platform),
            StageRef::Image(name) => {
                let resolver = self.opts.resolver.ok_or_else(|| {
                    BuildError::new(
                        ErrorKind::Unsupported,
                        format!("FROM {name}: base images are not available in this build (no image resolver)"),
                    )
                    .at(&file, stage.line)
                })?;
                let img = match resolver.named_context(name, &platform) {
                    Ok(Some(img)) => Ok(img),
                    Ok(None) => resolver.resolve(name, &platform),
                    Err(e) => Err(e),
                }
                .map_err(|e| e.at(&file, stage.line))?;
                self.image_state(img, &platform)
                    .map_err(|e| e.at(&file, stage.line))?
            }
        };
        if matches!(graph.base(i), StageRef::Image(_)) {
            // Stage initialisation from the image config (BuildKit: PATH default, env into the
            // state, WorkingDir and User applied without layers).
            if st.image.config.env_value("PATH").is_none() {
                st.image.config.env.push(format!("PATH={DEFAULT_PATH}"));
                st.env_slots = None;
            }
            for kv in st.image.config.env.clone() {
                let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
                st.env.set(k, v);
            }
            if !st.image.config.working_dir.is_empty() {
                st.dir = normalize_path(&st.image.config.working_dir, "", false);
            }
            st.user = st.image.config.user.clone();
            // ONBUILD triggers of the base image run first, then are cleared.
            onbuild_from_parent = std::mem::take(&mut st.image.config.on_build);
        }

        st.index = i;
        let mut commands: Vec<(usize, Instruction, String)> = Vec::new();
        for expr in &onbuild_from_parent {
            let parsed = kiln_dockerfile::parse(&format!("FROM scratch\n{expr}\n"), &file)
                .map_err(|e| {
                    BuildError::input(format!("ONBUILD trigger {expr:?}: {e}"))
                        .at(&file, stage.line)
                })?;
            for c in &parsed.stages[0].commands {
                commands.push((stage.line, c.instruction.clone(), c.original.clone()));
            }
        }
        for c in &stage.commands {
            commands.push((c.line, c.instruction.clone(), c.original.clone()));
        }
        let total = commands.len();
        for (n, (line, ins, original)) in commands.into_iter().enumerate() {
            self.opts
                .progress
                .step(&format!("[{stage_label} {}/{}] {original}", n + 1, total));
            let before = st.image.history.len();
            self.dispatch(&mut st, &ins, build_args, graph)
                .and_then(|()| self.spend_history(&st.image.history[before..]))
                .map_err(|e| e.at(&file, line))?;
        }
        self.stages[i] = Some(st);
        for r in graph.references(i) {
            if let StageRef::Stage(j) = r {
                if self.last_use[j] == Some(i) {
                    self.stages[j] = None;
                    self.released[j] = true;
                }
            }
        }
        Ok(())
    }

    /// Stage `j`'s state, or why it is not there: released after its last use, or not
    /// built yet (`unbuilt` says so in the words of the instruction that asked).
    fn stage_state(
        &self,
        j: usize,
        unbuilt: impl FnOnce(&str) -> String,
    ) -> Result<&StageState, BuildError> {
        self.stages[j]
            .as_ref()
            .ok_or_else(|| self.missing_stage(j, unbuilt))
    }

    /// Why stage `j`'s state is not there (see [`Builder::stage_state`]).
    fn missing_stage(&self, j: usize, unbuilt: impl FnOnce(&str) -> String) -> BuildError {
        let name = self.df.stages[j]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{j}"));
        if self.released[j] {
            BuildError::new(
                ErrorKind::Unsupported,
                format!(
                    "stage {name:?} was released after its last use that the Dockerfile shows; \
                     ONBUILD triggers of a base image that refer to stages are not supported"
                ),
            )
        } else {
            BuildError::input(unbuilt(&name))
        }
    }

    fn dispatch(
        &mut self,
        st: &mut StageState,
        ins: &Instruction,
        build_args: &BTreeMap<String, String>,
        graph: &StageGraph,
    ) -> Result<(), BuildError> {
        if let Instruction::Arg(a) = ins {
            return self.dispatch_arg(st, a, build_args);
        }
        let expanded = ins
            .expand(&self.lex, &st.env)
            .map_err(|e| BuildError::input(e.to_string()))?;
        match expanded {
            Expanded::Maintainer(m) => {
                st.image.author = m.maintainer.clone();
                let h = self.history(format!("MAINTAINER {}", m.maintainer), true);
                st.image.history.push(h);
            }
            Expanded::Env(e) => {
                let mut msg = String::from("ENV");
                for kv in &e.vars {
                    msg.push_str(&format!(" {}={}", kv.key, kv.value));
                    st.env.set(&kv.key, &kv.value);
                    st.set_config_env(&kv.key, &kv.value);
                }
                st.image.history.push(self.history(msg, true));
            }
            Expanded::Label(l) => {
                let mut msg = String::from("LABEL");
                for kv in &l.labels {
                    st.image
                        .config
                        .labels
                        .insert(kv.key.clone(), kv.value.clone());
                    msg.push_str(&format!(" {}={}", kv.key, kv.value));
                }
                st.image.history.push(self.history(msg, true));
            }
            Expanded::Onbuild(o) => st.image.config.on_build.push(o.expression.clone()),
            Expanded::Cmd(c) => {
                let args = c.cmd.with_shell(&shell_of(&st.image.config));
                st.image
                    .history
                    .push(self.history(format!("CMD {}", gofmt::quote_list(&args)), true));
                st.image.config.cmd = args;
                st.image.config.args_escaped = true;
                st.cmd_set = true;
            }
            Expanded::Entrypoint(e) => {
                let args = e.cmd.with_shell(&shell_of(&st.image.config));
                st.image
                    .history
                    .push(self.history(format!("ENTRYPOINT {}", gofmt::quote_list(&args)), true));
                st.image.config.entrypoint = args;
                if !st.cmd_set {
                    st.image.config.cmd.clear();
                }
            }
            Expanded::Healthcheck(h) => {
                let hc = Healthcheck {
                    test: h.test.clone(),
                    interval: h.interval,
                    timeout: h.timeout,
                    start_period: h.start_period,
                    start_interval: h.start_interval,
                    retries: h.retries as i64,
                };
                let msg = format!(
                    "HEALTHCHECK &{{{} {} {} {} {} {}}}",
                    gofmt::quote_list(&hc.test),
                    gofmt::quote(&gofmt::duration(hc.interval)),
                    gofmt::quote(&gofmt::duration(hc.timeout)),
                    gofmt::quote(&gofmt::duration(hc.start_period)),
                    gofmt::quote(&gofmt::duration(hc.start_interval)),
                    gofmt::quote_rune(hc.retries),
                );
                st.image.config.healthcheck = Some(hc);
                st.image.history.push(self.history(msg, true));
            }
            Expanded::Expose(e) => {
                let ps = ports::parse_port_specs(&e.ports).map_err(BuildError::input)?;
                for p in &ps {
                    st.image
                        .config
                        .exposed_ports
                        .insert(p.clone(), kiln_image::spec::Empty);
                }
                st.image
                    .history
                    .push(self.history(format!("EXPOSE {}", ports::go_map_string(&ps)), true));
            }
            Expanded::User(u) => {
                st.user = u.user.clone();
                st.image.config.user = u.user.clone();
                st.image
                    .history
                    .push(self.history(format!("USER {}", u.user), true));
            }
            Expanded::Volume(v) => {
                for p in &v.volumes {
                    st.image
                        .config
                        .volumes
                        .insert(p.clone(), kiln_image::spec::Empty);
                }
                st.image
                    .history
                    .push(self.history(format!("VOLUME {}", gofmt::list(&v.volumes)), true));
            }
            Expanded::StopSignal(s) => {
                signal::validate(&s.signal).map_err(BuildError::input)?;
                st.image.config.stop_signal = s.signal.clone();
                st.image
                    .history
                    .push(self.history(format!("STOPSIGNAL {}", s.signal), true));
            }
            Expanded::Shell(s) => {
                st.image.config.shell = s.shell.clone();
                st.image
                    .history
                    .push(self.history(format!("SHELL {}", gofmt::list(&s.shell)), true));
            }
            Expanded::Workdir(w) => self.dispatch_workdir(st, &w.path)?,
            Expanded::Copy(c) => {
                let spec = CopySpec {
                    is_add: false,
                    srcs: c.srcs.clone(),
                    inline: c.inline.clone(),
                    dest: c.dest.clone(),
                    from: c.from.clone(),
                    chown: c.chown.clone(),
                    chmod: c.chmod.clone(),
                    link: c.link,
                    parents: c.parents,
                    exclude: !c.exclude.is_empty(),
                };
                self.dispatch_copy(st, &spec, graph)?;
            }
            Expanded::Add(a) => {
                let spec = CopySpec {
                    is_add: true,
                    srcs: a.srcs.clone(),
                    inline: a.inline.clone(),
                    dest: a.dest.clone(),
                    from: None,
                    chown: a.chown.clone(),
                    chmod: a.chmod.clone(),
                    link: a.link,
                    parents: false,
                    exclude: !a.exclude.is_empty(),
                };
                self.dispatch_copy(st, &spec, graph)?;
            }
            Expanded::Run(r) => self.dispatch_run(st, &r, graph)?,
            Expanded::Arg(_) => unreachable!("handled above"),
        }
        Ok(())
    }

    fn dispatch_arg(
        &mut self,
        st: &mut StageState,
        a: &kiln_dockerfile::Arg,
        build_args: &BTreeMap<String, String>,
    ) -> Result<(), BuildError> {
        let mut parts = Vec::new();
        for def in &a.args {
            let value = def
                .resolve(&self.lex, &st.env, build_args, &self.meta)
                .map_err(|e| BuildError::input(e.to_string()))?;
            if let Some(v) = &value {
                if !NON_ENV_ARGS.contains(&def.key.as_str()) {
                    st.env.set(&def.key, v);
                }
            }
            st.build_args.push((def.key.clone(), value.clone()));
            parts.push(match &value {
                Some(v) => format!("{}={}", def.key, v),
                None => def.key.clone(),
            });
        }
        st.image
            .history
            .push(self.history(format!("ARG {}", parts.join(" ")), true));
        Ok(())
    }

    fn dispatch_workdir(&mut self, st: &mut StageState, path: &str) -> Result<(), BuildError> {
        let wd = normalize_path(&st.image.config.working_dir, path, false);
        st.image.config.working_dir = wd.clone();
        st.dir = wd.clone();
        if wd == "/" {
            st.image
                .history
                .push(self.history(format!("WORKDIR {wd}"), true));
            return Ok(());
        }
        let before = st.tree.clone();
        let owner = if st.user.is_empty() {
            None
        } else {
            Some(users::resolve_chown(
                &st.tree,
                &st.user,
                self.opts.progress,
            )?)
        };
        let mut touched = Touched::new();
        let resolved = st
            .tree
            .resolve(wd.trim_start_matches('/').as_bytes(), true)
            .map_err(|e| BuildError::input(e.to_string()))?;
        copy::mkdir_all(&mut st.tree, &resolved, owner, &mut touched)
            .map_err(|e| BuildError::input(format!("WORKDIR {wd}: {e}")))?;
        let changes = emit::changes(&before, &st.tree, &touched);
        let rec = self.write_layer(&st.tree, &changes)?;
        st.layers.push(rec);
        st.image
            .history
            .push(self.history(format!("WORKDIR {wd}"), false));
        Ok(())
    }

    fn write_layer(
        &self,
        tree: &Tree,
        changes: &[emit::Change],
    ) -> Result<LayerRecord, BuildError> {
        self.store_layer(|lw| {
            emit::write_layer(tree, changes, self.epoch, lw).map_err(|e| match e {
                emit::EmitError::Content { .. } => BuildError::input(e.to_string()),
                other => BuildError::env(other.to_string()),
            })
        })
    }

    fn dispatch_copy(
        &mut self,
        st: &mut StageState,
        c: &CopySpec,
        graph: &StageGraph,
    ) -> Result<(), BuildError> {
        let cmd = if c.is_add { "ADD" } else { "COPY" };
        if c.parents || c.exclude {
            return Err(BuildError::new(
                ErrorKind::Unsupported,
                format!("{cmd} --parents/--exclude (labs syntax) is not implemented natively"),
            ));
        }
        let dest = normalize_path(&st.dir, &c.dest, true);
        // Source tree.
        if c.from.is_none() {
            self.context_tree()?;
        }
        let (src_tree, from_context): (std::borrow::Cow<'_, Tree>, bool) = match &c.from {
            None => (
                std::borrow::Cow::Borrowed(self.context.as_ref().expect("loaded above")),
                true,
            ),
            Some(from) => match stage_or_image(self.df, graph, from) {
                StageRef::Stage(j) => {
                    let s = self.stage_state(j, |_| {
                        format!("cannot copy from stage {from:?}, it needs to be defined before the current stage")
                    })?;
                    (std::borrow::Cow::Borrowed(&s.tree), false)
                }
                StageRef::Image(img) => {
                    let resolver = self.opts.resolver.ok_or_else(|| {
                        BuildError::new(
                            ErrorKind::Unsupported,
                            format!("COPY --from={img}: images are not available in this build (no image resolver)"),
                        )
                    })?;
                    let base = match resolver.named_context(&img, &st.platform)? {
                        Some(b) => b,
                        None => resolver.resolve(&img, &st.platform)?,
                    };
                    let mut t = Tree::new();
                    for l in &base.layers {
                        layers::apply_layer_file(&mut t, &l.path, &l.digest.to_string())
                            .map_err(|e| apply_error(&e, e.to_string()))?;
                    }
                    (std::borrow::Cow::Owned(t), false)
                }
            },
        };
        let owner = match &c.chown {
            Some(u) => Some(users::resolve_chown(&st.tree, u, self.opts.progress)?),
            None => None,
        };
        let chmod = match &c.chmod {
            Some(m) => Some(Chmod::parse(m).map_err(BuildError::input)?),
            None => None,
        };
        let opts = CopyOptions {
            chown: owner,
            chmod,
            follow_symlinks: true,
            wildcard: true,
        };
        // COPY --link (without --chmod) copies onto an empty tree and merges the result.
        let linked = c.link && c.chmod.is_none();
        let before = (!linked).then(|| st.tree.clone());
        let mut scratch = Tree::new();
        let work: &mut Tree = if linked { &mut scratch } else { &mut st.tree };
        let mut touched = Touched::new();
        for src in &c.srcs {
            if src.starts_with("http://") || src.starts_with("https://") || looks_like_git(src) {
                let what = if c.is_add {
                    "ADD of a URL or git source"
                } else {
                    "COPY of a URL"
                };
                return Err(BuildError::new(
                    if c.is_add {
                        ErrorKind::Unsupported
                    } else {
                        ErrorKind::Input
                    },
                    if c.is_add {
                        format!(
                            "{what} ({src}) is not done natively: it needs the BuildKit fallback"
                        )
                    } else {
                        format!("source can't be a URL for COPY: {src}")
                    },
                ));
            }
            if from_context && climbs_out(src) {
                return Err(BuildError::input(format!(
                    "{cmd} source {src:?} points outside the build context"
                )));
            }
            let src_abs = normalize_path("/", src, false);
            if from_context {
                check_context_source(&src_tree, &src_abs, src)?;
            }
            let matched = if c.is_add {
                self.add_one(&src_tree, &src_abs, work, &dest, &opts, &mut touched, src)?
            } else {
                copy::copy(&src_tree, &src_abs, work, &dest, &opts, &mut touched)
                    .map_err(|e| copy_error(cmd, src, e))?
            };
            if !matched {
                self.opts.progress.warn(&format!(
                    "{cmd} {src}: the pattern matched no files; nothing was copied"
                ));
            }
        }
        for f in &c.inline {
            let t = copy::scratch_with_file(&f.path, f.data.as_bytes())
                .map_err(|e| BuildError::input(e.to_string()))?;
            let o = CopyOptions {
                follow_symlinks: false,
                wildcard: false,
                ..opts.clone()
            };
            copy::copy(
                &t,
                &normalize_path("/", &f.path, false),
                work,
                &dest,
                &o,
                &mut touched,
            )
            .map_err(|e| copy_error(cmd, &format!("<<{}", f.path), e))?;
        }
        let rec = match before {
            None => {
                let changes = emit::changes(&Tree::new(), &scratch, &touched);
                merge_onto(&mut st.tree, &scratch, &changes);
                self.write_layer(&scratch, &changes)?
            }
            Some(before) => {
                let changes = emit::changes(&before, &st.tree, &touched);
                self.write_layer(&st.tree, &changes)?
            }
        };
        st.layers.push(rec);
        let mut msg = String::from(cmd);
        if c.parents {
            msg.push_str(" --parents");
        }
        if let Some(u) = &c.chown {
            msg.push_str(&format!(" --chown={u}"));
        }
        if let Some(m) = &c.chmod {
            msg.push_str(&format!(" --chmod={m}"));
        }
        for s in &c.srcs {
            msg.push(' ');
            msg.push_str(s);
        }
        for f in &c.inline {
            msg.push_str(&format!(" <<{}", f.path));
        }
        msg.push(' ');
        msg.push_str(&c.dest);
        msg.push_str(" # buildkit");
        st.image.history.push(self.history(msg, false));
        Ok(())
    }

    /// ADD of one local source: archives are extracted, anything else is copied.
    #[allow(clippy::too_many_arguments)]
    fn add_one(
        &self,
        src_tree: &Tree,
        src_abs: &str,
        work: &mut Tree,
        dest: &str,
        opts: &CopyOptions,
        touched: &mut Touched,
        written: &str,
    ) -> Result<bool, BuildError> {
        let matches = copy::resolve_wildcards(src_tree, src_abs, true)
            .map_err(|e| copy_error("ADD", written, e))?;
        if matches.is_empty() {
            return Ok(false);
        }
        for m in matches {
            let followed = src_tree
                .resolve(&m, true)
                .map_err(|e| BuildError::input(e.to_string()))?;
            if let Some(Node::File { content, .. }) = src_tree.get(&followed) {
                let name = String::from_utf8_lossy(&m).into_owned();
                if let Some(tar) = unpack::as_archive(content, self.opts.work_dir, &name)
                    .map_err(|e| BuildError::input(e.to_string()))?
                {
                    let d = work
                        .resolve(dest.trim_start_matches('/').as_bytes(), true)
                        .map_err(|e| BuildError::input(e.to_string()))?;
                    copy::mkdir_all(work, &d, opts.chown, touched)
                        .map_err(|e| copy_error("ADD", written, e))?;
                    unpack::untar_into(&tar, &name, work, &d, touched)
                        .map_err(|e| BuildError::input(format!("ADD {written}: {e}")))?;
                    continue;
                }
            }
            let one = format!("/{}", String::from_utf8_lossy(&m));
            let o = CopyOptions {
                wildcard: false,
                ..opts.clone()
            };
            copy::copy(src_tree, &one, work, dest, &o, touched)
                .map_err(|e| copy_error("ADD", written, e))?;
        }
        Ok(true)
    }

    fn dispatch_run(
        &mut self,
        st: &mut StageState,
        r: &kiln_dockerfile::ExpandedRun,
        graph: &StageGraph,
    ) -> Result<(), BuildError> {
        let run_args = r
            .run
            .command_args(&shell_of(&st.image.config))
            .map_err(BuildError::input)?;
        let mut mounts = Vec::new();
        for m in &r.mounts {
            match m.kind {
                kiln_dockerfile::MountType::Tmpfs => mounts.push(RunMount::Tmpfs {
                    target: normalize_path(&st.dir, m.target.as_deref().unwrap_or(""), false),
                    size: m.size_limit,
                }),
                kiln_dockerfile::MountType::Bind => {
                    let tree = match &m.from {
                        None => self.context_tree()?.clone(),
                        Some(from) => match stage_or_image(self.df, graph, from) {
                            StageRef::Stage(j) => self
                                .stage_state(j, |_| format!("mount from stage {from:?} that is not built yet"))?
                                .tree
                                .clone(),
                            StageRef::Image(i) => {
                                return Err(BuildError::new(
                                    ErrorKind::Unsupported,
                                    format!("RUN --mount=type=bind,from={i}: mounting an image is not done natively"),
                                ))
                            }
                        },
                    };
                    mounts.push(RunMount::Bind {
                        tree,
                        source: normalize_path("/", m.source.as_deref().unwrap_or("/"), false),
                        target: normalize_path(&st.dir, m.target.as_deref().unwrap_or(""), false),
                        read_only: m.read_only,
                    });
                }
                other => {
                    return Err(BuildError::new(
                        ErrorKind::Unsupported,
                        format!("RUN --mount=type={other:?} is not done natively (needs the BuildKit fallback)").to_lowercase(),
                    ))
                }
            }
        }
        if r.run.security == kiln_dockerfile::Security::Insecure {
            return Err(BuildError::new(
                ErrorKind::Unsupported,
                "RUN --security=insecure is not done natively (needs the BuildKit fallback)",
            ));
        }
        let executor = self.opts.executor.ok_or_else(|| {
            BuildError::new(
                ErrorKind::Unsupported,
                "RUN needs the sandbox, which is not available in this build",
            )
        })?;
        let mut env = st.env.to_list();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        let req = RunRequest {
            stage: st.index,
            parent_stage: st.parent,
            tree: &st.tree,
            args: run_args.args.clone(),
            env,
            cwd: st.dir.clone(),
            user: st.user.clone(),
            network: r.run.network,
            mounts,
            script: run_args
                .script
                .as_ref()
                .map(|s| (s.name.clone(), s.data.clone().into_bytes())),
        };
        let res = executor.run(req, self.opts.progress)?;
        let rec = self.write_layer(&res.tree, &res.changes)?;
        st.tree = res.tree;
        st.layers.push(rec);
        let msg = format!(
            "RUN {}",
            run_command_string(&run_args.args, &st.build_args, &st.env)
        );
        st.image
            .history
            .push(self.history(format!("{msg} # buildkit"), false));
        Ok(())
    }

    /// The exporter's config patch (`patchImageConfig`) and platform handling.
    fn finish(&self, mut st: StageState) -> BuildOutput {
        if self.opts.platform.is_some() {
            let p = &self.target_platform;
            st.image.os = p.os.clone();
            st.image.architecture = p.architecture.clone();
            st.image.variant = p.variant.clone();
            st.image.os_version = p.os_version.clone();
            st.image.os_features = p.os_features.clone();
        }
        let epoch = self.created;
        let mut diverged = false;
        for (i, h) in st.image.history.iter_mut().enumerate() {
            if !diverged {
                if let Some(bh) = &st.base_history {
                    if i < bh.len() && bh[i] == *h {
                        continue;
                    }
                }
            }
            diverged = true;
            if h.created.is_none_or(|c| c.after(&epoch)) {
                h.created = Some(epoch);
            }
        }
        match st.image.created {
            Some(c) if c.after(&epoch) => st.image.created = Some(epoch),
            Some(_) => {}
            None => {
                st.image.created = st.image.history.iter().rev().find_map(|h| h.created);
            }
        }
        st.image.rootfs = kiln_image::spec::RootFs {
            kind: "layers".into(),
            diff_ids: if st.layers.is_empty() {
                None
            } else {
                Some(st.layers.iter().map(|l| l.diff_id).collect())
            },
        };
        BuildOutput {
            platform: st.image.platform(),
            config: st.image,
            layers: st.layers,
            epoch: self.opts.epoch,
        }
    }
}

fn new_record(info: LayerInfo) -> LayerRecord {
    LayerRecord {
        diff_id: info.diff_id,
        digest: info.digest,
        size: info.size,
        origin: LayerOrigin::New(info.compression),
    }
}

struct CopySpec {
    is_add: bool,
    srcs: Vec<String>,
    inline: Vec<kiln_dockerfile::InlineFile>,
    dest: String,
    from: Option<String>,
    chown: Option<String>,
    chmod: Option<String>,
    link: bool,
    parents: bool,
    exclude: bool,
}

fn shell_of(cfg: &RunConfig) -> Vec<String> {
    if cfg.shell.is_empty() {
        vec!["/bin/sh".into(), "-c".into()]
    } else {
        cfg.shell.clone()
    }
}

fn looks_like_git(src: &str) -> bool {
    src.starts_with("git@")
        || src.starts_with("git://")
        || src.ends_with(".git") && src.contains("://")
}

/// `--from=<name|index>` to a stage or an image, as BuildKit's `toCommand` resolves it.
fn stage_or_image(df: &Dockerfile, _graph: &StageGraph, from: &str) -> StageRef {
    if let Ok(i) = from.parse::<usize>() {
        if i < df.stages.len() {
            return StageRef::Stage(i);
        }
    }
    match df.stage_by_name(from) {
        Some(i) => StageRef::Stage(i),
        None => StageRef::Image(from.to_string()),
    }
}

/// BuildKit's `runCommandString`: `|N K=V ... args` when build args are in scope.
fn run_command_string(
    args: &[String],
    build_args: &[(String, Option<String>)],
    env: &EnvList,
) -> String {
    let mut tmp: Vec<String> = Vec::new();
    let mut idx: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, v) in build_args {
        let value = env
            .lookup(k)
            .map(str::to_string)
            .unwrap_or_else(|| v.clone().unwrap_or_default());
        let entry = format!("{k}={value}");
        match idx.get(k.as_str()) {
            Some(&i) => tmp[i] = entry,
            None => {
                idx.insert(k, tmp.len());
                tmp.push(entry);
            }
        }
    }
    let mut parts = Vec::new();
    if !tmp.is_empty() {
        parts.push(format!("|{}", tmp.len()));
        parts.extend(tmp);
    }
    parts.extend(args.iter().cloned());
    parts.join(" ")
}

fn copy_error(cmd: &str, src: &str, e: CopyError) -> BuildError {
    match e {
        CopyError::NotFound(p) => {
            BuildError::input(format!("{cmd} failed: {p:?} not found (source {src:?})"))
        }
        other => BuildError::input(format!("{cmd} {src}: {other}")),
    }
}

/// Does a relative source path climb above the context root (`../x`, `a/../../x`)?
fn climbs_out(src: &str) -> bool {
    if src.starts_with('/') {
        return false;
    }
    let mut depth = 0i64;
    for c in src.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// A source in the build context must stay inside it: kiln refuses a symlink that points
/// outside (BuildKit would silently resolve it against the context root instead).
fn check_context_source(ctx: &Tree, src_abs: &str, written: &str) -> Result<(), BuildError> {
    let rel = src_abs.trim_start_matches('/');
    if rel.split('/').any(crate::gomatch::has_wildcards) {
        return Ok(());
    }
    let mut cur: Vec<Vec<u8>> = Vec::new();
    for comp in rel.split('/').filter(|c| !c.is_empty()) {
        cur.push(comp.as_bytes().to_vec());
        let path = cur.join(&b'/');
        if let Some(Node::Symlink { target, .. }) = ctx.get(&path) {
            let depth = cur.len() - 1;
            let escapes = target.starts_with(b"/") || {
                let mut d = depth as i64;
                let mut out = false;
                for t in target.split(|&b| b == b'/') {
                    match t {
                        b"" | b"." => {}
                        b".." => {
                            d -= 1;
                            if d < 0 {
                                out = true;
                                break;
                            }
                        }
                        _ => d += 1,
                    }
                }
                out
            };
            if escapes {
                return Err(BuildError::input(format!(
                    "source {written:?}: {} is a symlink to {:?}, which points outside the build context",
                    String::from_utf8_lossy(&path),
                    String::from_utf8_lossy(target)
                )));
            }
        }
    }
    Ok(())
}

/// Applies the result of a `COPY --link` (copied onto an empty tree) to the stage.
fn merge_onto(dst: &mut Tree, src: &Tree, changes: &[emit::Change]) {
    let mut paths: BTreeSet<Vec<u8>> = BTreeSet::new();
    for c in changes {
        let mut p = c.path.clone();
        paths.insert(p.clone());
        while let Some(par) = crate::tree::parent(&p) {
            if par.is_empty() {
                break;
            }
            p = par.to_vec();
            paths.insert(p.clone());
        }
    }
    let mut ordered: Vec<Vec<u8>> = paths.into_iter().collect();
    ordered.sort_by(|a, b| kiln_layer::order::cmp_paths(a, b));
    for p in ordered {
        let Some(node) = src.get(&p) else { continue };
        match (dst.get_mut(&p), node) {
            (Some(existing @ Node::Dir { .. }), Node::Dir { meta, .. }) => {
                *existing.meta_mut() = meta.clone();
            }
            _ => {
                let n = match node {
                    Node::Dir { meta, .. } => Node::dir(meta.clone()),
                    other => other.clone(),
                };
                let _ = dst.put(&p, n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_layer::tar::TarReader;
    use std::io::Read;

    /// Builds `dockerfile` with a context holding `f` and `g`; the names and contents of
    /// the regular files of each layer of the result.
    fn build_files(dockerfile: &str) -> Vec<Vec<(String, String)>> {
        build_files_within(dockerfile, COPY_BUDGET).unwrap()
    }

    fn build_files_within(
        dockerfile: &str,
        copy_budget: usize,
    ) -> Result<Vec<Vec<(String, String)>>, BuildError> {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(ctx.join("f"), "f\n").unwrap();
        std::fs::write(ctx.join("g"), "g\n").unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let df = kiln_dockerfile::parse(dockerfile, "Dockerfile").unwrap();
        let opts = BuildOptions {
            context_dir: ctx.clone(),
            dockerfile: ctx.join("Dockerfile"),
            dockerfile_display: "Dockerfile".into(),
            epoch: 0,
            build_args: BTreeMap::new(),
            target: None,
            platform: None,
            compression: Compression::Uncompressed,
            store: &store,
            work_dir: tmp.path(),
            resolver: None,
            executor: None,
            progress: &Quiet,
        };
        let out = build_within(&df, &opts, copy_budget)?;
        Ok(out
            .layers
            .iter()
            .map(|l| {
                let blob = std::fs::File::open(store.path(&l.digest)).unwrap();
                let mut tr = TarReader::new(blob);
                let mut files = Vec::new();
                while let Some(h) = tr.next_header().unwrap() {
                    if h.typeflag == kiln_layer::tar::typeflag::REG {
                        let mut data = String::new();
                        tr.read_to_string(&mut data).unwrap();
                        files.push((String::from_utf8_lossy(&h.name).into_owned(), data));
                    }
                }
                files
            })
            .collect())
    }

    #[test]
    fn copies_of_stages_spend_a_budget() {
        // `b` and `c` copy `a` (which `d` still needs); `c` is also needed by `d`, so
        // `d` copies it too. With no budget the first copy fails.
        let df = "FROM scratch AS a\nCOPY f /f\n\
                  FROM a AS b\n\
                  FROM a AS c\n\
                  FROM c AS d\nCOPY --from=a /f /a\nCOPY --from=b /f /b\nCOPY --from=c /f /c\n";
        assert!(build_files_within(df, COPY_BUDGET).is_ok());
        let err = build_files_within(df, 0).unwrap_err();
        assert_eq!(err.location.as_deref(), Some("Dockerfile:3"));
        assert!(err.message.contains("would copy more than"), "{err:?}");
    }

    #[test]
    fn stages_used_again_later_are_kept_and_the_rest_move_along() {
        // `a` is the base of `b` and copied from by `c` and `d` later: `b` must copy it;
        // `d` is built on `a` and copies from it too; `c` is the last use of `b`.
        let layers = build_files(
            "FROM scratch AS a\nCOPY f /f\n\
             FROM a AS b\nCOPY g /g\n\
             FROM b AS c\nCOPY --from=a /f /af\n\
             FROM a AS d\nCOPY --from=a /f /f2\nCOPY --from=c /af /caf\n",
        );
        let file = |n: &str, d: &str| (n.to_string(), d.to_string());
        assert_eq!(
            layers,
            [
                vec![file("f", "f\n")],
                vec![file("f2", "f\n")],
                vec![file("caf", "f\n")],
            ]
        );
    }

    #[test]
    fn config_env_is_set_as_buildkit_adds_env() {
        let mut st = StageState::scratch(0, &Platform::linux("amd64", ""));
        // A base image's list may repeat a key; BuildKit replaces the first entry.
        st.image.config.env = ["A=1", "B=2", "A=3", "C"].map(String::from).to_vec();
        for (k, v, want) in [
            ("A", "x", &["A=x", "B=2", "A=3", "C"][..]),
            ("D", "y", &["A=x", "B=2", "A=3", "C", "D=y"]),
            ("C", "z", &["A=x", "B=2", "A=3", "C=z", "D=y"]),
            ("D", "w", &["A=x", "B=2", "A=3", "C=z", "D=w"]),
            ("B", "", &["A=x", "B=", "A=3", "C=z", "D=w"]),
        ] {
            st.set_config_env(k, v);
            assert_eq!(st.image.config.env, want, "after {k}={v}");
        }
        // The index is rebuilt after the list changes otherwise (a base's PATH default).
        st.image.config.env.push("E=1".into());
        st.env_slots = None;
        st.set_config_env("E", "2");
        assert_eq!(st.image.config.env.last().map(String::as_str), Some("E=2"));
    }
}
