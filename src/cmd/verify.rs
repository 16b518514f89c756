//! `kiln verify`: rebuild from source and check the result against an expected digest or
//! a published image; on a mismatch, show where they part.

use std::path::PathBuf;

use clap::Args;
use kiln_diff::{Category, Input, Report};
use kiln_digest::Digest;

use crate::cmd::analyze::{image_digest, parse_expected};
use crate::cmd::build::BuildArgs;
use crate::cmd::diff::print;
use crate::fail::{CliResult, Failure};

#[derive(Args, Debug)]
#[command(group(
    clap::ArgGroup::new("against")
        .required(true)
        .args(["expected_image_digest", "target_image"])
))]
#[command(after_long_help = VERIFY_HELP)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub build: BuildArgs,

    /// The image digest the rebuild must have (`sha256:` may be left out)
    #[arg(long = "expected-image-digest", value_name = "sha256:...")]
    pub expected_image_digest: Option<String>,

    /// The image the rebuild must equal: a tarball, an OCI layout or
    /// docker://HOST/NAME@sha256:...; on a mismatch the two are compared
    #[arg(long = "target-image", value_name = "IMAGE")]
    pub target_image: Option<String>,

    /// On a mismatch with --target-image, write both sides of each differing file here
    #[arg(long = "report-dir", value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

const VERIFY_HELP: &str = "\
Builds exactly as `kiln build` does (same options; the rebuilt image is kept at -o), then
compares its image digest with --expected-image-digest, or with the digest of
--target-image. On a mismatch with a target image, prints the first differing layer and the
files that differ in it.

Exit codes: 0 reproduced, 1 not reproduced, 2 bad input, 3 environment problem.

Example (the nightly \"does it still reproduce\" job):
  kiln verify --sde 1677619260 --target-image docker://registry.example/app@sha256:... .";

/// Rows shown for the first differing layer.
const MAX_FILE_ROWS: usize = 25;

pub fn run(a: VerifyArgs) -> CliResult {
    let expected = a
        .expected_image_digest
        .as_deref()
        .map(parse_expected)
        .transpose()?;
    let input = a
        .build
        .registry
        .input_options(a.build.platform.as_deref())?;
    // The target first: a typo should not cost a build.
    let target = a
        .target_image
        .as_deref()
        .map(|t| kiln_normalize::open_image(t, &input))
        .transpose()?;
    let output = a.build.output.clone();
    let code = crate::cmd::build::run(a.build)?;
    if code != 0 {
        return Ok(code);
    }
    let built = kiln_normalize::open_image(&output.display().to_string(), &input)?;
    let ours = image_digest(&built);
    let (want, what): (Digest, String) = match (&target, expected) {
        (Some(t), _) => (image_digest(t), t.name.clone()),
        (None, Some(e)) => (e, "the expected digest".into()),
        (None, None) => {
            return Err(Failure::input(
                "give --expected-image-digest or --target-image",
            ))
        }
    };
    let matches = ours == want || (target.is_none() && built.image.manifest_digest == want);
    if matches {
        print(&format!("\n✓ reproduced: {ours} equals {what}\n"));
        return Ok(0);
    }
    let mut text = format!("\n✗ not reproduced: the rebuild is {ours}, {what} is {want}\n");
    let Some(t) = &target else {
        text.push_str("  (pass --target-image to see which layer and files differ)\n");
        print(&text);
        return Ok(1);
    };
    let report = crate::cmd::diff::compare(&built, t, false, None)?;
    text.push_str(&summary(&report, &built, t));
    print(&text);
    if let Some(dir) = &a.report_dir {
        let inputs = [
            &Input {
                name: &built.name,
                source: &built.source,
                image: &built.image,
            },
            &Input {
                name: &t.name,
                source: &t.source,
                image: &t.image,
            },
        ];
        let n = kiln_diff::write_report_dir(dir, inputs, &report)?;
        eprintln!("report: {n} differing files written to {}", dir.display());
    }
    Ok(1)
}

/// The config differences, then the first differing layer and its files.
fn summary(
    report: &Report,
    ours: &kiln_normalize::OpenedImage,
    theirs: &kiln_normalize::OpenedImage,
) -> String {
    let mut out = String::new();
    let config: Vec<_> = report
        .differences
        .iter()
        .filter(|d| d.category == Category::Config && !d.name.starts_with("rootfs"))
        .cloned()
        .collect();
    let first_layer = report
        .differences
        .iter()
        .filter(|d| matches!(d.category, Category::Layer | Category::File))
        .filter_map(|d| d.layer)
        .min();
    let (lo, lt) = (&ours.image.manifest.layers, &theirs.image.manifest.layers);
    if lo.len() != lt.len() {
        out.push_str(&format!(
            "  layer count: {} in the rebuild, {} in the target\n",
            lo.len(),
            lt.len()
        ));
    }
    match first_layer {
        Some(i) => {
            let digest = |l: &[kiln_image::spec::Descriptor]| {
                l.get(i)
                    .map_or("(none)".to_string(), |d| d.digest.to_string())
            };
            out.push_str(&format!(
                "  first differing layer: {} (rebuild {}, target {})\n",
                i + 1,
                digest(lo),
                digest(lt)
            ));
            let rows: Vec<_> = report
                .differences
                .iter()
                .filter(|d| d.layer == Some(i))
                .cloned()
                .collect();
            let shown = Report {
                differences: rows.iter().take(MAX_FILE_ROWS).cloned().collect(),
                ..report.clone()
            };
            out.push('\n');
            out.push_str(&shown.table());
            if rows.len() > MAX_FILE_ROWS {
                out.push_str(&format!(
                    "... and {} more differences in this layer (kiln diff shows them all)\n",
                    rows.len() - MAX_FILE_ROWS
                ));
            }
        }
        None => out.push_str("  every layer is identical\n"),
    }
    if !config.is_empty() {
        out.push_str("\nconfig differences:\n");
        out.push_str(
            &Report {
                differences: config,
                ..report.clone()
            }
            .table(),
        );
    }
    out
}
