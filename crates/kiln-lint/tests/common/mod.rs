//! Shared helpers for the corpus tests.

#![allow(dead_code)]

use kiln_lint::{lint_str, BuildContext, LintOptions, Report};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `testdata/lint/...`.
pub fn lint_data(rel: &str) -> PathBuf {
    repo().join("testdata/lint").join(rel)
}

/// Values of `# key: value` header comments.
pub fn header(text: &str, key: &str) -> Option<String> {
    let prefix = format!("# {key}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
}

/// `# expect: KL001 at 3, 7; KL002 at 9` as `{("KL001", 3), ("KL001", 7), ("KL002", 9)}`.
pub fn expected(text: &str) -> BTreeSet<(String, usize)> {
    let Some(v) = header(text, "expect") else {
        return BTreeSet::new();
    };
    let mut out = BTreeSet::new();
    for part in v.split(';') {
        let (rule, lines) = part
            .split_once(" at ")
            .expect("expect header: RULE at LINES");
        for l in lines.split(',') {
            out.insert((
                rule.trim().to_string(),
                l.trim().parse().expect("line number"),
            ));
        }
    }
    out
}

/// (rule id, line) of every finding.
pub fn found(r: &Report) -> BTreeSet<(String, usize)> {
    r.findings
        .iter()
        .map(|f| (f.rule().id.to_string(), f.line))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A copy of `dir` with a `.git` directory in it (git cannot commit one).
pub fn with_git(dir: &Path) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(dir, t.path());
    let git = t.path().join(".git");
    fs::create_dir_all(git.join("refs/heads")).unwrap();
    fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    fs::write(
        git.join("refs/heads/main"),
        "3637d1b15a13fc3cdd0c16fcf3be0845ae68f53d\n",
    )
    .unwrap();
    t
}

/// Lints `dir/Dockerfile` with `dir` as the build context (a copy with
/// `.git` when the file says `# context: .git`).
pub fn lint_case(dir: &Path, opts: &LintOptions) -> Report {
    let path = dir.join("Dockerfile");
    let text = fs::read_to_string(&path).unwrap();
    let tmp;
    let context = if header(&text, "context").as_deref() == Some(".git") {
        tmp = with_git(dir);
        tmp.path().to_path_buf()
    } else {
        dir.to_path_buf()
    };
    let ctx = BuildContext::open(&context, &context.join("Dockerfile")).unwrap();
    lint_str(&text, "Dockerfile", Some(&ctx), opts)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Renders findings for assertion messages.
pub fn show(r: &Report) -> String {
    let mut out = Vec::new();
    r.write_text(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}
