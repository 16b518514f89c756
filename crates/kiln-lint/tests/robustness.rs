//! Bad or truncated input never panics: every prefix of every corpus
//! Dockerfile either lints or is a `LintError`.

mod common;

use kiln_lint::{lint_str, shell, LintOptions};
use std::path::Path;

fn dockerfiles(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            dockerfiles(&p, out);
        } else if p.file_name().is_some_and(|n| n == "Dockerfile") {
            out.push(std::fs::read_to_string(&p).unwrap());
        }
    }
}

#[test]
fn every_prefix_of_the_corpus_lints_or_errors() {
    let mut files = Vec::new();
    dockerfiles(&common::lint_data(""), &mut files);
    assert!(files.len() >= 40);
    let mut linted = 0;
    for text in &files {
        let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        for &end in &bounds {
            if lint_str(&text[..end], "Dockerfile", None, &LintOptions::default()).is_ok() {
                linted += 1;
            }
        }
    }
    assert!(linted > 1000, "{linted}");
}

#[test]
fn every_prefix_of_tricky_shell_parses() {
    let script = r#"set -eux; A="$(printf '%s' "a\"b" | tr -d \")" B=`echo \`x\``; \
        for f in $(ls /x); do case "$f" in *.deb) dpkg -i "$f";; esac; done && \
        cat <<-'EOF' | sh -c 'read x; echo "$x"' >/dev/null 2>&1 || { echo ${A:-$((1+2))}; } &
	body $(not a command)
	EOF
        sudo -E env -u X Y=1 nice -n 5 timeout 5 xargs -0 -n1 bash -ec 'date' < /dev/null
        echo $'ansi\'quote' "${x//a/b}" ~user/{a,b} #tail comment"#;
    for (end, _) in script.char_indices() {
        let _ = shell::parse(&script[..end]);
    }
    let s = shell::parse(script);
    let names: Vec<&str> = s.commands.iter().map(|c| c.name()).collect();
    assert!(names.contains(&"dpkg"), "{names:?}");
    assert!(names.contains(&"date"), "{names:?}");
    assert!(!names.contains(&"not"), "heredoc body is data: {names:?}");
    assert_eq!(s.comments.last().map(String::as_str), Some("tail comment"));
}
