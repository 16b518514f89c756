//! The build context as the linter sees it: which `.dockerignore` applies,
//! whether a path would be sent to the builder, and small file reads (a
//! requirements file, a sources.list being copied in).

use crate::LintError;
use kiln_dockerfile::{find_dockerignore, IgnoreMatcher};
use std::path::{Component, Path, PathBuf};

/// A build context directory and its ignore rules.
#[derive(Debug, Clone)]
pub struct BuildContext {
    root: PathBuf,
    ignore: Option<IgnoreMatcher>,
    ignore_file: Option<PathBuf>,
}

/// Files larger than this are not read for content checks.
const MAX_READ: u64 = 1 << 20;

impl BuildContext {
    /// Opens `root`, using the `.dockerignore` BuildKit would pick for `dockerfile`.
    pub fn open(root: &Path, dockerfile: &Path) -> Result<BuildContext, LintError> {
        if !root.is_dir() {
            return Err(LintError::Context {
                path: root.to_path_buf(),
                message: "is not a directory".into(),
            });
        }
        let ignore_file = find_dockerignore(dockerfile, root);
        let ignore = match &ignore_file {
            None => None,
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| LintError::Context {
                    path: p.clone(),
                    message: format!("cannot read: {e}"),
                })?;
                Some(IgnoreMatcher::parse(&text).map_err(|e| LintError::Context {
                    path: p.clone(),
                    message: e.to_string(),
                })?)
            }
        };
        Ok(BuildContext {
            root: root.to_path_buf(),
            ignore,
            ignore_file,
        })
    }

    /// The `.dockerignore` in use, if any.
    pub fn ignore_file(&self) -> Option<&Path> {
        self.ignore_file.as_deref()
    }

    /// `rel` made relative to the context root, `None` when it escapes it.
    fn clean(rel: &str) -> Option<String> {
        let mut parts: Vec<&str> = Vec::new();
        for c in Path::new(rel).components() {
            match c {
                Component::Normal(s) => parts.push(s.to_str()?),
                Component::ParentDir => {
                    parts.pop()?;
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        Some(parts.join("/"))
    }

    /// Whether `rel` (a path in the context) is left out by `.dockerignore`.
    pub fn is_excluded(&self, rel: &str, is_dir: bool) -> bool {
        match (&self.ignore, Self::clean(rel)) {
            (Some(m), Some(p)) if !p.is_empty() => m.is_excluded(&p, is_dir),
            _ => false,
        }
    }

    /// The directory `rel` of the context, if it exists.
    pub fn dir(&self, rel: &str) -> Option<PathBuf> {
        let p = self.root.join(Self::clean(rel)?);
        p.is_dir().then_some(p)
    }

    /// The text of the context file `rel`, if it exists, is sent to the
    /// builder and is small enough to read.
    pub fn read(&self, rel: &str) -> Option<String> {
        let clean = Self::clean(rel)?;
        if clean.is_empty() || self.is_excluded(&clean, false) {
            return None;
        }
        let path = self.root.join(&clean);
        let meta = std::fs::metadata(&path).ok()?;
        if !meta.is_file() || meta.len() > MAX_READ {
            return None;
        }
        std::fs::read_to_string(path).ok()
    }
}
