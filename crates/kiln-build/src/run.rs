//! RUN through kiln-sandbox: the stage's tree becomes overlayfs lower directories (written
//! once, then only what changed), the command runs on an overlay, and BuildKit's overlay
//! differ says what goes into the layer. The upper directory then serves as the next lower.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kiln_sandbox as sb;

use crate::emit::{Change, ChangeKind};
use crate::engine::{Progress, RunExecutor, RunMount, RunRequest, RunResult};
use crate::error::{BuildError, ErrorKind};
use crate::materialize;
use crate::tree::{Node, Tree};

/// Lower directories that represent a tree.
#[derive(Clone)]
struct Lowers {
    /// Top first.
    dirs: Vec<PathBuf>,
    tree: Tree,
}

/// Runs RUN steps in the sandbox.
pub struct SandboxExecutor {
    work: PathBuf,
    default_network: sb::Network,
    counter: RefCell<u64>,
    /// Per stage: the lowers made so far.
    cache: RefCell<HashMap<usize, Lowers>>,
}

impl SandboxExecutor {
    /// `work` must be on a file system that supports overlayfs upper directories.
    pub fn new(work: &Path, default_network: sb::Network) -> SandboxExecutor {
        SandboxExecutor {
            work: work.to_path_buf(),
            default_network,
            counter: RefCell::new(0),
            cache: RefCell::new(HashMap::new()),
        }
    }

    fn fresh_dir(&self, what: &str) -> Result<PathBuf, BuildError> {
        let mut c = self.counter.borrow_mut();
        *c += 1;
        let p = self.work.join(format!("{what}-{:04}", *c));
        std::fs::create_dir_all(&p)
            .map_err(|e| BuildError::env(format!("creating {}: {e}", p.display())))?;
        Ok(p)
    }

    /// Lower directories representing `tree` for `stage` (reusing earlier ones).
    fn lowers_for(
        &self,
        stage: usize,
        parent: Option<usize>,
        tree: &Tree,
    ) -> Result<Vec<PathBuf>, BuildError> {
        let mut cache = self.cache.borrow_mut();
        let existing = cache
            .get(&stage)
            .cloned()
            .or_else(|| parent.and_then(|p| cache.get(&p).cloned()));
        let env_err =
            |e: std::io::Error| BuildError::env(format!("preparing the root file system: {e}"));
        let lowers = match existing {
            None => {
                let dir = self.fresh_dir("lower")?;
                materialize::write_full(tree, &dir).map_err(env_err)?;
                Lowers {
                    dirs: vec![dir],
                    tree: tree.clone(),
                }
            }
            Some(mut l) => {
                let d = materialize::delta(&l.tree, tree);
                if !d.is_empty() {
                    let dir = self.fresh_dir("lower")?;
                    materialize::write_delta(tree, &d, &dir).map_err(env_err)?;
                    l.dirs.insert(0, dir);
                }
                l.tree = tree.clone();
                l
            }
        };
        let dirs = lowers.dirs.clone();
        cache.insert(stage, lowers);
        Ok(dirs)
    }
}

impl RunExecutor for SandboxExecutor {
    fn run(&self, req: RunRequest<'_>, progress: &dyn Progress) -> Result<RunResult, BuildError> {
        let lowers = self.lowers_for(req.stage, req.parent_stage, req.tree)?;
        let upper = self.fresh_dir("upper")?;
        let workdir = self.fresh_dir("work")?;
        let scratch = self.fresh_dir("scratch")?;
        let mut mounts = Vec::new();
        for m in &req.mounts {
            match m {
                RunMount::Tmpfs { target, .. } => mounts.push(sb::Mount::Tmpfs {
                    target: target.clone(),
                }),
                RunMount::Bind {
                    tree,
                    source,
                    target,
                    read_only,
                } => {
                    let host = self.fresh_dir("bind")?;
                    let src = tree
                        .resolve(source.trim_start_matches('/').as_bytes(), true)
                        .map_err(|e| BuildError::input(format!("--mount source {source}: {e}")))?;
                    let node = tree.get(&src).ok_or_else(|| {
                        BuildError::input(format!("--mount source {source}: not found"))
                    })?;
                    let mut sub = Tree::new();
                    let path = match node {
                        Node::Dir { .. } => {
                            sub.root = node.clone();
                            materialize::write_full(&sub, &host).map_err(|e| {
                                BuildError::env(format!("preparing a bind mount: {e}"))
                            })?;
                            host.clone()
                        }
                        other => {
                            sub.put(b"f", other.clone())
                                .map_err(|e| BuildError::env(e.to_string()))?;
                            materialize::write_full(&sub, &host).map_err(|e| {
                                BuildError::env(format!("preparing a bind mount: {e}"))
                            })?;
                            host.join("f")
                        }
                    };
                    mounts.push(sb::Mount::Bind {
                        source: path,
                        target: target.clone(),
                        readonly: *read_only,
                    });
                }
            }
        }
        if let Some((name, data)) = &req.script {
            let dir = self.fresh_dir("pipes")?;
            let f = dir.join(name);
            std::fs::write(&f, data).map_err(|e| BuildError::env(e.to_string()))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| BuildError::env(e.to_string()))?;
            mounts.push(sb::Mount::Bind {
                source: dir,
                target: "/dev/pipes".into(),
                readonly: true,
            });
        }
        let network = match req.network {
            kiln_dockerfile::NetworkMode::None => sb::Network::None,
            kiln_dockerfile::NetworkMode::Host => sb::Network::Host,
            kiln_dockerfile::NetworkMode::Default => self.default_network,
        };
        let spec = sb::RunSpec {
            rootfs: sb::Rootfs::Overlay {
                lowers: lowers.clone(),
                upper: upper.clone(),
                work: workdir,
            },
            argv: req.args.clone(),
            env: req.env.clone(),
            cwd: req.cwd.clone(),
            user: req.user.clone(),
            network,
            mounts,
            scratch_dir: scratch,
        };
        let outcome = sb::run(&spec, &mut |bytes| progress.output(bytes)).map_err(|e| {
            let kind = match e {
                sb::Error::User(_) | sb::Error::Spec(_) | sb::Error::Exec { .. } => {
                    ErrorKind::Input
                }
                _ => ErrorKind::Environment,
            };
            BuildError::new(kind, format!("RUN could not start: {e}"))
        })?;
        if !outcome.status.success() {
            let tail = String::from_utf8_lossy(&outcome.output_tail);
            let tail = tail.trim_end();
            return Err(BuildError::new(
                ErrorKind::CommandFailed,
                format!(
                    "RUN {} failed with {}{}",
                    req.args.join(" "),
                    outcome.status,
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!("; last output:\n{tail}")
                    }
                ),
            ));
        }
        let changes = sb::changes(&lowers, &upper)
            .map_err(|e| BuildError::env(format!("reading the RUN's changes: {e}")))?;
        let mut tree = req.tree.clone();
        materialize::apply_upper(&mut tree, &upper)
            .map_err(|e| BuildError::env(format!("reading the RUN's changes: {e}")))?;
        let changes = changes
            .into_iter()
            .filter_map(|c| {
                let kind = match c.kind {
                    sb::ChangeKind::Add => ChangeKind::Add,
                    sb::ChangeKind::Modify => ChangeKind::Modify,
                    sb::ChangeKind::Delete => ChangeKind::Delete,
                    sb::ChangeKind::Unmodified => return None,
                };
                Some(Change {
                    path: c.path.as_os_str().as_encoded_bytes().to_vec(),
                    kind,
                })
            })
            .collect();
        // The upper directory is exactly the new tree over the old lowers.
        let mut cache = self.cache.borrow_mut();
        if let Some(l) = cache.get_mut(&req.stage) {
            l.dirs.insert(0, upper);
            l.tree = tree.clone();
        }
        Ok(RunResult { tree, changes })
    }
}
