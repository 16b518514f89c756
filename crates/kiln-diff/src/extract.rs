//! `--report-dir`: both sides of every differing regular file, for `diff -r` or
//! diffoscope, plus the report as JSON.
//!
//! Layout: `DIR/input-0/<path>` and `DIR/input-1/<path>` for a semantic comparison,
//! `DIR/input-N/layers-<i>/<path>` for a strict one; `DIR/report.json`. Only regular files
//! are written (mode 0644), under canonical names, so nothing lands outside `DIR`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use kiln_layer::tar::{typeflag, TarReader};
use kiln_normalize::names;
use kiln_normalize::source::{read_layer, Expected, ImageLayers};
use kiln_normalize::{Error, Result};

use crate::compare::Input;
use crate::report::{Category, Report};

/// Names this module writes in the report directory (replaced on each run).
pub const ROOT_NAMES: [&str; 3] = ["input-0", "input-1", "report.json"];

fn env(p: &Path, e: std::io::Error) -> Error {
    Error::env(format!("{}: {e}", p.display()))
}

/// Writes the report directory; returns how many files were written.
pub fn write_report_dir(dir: &Path, inputs: [&Input<'_>; 2], report: &Report) -> Result<usize> {
    fs::create_dir_all(dir).map_err(|e| env(dir, e))?;
    for n in ROOT_NAMES {
        let p = dir.join(n);
        if p.is_dir() {
            fs::remove_dir_all(&p).map_err(|e| env(&p, e))?;
        } else if p.exists() {
            fs::remove_file(&p).map_err(|e| env(&p, e))?;
        }
    }
    let mut written = 0;
    for (side, input) in inputs.iter().enumerate() {
        // layer -> names wanted from it
        let mut wanted: BTreeMap<usize, BTreeSet<Vec<u8>>> = BTreeMap::new();
        for d in &report.differences {
            if d.category != Category::File {
                continue;
            }
            if let Some((layer, name)) = &d.sources[side] {
                wanted.entry(*layer).or_default().insert(name.clone());
            }
        }
        let root = dir.join(format!("input-{side}"));
        let layers = ImageLayers::new(input.source);
        for (layer, names_wanted) in wanted {
            let base = if report.semantic {
                root.clone()
            } else {
                root.join(format!("layers-{layer}"))
            };
            let desc = &input.image.manifest.layers[layer];
            let blob = layers.open(desc)?;
            let (n, _) = read_layer(blob, &Expected::of(desc, None), |tar| {
                extract(tar, &names_wanted, &base)
            })
            .map_err(|e| {
                e.context(format!(
                    "{}: layer {} ({})",
                    input.name,
                    layer + 1,
                    desc.digest
                ))
            })?;
            written += n;
        }
    }
    let json = dir.join("report.json");
    let mut f = fs::File::create(&json).map_err(|e| env(&json, e))?;
    f.write_all(report.json().as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .map_err(|e| env(&json, e))?;
    Ok(written)
}

fn extract(tar: &mut dyn Read, wanted: &BTreeSet<Vec<u8>>, base: &Path) -> Result<usize> {
    use std::os::unix::ffi::OsStrExt;
    let mut tr = TarReader::new(BufReader::with_capacity(1 << 16, tar));
    let mut n = 0;
    while let Some(h) = tr.next_header().map_err(|e| Error::input(e.to_string()))? {
        if !matches!(h.typeflag, typeflag::REG | typeflag::REG_A | typeflag::CONT) {
            continue;
        }
        let Ok(Some(path)) = names::clean(&h.name) else {
            continue;
        };
        if !wanted.contains(&path) {
            continue;
        }
        let dest: PathBuf = base.join(std::ffi::OsStr::from_bytes(&path));
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| env(parent, e))?;
        }
        let mut f = fs::File::create(&dest).map_err(|e| env(&dest, e))?;
        std::io::copy(&mut tr, &mut f).map_err(|e| env(&dest, e))?;
        n += 1;
    }
    Ok(n)
}
