//! Inline `# kiln:ignore=RULE` suppression.

mod common;

use common::{expected, found, lint_data, show};
use kiln_lint::{lint_str, LintOptions};
use std::collections::BTreeSet;

fn lint(text: &str) -> kiln_lint::Report {
    lint_str(text, "Dockerfile", None, &LintOptions::default()).unwrap()
}

#[test]
fn comments_above_inside_and_after_silence_their_rules_only() {
    let text = std::fs::read_to_string(lint_data("suppressed/Dockerfile")).unwrap();
    let report = lint(&text);
    assert_eq!(found(&report), expected(&text), "{}", show(&report));
}

#[test]
fn without_the_comments_every_finding_comes_back() {
    let text = std::fs::read_to_string(lint_data("suppressed/Dockerfile"))
        .unwrap()
        .replace("kiln:ignore", "kiln:nothing");
    let report = lint(&text);
    let want: BTreeSet<(String, usize)> = [
        ("KL001", 3),
        ("KL002", 6),
        ("KL006", 6),
        ("KL007", 6),
        ("KL009", 7),
        ("KL011", 8),
        ("KL011", 13),
        ("KL009", 15),
        ("KL012", 17),
        ("KL015", 17),
    ]
    .into_iter()
    .map(|(r, l)| (r.to_string(), l))
    .collect();
    assert_eq!(found(&report), want, "{}", show(&report));
}

#[test]
fn a_comment_two_instructions_up_does_not_reach() {
    let report = lint("# kiln:ignore=KL009\nFROM scratch\nRUN date > /x\n");
    assert_eq!(found(&report), BTreeSet::from([("KL009".to_string(), 3)]));
    let report = lint("FROM scratch\n# kiln:ignore=KL009\nRUN date > /x\n");
    assert!(report.findings.is_empty(), "{}", show(&report));
}

#[test]
fn unknown_rule_names_silence_nothing() {
    let report = lint("FROM scratch\n# kiln:ignore=KL999,not-a-rule\nRUN date > /x\n");
    assert_eq!(found(&report), BTreeSet::from([("KL009".to_string(), 3)]));
}
