//! `kiln lint`: the rules live in the kiln-lint crate; this maps its result to exit codes.

use crate::fail::{CliResult, Failure};

pub fn run(a: kiln_lint::LintArgs) -> CliResult {
    let mut out = std::io::stdout().lock();
    kiln_lint::run(&a, &mut out).map_err(|e| Failure::input(e.to_string()))
}
