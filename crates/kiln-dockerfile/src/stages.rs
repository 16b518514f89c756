//! The stage graph: which stage or image each FROM, `COPY --from` and
//! `RUN --mount from=` refers to, the `--target`, and what it depends on.
//! Follows BuildKit v0.19.0's `dockerfile2llb` resolution rules.

use crate::gocompat::strconv::{atoi, quote};
use crate::instruction::Instruction;
use crate::lex::EnvLookup;
use crate::mount::parse_mount;
use crate::{Dockerfile, ParseError};
use std::collections::BTreeSet;

/// What a FROM, `--from` or mount `from=` refers to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StageRef {
    /// A stage of this Dockerfile, by index.
    Stage(usize),
    /// Not a stage: an image reference (or `scratch`).
    Image(String),
}

/// Stage-graph errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// A problem at a line of the Dockerfile.
    #[error(transparent)]
    At(#[from] ParseError),
    /// `--target` names no stage.
    #[error("target stage {} could not be found (stages: {})", quote(.target), .stages.join(", "))]
    UnknownTarget {
        /// The requested target.
        target: String,
        /// The names of the stages that exist.
        stages: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Dep {
    target: StageRef,
    line: usize,
    end_line: usize,
    /// The reference as written, for messages.
    written: String,
    /// Mount target, for mount dependencies.
    mount_target: Option<String>,
}

/// Resolved references between the stages of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageGraph {
    file: String,
    names: Vec<Option<String>>,
    images: Vec<String>,
    platforms: Vec<Option<String>>,
    bases: Vec<StageRef>,
    deps: Vec<Vec<Dep>>,
}

impl StageGraph {
    /// Resolves every reference. `meta` is the meta-arg environment
    /// ([`Dockerfile::meta_env`]) FROM lines are expanded with.
    pub fn new(df: &Dockerfile, meta: &dyn EnvLookup) -> Result<StageGraph, ParseError> {
        let file_name = df.file.as_str();
        let lex = df.lexer();
        let err = |line, end_line, message: String| ParseError {
            file: file_name.to_string(),
            line,
            end_line,
            message,
        };
        let n = df.stages.len();
        let mut g = StageGraph {
            file: file_name.to_string(),
            names: df.stages.iter().map(|s| s.name.clone()).collect(),
            images: Vec::with_capacity(n),
            platforms: Vec::with_capacity(n),
            bases: Vec::with_capacity(n),
            deps: Vec::with_capacity(n),
        };
        for (i, st) in df.stages.iter().enumerate() {
            let from = st
                .from
                .expand(&lex, meta)
                .map_err(|e| err(st.line, st.end_line, e.to_string()))?;
            // Only earlier stages can be a base, and the base name is compared
            // as written (stage names are stored lower-cased).
            let base = match g.names[..i]
                .iter()
                .position(|n| n.as_deref() == Some(from.image.as_str()))
            {
                Some(j) => StageRef::Stage(j),
                None => StageRef::Image(from.image.clone()),
            };
            g.images.push(from.image);
            g.platforms.push(from.platform);
            g.bases.push(base);
        }
        for st in &df.stages {
            let mut deps = Vec::new();
            for c in &st.commands {
                match &c.instruction {
                    Instruction::Copy(cp) => {
                        if let Some(from) = &cp.from {
                            let target = match atoi(from) {
                                Some(idx) if idx >= 0 && (idx as usize) < n => {
                                    StageRef::Stage(idx as usize)
                                }
                                Some(idx) => {
                                    return Err(err(
                                        c.line,
                                        c.end_line,
                                        format!("invalid stage index {idx}"),
                                    ))
                                }
                                None => match df.stage_by_name(from) {
                                    Some(j) => StageRef::Stage(j),
                                    None => StageRef::Image(from.clone()),
                                },
                            };
                            deps.push(Dep {
                                target,
                                line: c.line,
                                end_line: c.end_line,
                                written: from.clone(),
                                mount_target: None,
                            });
                        }
                    }
                    Instruction::Run(run) => {
                        for spec in &run.mounts {
                            let m =
                                parse_mount(spec, None).map_err(|e| err(c.line, c.end_line, e))?;
                            // The target (for messages) as far as it is known before expansion.
                            let mut same = |v: &str| Ok(v.to_string());
                            let mount_target = parse_mount(spec, Some(&mut same))
                                .ok()
                                .and_then(|m| m.target);
                            // BuildKit looks mounts up by name only; no `from` means `scratch`.
                            let from = m.from.unwrap_or_else(|| "scratch".to_string());
                            let target = match df.stage_by_name(&from) {
                                Some(j) => StageRef::Stage(j),
                                None => StageRef::Image(from.clone()),
                            };
                            deps.push(Dep {
                                target,
                                line: c.line,
                                end_line: c.end_line,
                                written: from,
                                mount_target: Some(mount_target.unwrap_or_default()),
                            });
                        }
                    }
                    _ => {}
                }
            }
            g.deps.push(deps);
        }
        g.check_cycles()?;
        Ok(g)
    }

    /// BuildKit's stage name for messages: the name, or `stage-N`.
    fn display_name(&self, i: usize) -> String {
        if self.names.len() == 1 {
            return String::new();
        }
        self.names[i]
            .clone()
            .unwrap_or_else(|| format!("stage-{i}"))
    }

    fn check_cycles(&self) -> Result<(), ParseError> {
        let n = self.names.len();
        let mut visited = vec![false; n];
        let mut on_path = vec![false; n];
        // Iterative DFS over `--from`/mount edges (BuildKit does not count FROM bases).
        fn visit(
            g: &StageGraph,
            s: usize,
            visited: &mut [bool],
            on_path: &mut [bool],
        ) -> Option<usize> {
            if visited[s] {
                return None;
            }
            visited[s] = true;
            on_path[s] = true;
            for d in &g.deps[s] {
                if let StageRef::Stage(t) = d.target {
                    if on_path[t] {
                        return Some(d.line);
                    }
                    if let Some(l) = visit(g, t, visited, on_path) {
                        return Some(l);
                    }
                }
            }
            on_path[s] = false;
            None
        }
        for s in 0..n {
            if let Some(line) = visit(self, s, &mut visited, &mut on_path) {
                return Err(ParseError {
                    file: self.file.clone(),
                    line,
                    end_line: line,
                    message: format!(
                        "circular dependency detected on stage: {}",
                        self.display_name(s)
                    ),
                });
            }
        }
        Ok(())
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Always false: a Dockerfile has at least one stage.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// What stage `i` is built on.
    pub fn base(&self, i: usize) -> &StageRef {
        &self.bases[i]
    }

    /// Stage `i`'s FROM image after meta-arg expansion.
    pub fn from_image(&self, i: usize) -> &str {
        &self.images[i]
    }

    /// Stage `i`'s `--platform` after meta-arg expansion.
    pub fn platform(&self, i: usize) -> Option<&str> {
        self.platforms[i].as_deref()
    }

    /// The `--from` / mount references of stage `i`, in order.
    pub fn references(&self, i: usize) -> Vec<StageRef> {
        self.deps[i].iter().map(|d| d.target.clone()).collect()
    }

    /// For each stage, the last of `stages` built on it (`FROM`), and with `references`
    /// also the last that copies or mounts from it: after that one, its state is no longer
    /// needed.
    pub fn last_users(&self, stages: &BTreeSet<usize>, references: bool) -> Vec<Option<usize>> {
        let mut last = vec![None; self.bases.len()];
        for &c in stages {
            let refs = self.deps[c]
                .iter()
                .map(|d| &d.target)
                .filter(|_| references);
            for r in refs.chain([&self.bases[c]]) {
                if let StageRef::Stage(s) = *r {
                    last[s] = last[s].max(Some(c));
                }
            }
        }
        last
    }

    /// The stage to build: the one named `target` (case-insensitive), or the last.
    pub fn target(&self, target: Option<&str>) -> Result<usize, GraphError> {
        let Some(t) = target.filter(|t| !t.is_empty()) else {
            return Ok(self.names.len() - 1);
        };
        let lower = t.to_lowercase();
        self.names
            .iter()
            .position(|n| n.as_deref() == Some(lower.as_str()))
            .ok_or_else(|| GraphError::UnknownTarget {
                target: t.to_string(),
                stages: self.names.iter().flatten().cloned().collect(),
            })
    }

    /// The stages building `target` needs, `target` included, after checking
    /// that each needed stage only refers to stages defined before it.
    pub fn dependencies(&self, target: usize) -> Result<BTreeSet<usize>, GraphError> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(s) = todo.pop() {
            if !seen.insert(s) {
                continue;
            }
            if let StageRef::Stage(b) = self.bases[s] {
                todo.push(b);
            }
            for d in &self.deps[s] {
                if let StageRef::Stage(t) = d.target {
                    todo.push(t);
                }
            }
        }
        for &s in &seen {
            for d in &self.deps[s] {
                let StageRef::Stage(t) = d.target else {
                    continue;
                };
                if t > s {
                    let message = match &d.mount_target {
                        None => format!(
                            "cannot copy from stage {}, it needs to be defined before current stage {}",
                            quote(&d.written),
                            quote(&self.display_name(s))
                        ),
                        Some(mt) => format!(
                            "cannot mount from stage {} to {}, stage needs to be defined before current command",
                            quote(&d.written),
                            quote(mt)
                        ),
                    };
                    return Err(GraphError::At(ParseError {
                        file: self.file.clone(),
                        line: d.line,
                        end_line: d.end_line,
                        message,
                    }));
                }
            }
        }
        Ok(seen)
    }

    /// The images (not stages) that building `target` pulls: FROM bases and
    /// `--from`/mount sources, sorted; `scratch` left out.
    pub fn images(&self, target: usize) -> Result<BTreeSet<String>, GraphError> {
        let mut out = BTreeSet::new();
        for s in self.dependencies(target)? {
            let refs =
                std::iter::once(&self.bases[s]).chain(self.deps[s].iter().map(|d| &d.target));
            for r in refs {
                if let StageRef::Image(img) = r {
                    if img != "scratch" {
                        out.insert(img.clone());
                    }
                }
            }
        }
        Ok(out)
    }
}
