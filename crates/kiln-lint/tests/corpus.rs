//! The rule corpus (`testdata/lint/rules/<ID>-<slug>/{trigger,fixed}`), the
//! classic non-reproducible lab Dockerfile, and BuildKit's fixture
//! Dockerfiles, which must produce no findings.

mod common;

use common::{expected, found, lint_case, lint_data, repo, show};
use kiln_lint::{LintOptions, RuleId, RULES};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

fn cases() -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = fs::read_dir(lint_data("rules"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), e.path())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_rule_has_a_case() {
    let names: Vec<String> = cases().into_iter().map(|(n, _)| n).collect();
    let want: Vec<String> = RULES
        .iter()
        .map(|r| format!("{}-{}", r.id, r.slug))
        .collect();
    assert_eq!(names, want);
}

#[test]
fn trigger_files_yield_exactly_their_rule_at_the_right_lines() {
    for (name, dir) in cases() {
        let dir = dir.join("trigger");
        let text = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let want = expected(&text);
        assert!(!want.is_empty(), "{name}: no `# expect:` header");
        let id = &name[..5];
        assert!(
            want.iter().all(|(r, _)| r == id),
            "{name}: header names another rule"
        );
        let report = lint_case(&dir, &LintOptions::default());
        assert_eq!(found(&report), want, "{name}:\n{}", show(&report));
        // One finding per instruction and rule.
        assert_eq!(
            report.findings.len(),
            want.len(),
            "{name}:\n{}",
            show(&report)
        );
    }
}

#[test]
fn fixed_twins_yield_nothing() {
    for (name, dir) in cases() {
        let report = lint_case(&dir.join("fixed"), &LintOptions::default());
        assert!(report.findings.is_empty(), "{name}:\n{}", show(&report));
    }
}

#[test]
fn trigger_messages_say_what_was_seen() {
    let msg = |case: &str, line: usize| {
        let r = lint_case(
            &lint_data(&format!("rules/{case}/trigger")),
            &LintOptions::default(),
        );
        r.findings
            .into_iter()
            .find(|f| f.line == line)
            .map(|f| f.message)
            .unwrap_or_default()
    };
    assert_eq!(
        msg("KL001-floating-base-image", 5),
        "FROM `golang:${GO_VERSION}` (= `golang:1.22`) names the tag `1.22`, which can move; it has no digest"
    );
    assert_eq!(
        msg("KL001-floating-base-image", 7),
        "FROM `alpine` has no tag (so `latest`) and no digest"
    );
    assert_eq!(
        msg("KL002-apt-unpinned", 3),
        "`apt-get install` of ca-certificates without a version pin or a snapshot mirror"
    );
    assert_eq!(
        msg("KL005-pip-unpinned", 6),
        "`pip install` of requests>=2.31 (in requirements.txt) without `==` pins or --require-hashes"
    );
    assert_eq!(
        msg("KL007-package-logs-left", 3),
        "`apt-get` leaves /var/log/apt/, /var/log/dpkg.log and /var/cache/ldconfig/aux-cache in the layer"
    );
    assert_eq!(
        msg("KL008-shadow-last-change", 4),
        "`useradd` writes the build day into /etc/shadow: the backup /etc/shadow- is not removed"
    );
    assert_eq!(msg("KL009-clock", 3), "reads the wall clock: `$(date)`");
    assert_eq!(
        msg("KL012-host-identity", 4),
        "reads the identity of the machine that runs the build: `uname -r` and $HOSTNAME"
    );
    assert_eq!(
        msg("KL005-pip-unpinned", 7),
        "`python3 -m pip install` of pip and flask>=3 without `==` pins or --require-hashes"
    );
    assert_eq!(
        msg("KL014-git-not-commit", 4),
        "`git clone https://github.com/golang/example.git` checks out `master` (a branch or tag), and no commit is checked out after it"
    );
    assert_eq!(
        msg("KL018-context-vcs-leak", 4),
        "COPY copies .git from the build context into the image: there is no .dockerignore"
    );
}

#[test]
fn classic_lab_yields_one_finding_per_mistake() {
    let dir = lint_data("classic-lab");
    let ctx_dir = common::with_git(&dir);
    let text = fs::read_to_string(dir.join("Dockerfile")).unwrap();
    let ctx =
        kiln_lint::BuildContext::open(ctx_dir.path(), &ctx_dir.path().join("Dockerfile")).unwrap();
    let report =
        kiln_lint::lint_str(&text, "Dockerfile", Some(&ctx), &LintOptions::default()).unwrap();
    let want: BTreeSet<(String, usize)> = [
        // FROM golang:latest
        ("KL001", 1),
        // apt-get install without pins, lists and logs left behind
        ("KL002", 4),
        ("KL006", 4),
        ("KL007", 4),
        // COPY . . with .git in the context and no .dockerignore
        ("KL018", 5),
        // go build without -trimpath / -buildid=
        ("KL015", 6),
        // echo "Built at $(date)"
        ("KL009", 7),
    ]
    .into_iter()
    .map(|(r, l)| (r.to_string(), l))
    .collect();
    assert_eq!(found(&report), want, "{}", show(&report));
    assert_eq!(report.exit_code(), 1);
}

/// The named contexts BuildKit was given for each fixture (from its BUILD.txt).
fn fixture_options(case: &str) -> LintOptions {
    let mut opts = LintOptions::default();
    if case == "busybox-run-ocilayout" {
        opts.build_contexts = BTreeMap::from([(
            "busybox".to_string(),
            "oci-layout://base@sha256:3f0408471efe0ab36280f5435d6851b5d1ad275341c84ab21349f03cd4f4e9c6"
                .to_string(),
        )]);
    }
    opts
}

#[test]
fn buildkit_fixture_dockerfiles_yield_nothing() {
    let mut seen = 0;
    for base in ["testdata/fixtures", "testdata/dockerfile/fixtures"] {
        for e in fs::read_dir(repo().join(base)).unwrap() {
            let dir = e.unwrap().path();
            if !dir.join("Dockerfile").is_file() {
                continue;
            }
            let case = dir.file_name().unwrap().to_string_lossy().into_owned();
            let report = lint_case(&dir, &fixture_options(&case));
            assert!(
                report.findings.is_empty(),
                "{base}/{case}:\n{}",
                show(&report)
            );
            seen += 1;
        }
    }
    assert!(seen >= 24, "only {seen} fixture Dockerfiles found");
}

#[test]
fn ocilayout_fixture_without_its_named_context_is_a_floating_tag() {
    let dir = repo().join("testdata/fixtures/busybox-run-ocilayout");
    let report = lint_case(&dir, &LintOptions::default());
    assert_eq!(report.findings.len(), 1, "{}", show(&report));
    assert_eq!(report.findings[0].rule, RuleId::FloatingBaseImage);
    assert_eq!(report.findings[0].line, 1);
}
