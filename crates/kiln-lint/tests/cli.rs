//! `kiln lint` as the binary runs it: [`kiln_lint::run`] with [`LintArgs`],
//! output formats, exit codes and errors.

mod common;

use clap::Parser;
use common::{lint_data, with_git};
use kiln_lint::{run, Format, LintArgs, LintError, RULES};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    lint: LintArgs,
}

fn args(file: &Path, context: &Path, format: Format) -> LintArgs {
    LintArgs {
        file: Some(file.to_path_buf()),
        context: context.to_path_buf(),
        format,
        list_rules: false,
        build_args: Vec::new(),
        build_contexts: Vec::new(),
    }
}

fn case(name: &str) -> PathBuf {
    lint_data(&format!("rules/{name}"))
}

fn run_to_string(a: &LintArgs) -> (i32, String) {
    let mut out = Vec::new();
    let code = run(a, &mut out).unwrap();
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn clap_surface() {
    let cli = Cli::parse_from(["lint"]);
    assert_eq!(cli.lint.file, None);
    assert_eq!(cli.lint.context, PathBuf::from("."));
    assert_eq!(cli.lint.format, Format::Text);
    let cli = Cli::parse_from([
        "lint",
        "-f",
        "ci/Dockerfile",
        "--format",
        "sarif",
        "ctx",
        "--build-arg",
        "A=1",
        "--build-context",
        "b=oci-layout://x",
    ]);
    assert_eq!(cli.lint.file, Some(PathBuf::from("ci/Dockerfile")));
    assert_eq!(cli.lint.context, PathBuf::from("ctx"));
    assert_eq!(cli.lint.format, Format::Sarif);
    assert_eq!(cli.lint.build_args, ["A=1"]);
    assert_eq!(cli.lint.build_contexts, ["b=oci-layout://x"]);
    assert!(Cli::parse_from(["lint", "--list-rules"]).lint.list_rules);
    assert!(Cli::try_parse_from(["lint", "--format", "xml"]).is_err());
}

#[test]
fn text_output_and_exit_code_one_on_errors() {
    let dir = case("KL013-add-url-without-checksum/trigger");
    let file = dir.join("Dockerfile");
    let (code, out) = run_to_string(&args(&file, &dir, Format::Text));
    assert_eq!(code, 1);
    let f = file.display();
    assert_eq!(
        out,
        format!(
            "{f}:3 KL013 error: ADD downloads `https://github.com/krallin/tini/releases/download/v0.19.0/tini-static` without --checksum\n  fix: add `--checksum=sha256:<hex>` to the ADD\n{f}: 1 finding (1 error, 0 warnings, 0 info)\n"
        )
    );
}

#[test]
fn default_dockerfile_is_in_the_context() {
    let dir = case("KL013-add-url-without-checksum/fixed");
    let mut a = args(Path::new("unused"), &dir, Format::Text);
    a.file = None;
    let (code, out) = run_to_string(&a);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!("{}: no findings\n", dir.join("Dockerfile").display())
    );
}

#[test]
fn warnings_alone_exit_zero() {
    let dir = case("KL015-go-build-flags/trigger");
    let (code, out) = run_to_string(&args(&dir.join("Dockerfile"), &dir, Format::Text));
    assert_eq!(code, 0);
    assert!(out.contains(":5 KL015 warning: "), "{out}");
    assert!(
        out.ends_with("2 findings (0 errors, 2 warnings, 0 info)\n"),
        "{out}"
    );
}

#[test]
fn json_is_sorted_by_line_then_rule() {
    let lab = lint_data("classic-lab");
    let ctx = with_git(&lab);
    let (code, out) = run_to_string(&args(&lab.join("Dockerfile"), ctx.path(), Format::Json));
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    let findings = v["findings"].as_array().unwrap();
    let order: Vec<(u64, &str)> = findings
        .iter()
        .map(|f| (f["line"].as_u64().unwrap(), f["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        order,
        [
            (1, "KL001"),
            (4, "KL002"),
            (4, "KL006"),
            (4, "KL007"),
            (5, "KL018"),
            (6, "KL015"),
            (7, "KL009")
        ]
    );
    let first = &findings[0];
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "end_line",
            "fix",
            "line",
            "message",
            "reference",
            "rule",
            "severity",
            "slug"
        ]
    );
    assert_eq!(first["slug"], "floating-base-image");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["end_line"], 1);
    assert_eq!(v["file"], lab.join("Dockerfile").display().to_string());
    assert_eq!(v["summary"]["error"], 6);
    assert_eq!(v["summary"]["warning"], 1);
    assert_eq!(v["summary"]["info"], 0);
    // Same input, same bytes.
    let (_, again) = run_to_string(&args(&lab.join("Dockerfile"), ctx.path(), Format::Json));
    assert_eq!(out, again);
}

#[test]
fn sarif_shape() {
    let dir = case("KL006-apt-lists-left/trigger");
    let (code, out) = run_to_string(&args(&dir.join("Dockerfile"), &dir, Format::Sarif));
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert_eq!(
        v["$schema"],
        "https://json.schemastore.org/sarif-2.1.0.json"
    );
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "kiln-lint");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), RULES.len());
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for (r, line) in results.iter().zip([3, 4]) {
        assert_eq!(r["ruleId"], "KL006");
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], "KL006");
        assert_eq!(rules[idx]["name"], "apt-lists-left");
        assert_eq!(r["level"], "error");
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["region"]["startLine"], line);
        assert_eq!(loc["region"]["endLine"], line);
        assert_eq!(
            loc["artifactLocation"]["uri"],
            dir.join("Dockerfile").display().to_string()
        );
        assert!(r["message"]["text"]
            .as_str()
            .unwrap()
            .contains("/var/lib/apt/lists"));
    }
}

#[test]
fn list_rules_in_every_format() {
    let mut a = args(Path::new("unused"), Path::new("/nonexistent"), Format::Text);
    a.list_rules = true;
    let (code, text) = run_to_string(&a);
    assert_eq!(code, 0);
    for r in &RULES {
        assert!(
            text.contains(&format!("{} {} ({})\n", r.id, r.slug, r.severity)),
            "{}",
            r.id
        );
        assert!(text.contains(&format!("  fix: {}\n", r.fix)));
    }
    a.format = Format::Json;
    let v: Value = serde_json::from_str(&run_to_string(&a).1).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, RULES.iter().map(|r| r.id).collect::<Vec<_>>());
    a.format = Format::Sarif;
    let v: Value = serde_json::from_str(&run_to_string(&a).1).unwrap();
    assert_eq!(
        v["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .len(),
        RULES.len()
    );
    assert_eq!(v["runs"][0]["results"].as_array().unwrap().len(), 0);
}

fn tmp_dockerfile(text: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("Dockerfile"), text).unwrap();
    t
}

fn run_err(a: &LintArgs) -> LintError {
    run(a, &mut Vec::new()).unwrap_err()
}

#[test]
fn malformed_dockerfile_is_an_error_naming_file_and_line() {
    let t = tmp_dockerfile("FROM scratch\nFOO bar\n");
    let file = t.path().join("Dockerfile");
    let e = run_err(&args(&file, t.path(), Format::Text));
    assert!(matches!(e, LintError::Parse(_)));
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2: unknown instruction: FOO (did you mean FROM?)",
            file.display()
        )
    );

    let t = tmp_dockerfile("FROM scratch\nRUN --mount=type=bogus true\n");
    let e = run_err(&args(&t.path().join("Dockerfile"), t.path(), Format::Text));
    assert!(e.to_string().contains(":2: "), "{e}");

    let t = tmp_dockerfile("FROM ${A:?needs-A}\n");
    let e = run_err(&args(&t.path().join("Dockerfile"), t.path(), Format::Text));
    assert!(matches!(e, LintError::Expand { line: 1, .. }), "{e:?}");
}

#[test]
fn unreadable_inputs_and_bad_flags_are_errors() {
    let t = tmp_dockerfile("FROM scratch\n");
    let missing = t.path().join("nope/Dockerfile");
    let e = run_err(&args(&missing, t.path(), Format::Text));
    assert!(
        e.to_string()
            .starts_with(&format!("cannot read Dockerfile {}", missing.display())),
        "{e}"
    );

    let e = run_err(&args(
        &t.path().join("Dockerfile"),
        &t.path().join("no-such-dir"),
        Format::Text,
    ));
    assert!(matches!(e, LintError::Context { .. }), "{e:?}");

    let mut a = args(&t.path().join("Dockerfile"), t.path(), Format::Text);
    a.build_args = vec!["NOEQUALS".into()];
    let e = run_err(&a);
    assert_eq!(
        e.to_string(),
        "--build-arg \"NOEQUALS\": expected NAME=VALUE"
    );

    let bad = t.path().join("bad.Dockerfile");
    std::fs::write(&bad, b"FROM scratch\nRUN echo \xff\n").unwrap();
    let e = run_err(&args(&bad, t.path(), Format::Text));
    assert_eq!(
        e.to_string(),
        format!("{}:2: invalid UTF-8 in Dockerfile", bad.display())
    );
}

#[test]
fn build_args_and_named_contexts_resolve_bases() {
    let t = tmp_dockerfile("ARG BASE=debian:12\nFROM ${BASE}\n");
    let file = t.path().join("Dockerfile");
    let (code, out) = run_to_string(&args(&file, t.path(), Format::Text));
    assert_eq!(code, 1, "{out}");
    let mut a = args(&file, t.path(), Format::Text);
    a.build_args = vec![format!(
        "BASE=debian:12@sha256:{}",
        "81d93757457f988523814ae0009837ae893f38d3fe123f2c37896f118b4c7804"
    )];
    assert_eq!(run_to_string(&a).0, 0);

    let t = tmp_dockerfile("FROM busybox\n");
    let mut a = args(&t.path().join("Dockerfile"), t.path(), Format::Text);
    a.build_contexts = vec!["busybox=docker-image://busybox:1.36".into()];
    let (code, out) = run_to_string(&a);
    assert_eq!(code, 1);
    assert!(
        out.contains("named context `docker-image://busybox:1.36`, which has no digest"),
        "{out}"
    );
    a.build_contexts = vec!["busybox=/srv/rootfs".into()];
    assert_eq!(run_to_string(&a).0, 0);
}

#[test]
fn dockerignore_next_to_the_dockerfile_wins() {
    let t = tmp_dockerfile("FROM scratch\nCOPY . /src/\n");
    let ctx = with_git(t.path());
    let file = ctx.path().join("Dockerfile");
    assert_eq!(run_to_string(&args(&file, ctx.path(), Format::Text)).0, 1);
    std::fs::write(ctx.path().join("Dockerfile.dockerignore"), ".git\n").unwrap();
    assert_eq!(run_to_string(&args(&file, ctx.path(), Format::Text)).0, 0);
    // An exception that brings .git back.
    std::fs::write(
        ctx.path().join("Dockerfile.dockerignore"),
        "*\n!.git\n!src\n",
    )
    .unwrap();
    assert_eq!(run_to_string(&args(&file, ctx.path(), Format::Text)).0, 1);
}

#[test]
fn rules_md_matches_the_rule_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("RULES.md");
    let want = kiln_lint::rules_markdown();
    if std::env::var_os("KILN_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "RULES.md is stale: rerun this test with KILN_BLESS=1"
    );
}
