//! `kiln`: build bit-for-bit reproducible container images without a daemon.
//!
//! This binary is the command line only; the work is done by the crates under `crates/`.

mod cmd;
mod fail;
mod progress;

use clap::{Parser, Subcommand};

use crate::fail::Failure;

const ABOUT: &str = "Daemonless builder of bit-for-bit reproducible container images";

const LONG_ABOUT: &str = "\
kiln reads a Dockerfile and a build context and writes the image itself: sorted tar entries,
mtimes clamped to SOURCE_DATE_EPOCH, normalised permissions, Go-identical gzip. Two builds of the
same source give the same image digest, anywhere, any day, and the same digest BuildKit v0.19.0
gives with rewrite-timestamp=true.

Exit codes: 0 success; 1 a check failed (digest mismatch, images differ); 2 bad input or usage;
3 environment problem (sandbox unavailable, registry unreachable).";

#[derive(Parser)]
#[command(name = "kiln", version, about = ABOUT, long_about = LONG_ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a Dockerfile and a context
    Build(Box<cmd::build::BuildArgs>),
    /// Show an image's index, manifest, config and digests, and check its digest
    Analyze(cmd::analyze::AnalyzeArgs),
    /// Find sources of non-determinism in a Dockerfile before they break a build
    Lint(kiln_lint::LintArgs),
    /// Download an image from a registry into a docker/OCI tarball or an OCI layout
    Pull(Box<cmd::pull::PullArgs>),
    /// Upload a docker/OCI tarball or an OCI layout to a registry
    Push(cmd::push::PushArgs),
    /// Rebuild natively and compare, layer by layer, with an image BuildKit built
    Crosscheck(Box<cmd::crosscheck::CrosscheckArgs>),
    /// Repack an image into kiln's canonical, reproducible form
    Normalize(Box<cmd::normalize::NormalizeArgs>),
    /// Show where two images differ (exit 1 when they do)
    Diff(Box<cmd::diff::DiffArgs>),
    /// Rebuild and check the result against an expected digest or image
    Verify(Box<cmd::verify::VerifyArgs>),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap: help/version exit 0; usage errors exit 2 per kiln's contract.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let result = match cli.command {
        Command::Build(a) => cmd::build::run(*a),
        Command::Analyze(a) => cmd::analyze::run(a),
        Command::Lint(a) => cmd::lint::run(a),
        Command::Pull(a) => cmd::pull::run(*a),
        Command::Push(a) => cmd::push::run(a),
        Command::Crosscheck(a) => cmd::crosscheck::run(*a),
        Command::Normalize(a) => cmd::normalize::run(*a),
        Command::Diff(a) => cmd::diff::run(*a),
        Command::Verify(a) => cmd::verify::run(*a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(Failure { code, message }) => {
            eprintln!("error: {message}");
            std::process::exit(code);
        }
    }
}
