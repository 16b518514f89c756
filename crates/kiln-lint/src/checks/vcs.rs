//! Version-control metadata copied from the build context (KL018).

use super::Problems;
use crate::context::BuildContext;
use crate::rules::RuleId;

const VCS_DIRS: &[&str] = &[".git", ".hg", ".svn"];

/// Checks the (expanded) context sources of a COPY/ADD.
pub(crate) fn check_copy(
    instruction: &str,
    srcs: &[String],
    ctx: &BuildContext,
    out: &mut Problems,
) {
    let mut leaks = Vec::new();
    for src in srcs {
        if src.contains("://") || src.starts_with("git@") {
            continue;
        }
        let mut rel = src.trim_start_matches('/');
        while let Some(r) = rel.strip_prefix("./") {
            rel = r;
        }
        let rel = rel.trim_end_matches('/');
        // A glob copies a directory's entries, `*` those of the root.
        let rel = match rel {
            "." | "*" | "" => "",
            r if r.contains(['*', '?', '[']) => continue,
            r => r,
        };
        let Some(dir) = ctx.dir(rel) else {
            continue;
        };
        for vcs in VCS_DIRS {
            let path = dir.join(vcs);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let shown = if rel.is_empty() {
                vcs.to_string()
            } else {
                format!("{rel}/{vcs}")
            };
            if !ctx.is_excluded(&shown, meta.is_dir()) {
                leaks.push(shown);
            }
        }
    }
    super::dedup(&mut leaks);
    if leaks.is_empty() {
        return;
    }
    let why = match ctx.ignore_file() {
        None => "there is no .dockerignore".to_string(),
        Some(p) => format!(
            "{} does not exclude it",
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        ),
    };
    out.add(
        RuleId::ContextVcsLeak,
        format!(
            "{instruction} copies {} from the build context into the image: {why}",
            super::list(&leaks)
        ),
    );
}
