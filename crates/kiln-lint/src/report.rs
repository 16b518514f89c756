//! Findings and the three ways to print them: text for people, JSON for
//! scripts, SARIF 2.1.0 for code-scanning tools. Findings are sorted by line
//! then rule id, and JSON objects have sorted keys, so the output is stable.

use crate::rules::{Rule, RuleId, Severity, RULES};
use serde_json::{json, Value};
use std::io::{self, Write};

/// One problem at one instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule that fired.
    pub rule: RuleId,
    /// 1-based first line of the instruction.
    pub line: usize,
    /// 1-based last line of the instruction.
    pub end_line: usize,
    /// What exactly was found.
    pub message: String,
}

impl Finding {
    /// The rule's table entry.
    pub fn rule(&self) -> &'static Rule {
        self.rule.rule()
    }

    /// The rule's severity.
    pub fn severity(&self) -> Severity {
        self.rule().severity
    }
}

/// The findings for one Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The Dockerfile as named on the command line.
    pub file: String,
    /// Sorted by line, then rule id.
    pub findings: Vec<Finding>,
}

fn rule_json(r: &Rule) -> Value {
    json!({
        "id": r.id,
        "slug": r.slug,
        "severity": r.severity.as_str(),
        "title": r.title,
        "breaks": r.breaks,
        "fix": r.fix,
        "reference": r.reference,
    })
}

fn sarif(rules: Vec<Value>, results: Vec<Value>) -> Value {
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "kiln-lint",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://reproducible-builds.org/",
                    "rules": rules,
                }
            },
            "results": results,
        }]
    })
}

fn sarif_rules() -> Vec<Value> {
    RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.slug,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.breaks},
                "help": {"text": r.fix},
                "helpUri": r.reference,
                "defaultConfiguration": {"level": r.severity.sarif_level()},
            })
        })
        .collect()
}

impl Report {
    /// Whether any finding has severity error.
    pub fn has_errors(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity() == Severity::Error)
    }

    /// 1 when any finding is an error, else 0.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.has_errors())
    }

    fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity() == s).count()
    }

    /// `Dockerfile:LINE RULE severity: message` and an indented `fix:` line
    /// per finding, then a summary line.
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        for f in &self.findings {
            let r = f.rule();
            writeln!(
                out,
                "{}:{} {} {}: {}",
                self.file, f.line, r.id, r.severity, f.message
            )?;
            writeln!(out, "  fix: {}", r.fix)?;
        }
        if self.findings.is_empty() {
            writeln!(out, "{}: no findings", self.file)
        } else {
            let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
            writeln!(
                out,
                "{}: {} ({}, {}, {} info)",
                self.file,
                plural(self.findings.len(), "finding"),
                plural(self.count(Severity::Error), "error"),
                plural(self.count(Severity::Warning), "warning"),
                self.count(Severity::Info),
            )
        }
    }

    /// `{"file", "findings": [...], "summary": {...}}`.
    pub fn to_json(&self) -> Value {
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let r = f.rule();
                json!({
                    "rule": r.id,
                    "slug": r.slug,
                    "severity": r.severity.as_str(),
                    "line": f.line,
                    "end_line": f.end_line,
                    "message": f.message,
                    "fix": r.fix,
                    "reference": r.reference,
                })
            })
            .collect();
        json!({
            "file": self.file,
            "findings": findings,
            "summary": {
                "error": self.count(Severity::Error),
                "warning": self.count(Severity::Warning),
                "info": self.count(Severity::Info),
            },
        })
    }

    /// A SARIF 2.1.0 log with one run.
    pub fn to_sarif(&self) -> Value {
        let results = self
            .findings
            .iter()
            .map(|f| {
                let r = f.rule();
                json!({
                    "ruleId": r.id,
                    "ruleIndex": f.rule as usize,
                    "level": r.severity.sarif_level(),
                    "message": {"text": f.message},
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": {"uri": self.file},
                            "region": {"startLine": f.line, "endLine": f.end_line},
                        }
                    }],
                })
            })
            .collect();
        sarif(sarif_rules(), results)
    }
}

/// The rule table for `--list-rules`, as text.
pub fn write_rules_text(out: &mut dyn Write) -> io::Result<()> {
    for r in &RULES {
        writeln!(out, "{} {} ({})", r.id, r.slug, r.severity)?;
        writeln!(out, "  {}", r.title)?;
        writeln!(out, "  breaks: {}", r.breaks)?;
        writeln!(out, "  fix: {}", r.fix)?;
        writeln!(out, "  see: {}", r.reference)?;
    }
    Ok(())
}

/// The rule table as Markdown (the crate's RULES.md).
pub fn rules_markdown() -> String {
    let mut s = String::from(
        "# kiln lint rules\n\nGenerated from the rule table (`kiln lint --list-rules`). \
         Silence a rule for one instruction with `# kiln:ignore=ID` (or its slug) on the line above.\n",
    );
    for r in &RULES {
        s.push_str(&format!(
            "\n## {} `{}` ({})\n\n{}.\n\n- Breaks: {}.\n- Fix: {}.\n- See: <{}>\n",
            r.id, r.slug, r.severity, r.title, r.breaks, r.fix, r.reference
        ));
    }
    s
}

/// The rule table as a JSON array.
pub fn rules_json() -> Value {
    Value::Array(RULES.iter().map(rule_json).collect())
}

/// The rule table as a SARIF log without results.
pub fn rules_sarif() -> Value {
    sarif(sarif_rules(), Vec::new())
}
