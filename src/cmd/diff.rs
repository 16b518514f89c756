//! `kiln diff`: where two images differ.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use kiln_diff::{Input, Options, Report};
use kiln_normalize::OpenedImage;

use crate::cmd::args::RegistryArgs;
use crate::fail::{CliResult, Failure};

#[derive(Args, Debug)]
#[command(after_long_help = DIFF_HELP)]
pub struct DiffArgs {
    /// First image (tarball, OCI layout, or docker://HOST/NAME@sha256:...)
    pub image_a: String,

    /// Second image
    pub image_b: String,

    /// Ignore what does not change the root file system a container sees: timestamps,
    /// history, layer boundaries, compression, tar dialect and entry order
    #[arg(long)]
    pub semantic: bool,

    /// Write both sides of each differing file (and report.json) into DIR
    #[arg(long = "report-dir", value_name = "DIR")]
    pub report_dir: Option<PathBuf>,

    /// Print the differences as JSON
    #[arg(long)]
    pub json: bool,

    /// The image to take from multi-platform inputs, os/arch[/variant] (default: this
    /// machine's)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    /// Layers read at once [default: the number of CPUs]
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

const DIFF_HELP: &str = "\
Output: a table TYPE NAME INPUT-0 INPUT-1, one row per difference (Index, Manifest and
Config rows name a JSON field; Layer rows a layer; File rows a path, prefixed by its layer
unless --semantic), nothing when the images are equal.

Exit codes: 0 equal, 1 different, 2 bad input, 3 environment problem.

Examples:
  kiln diff a.tar b.tar
  kiln diff --semantic --report-dir /tmp/diff ours.tar docker://registry.example/app@sha256:...
  diff -ru /tmp/diff/input-0 /tmp/diff/input-1";

/// Prints to stdout, ignoring a closed pipe (`kiln diff ... | head`).
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Compares two opened images.
pub fn compare(
    a: &OpenedImage,
    b: &OpenedImage,
    semantic: bool,
    jobs: Option<usize>,
) -> Result<Report, Failure> {
    let jobs = jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    Ok(kiln_diff::diff(
        &Input {
            name: &a.name,
            source: &a.source,
            image: &a.image,
        },
        &Input {
            name: &b.name,
            source: &b.source,
            image: &b.image,
        },
        &Options { semantic, jobs },
    )?)
}

pub fn run(a: DiffArgs) -> CliResult {
    if a.jobs == Some(0) {
        return Err(Failure::input("--jobs must be at least 1"));
    }
    let input = a.registry.input_options(a.platform.as_deref())?;
    let x = kiln_normalize::open_image(&a.image_a, &input)?;
    let y = kiln_normalize::open_image(&a.image_b, &input)?;
    let report = compare(&x, &y, a.semantic, a.jobs)?;
    if let Some(dir) = &a.report_dir {
        let inputs = [
            &Input {
                name: &x.name,
                source: &x.source,
                image: &x.image,
            },
            &Input {
                name: &y.name,
                source: &y.source,
                image: &y.image,
            },
        ];
        let n = kiln_diff::write_report_dir(dir, inputs, &report)?;
        eprintln!("report: {n} differing files written to {}", dir.display());
    }
    if a.json {
        print(&format!("{}\n", report.json()));
    } else if !report.equal {
        print(&report.table());
    }
    Ok(if report.equal { 0 } else { 1 })
}
