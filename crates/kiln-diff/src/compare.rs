//! Comparing two images, the way diffoci does: index, manifest and config field by field,
//! then layer by layer and file by file (strict), or the configs and the resulting root
//! file systems only (semantic: timestamps, history, layer boundaries, compression, tar
//! dialect and entry order do not count).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use kiln_image::gotime::GoTime;
use kiln_image::import::{ImageSource, LoadedImage};
use kiln_layer::order::cmp_paths;
use kiln_normalize::source::{Expected, ImageLayers};
use kiln_normalize::{Error, Result};
use serde_json::Value;

use crate::jsondiff;
use crate::listing::{scan, Entry, Kind, Listing};
use crate::report::{Category, Difference, Report};
use crate::rootfs::{link_groups, merge, RootFs};

/// One side of a comparison.
pub struct Input<'a> {
    /// How the user named it.
    pub name: &'a str,
    pub source: &'a ImageSource,
    pub image: &'a LoadedImage,
}

/// How to compare.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Compare configs (without times and history) and resulting root file systems only.
    pub semantic: bool,
    /// Layers scanned at once (at least 1).
    pub jobs: usize,
}

/// Compares two images.
pub fn diff(a: &Input<'_>, b: &Input<'_>, opts: &Options) -> Result<Report> {
    let mut out = Vec::new();
    if !opts.semantic {
        compare_documents(a, b, &mut out)?;
    }
    compare_configs(a, b, opts.semantic, &mut out)?;
    let la = &a.image.manifest.layers;
    let lb = &b.image.manifest.layers;
    if opts.semantic {
        let same = la.len() == lb.len() && la.iter().zip(lb).all(|(x, y)| x.digest == y.digest);
        if !same {
            let all: Vec<(usize, usize)> = (0..la.len())
                .map(|i| (0, i))
                .chain((0..lb.len()).map(|i| (1, i)))
                .collect();
            let mut scanned = scan_layers([a, b], &all, opts.jobs)?;
            let lists_b = scanned.split_off(la.len());
            compare_rootfs(&merge(&scanned), &merge(&lists_b), &mut out);
        }
    } else {
        let common = la.len().min(lb.len());
        let jobs: Vec<(usize, usize)> = (0..common)
            .filter(|&i| la[i].digest != lb[i].digest)
            .flat_map(|i| [(0, i), (1, i)])
            .collect();
        let scanned = scan_layers([a, b], &jobs, opts.jobs)?;
        for (k, pair) in scanned.chunks(2).enumerate() {
            let i = jobs[2 * k].1;
            compare_layer(i, &pair[0], &pair[1], &mut out);
        }
        for i in common..la.len().max(lb.len()) {
            let (x, y) = (la.get(i), lb.get(i));
            let mut d = Difference::new(
                Category::Layer,
                format!("layers[{i}]"),
                "",
                x.map(|l| l.digest.to_string()),
                y.map(|l| l.digest.to_string()),
            );
            d.layer = Some(i);
            out.push(d);
        }
    }
    Ok(Report {
        inputs: [a.name.to_string(), b.name.to_string()],
        image_digests: [
            a.image.manifest_digest.to_string(),
            b.image.manifest_digest.to_string(),
        ],
        semantic: opts.semantic,
        equal: out.is_empty(),
        differences: out,
    })
}

fn parse(bytes: &[u8], what: &str, input: &Input<'_>) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::input(format!("{}: {what}: {e}", input.name)))
}

fn push_json(category: Category, prefix: &str, a: &Value, b: &Value, out: &mut Vec<Difference>) {
    let mut rows = Vec::new();
    jsondiff::diff(prefix, Some(a), Some(b), &mut rows);
    for (name, x, y) in rows {
        out.push(Difference::new(category, name, "", x, y));
    }
}

/// index.json and the manifest, strictly.
fn compare_documents(a: &Input<'_>, b: &Input<'_>, out: &mut Vec<Difference>) -> Result<()> {
    if a.image.manifest_digest != b.image.manifest_digest {
        out.push(Difference::new(
            Category::Manifest,
            "digest",
            "",
            Some(a.image.manifest_digest.to_string()),
            Some(b.image.manifest_digest.to_string()),
        ));
    }
    match (&a.image.index, &b.image.index) {
        (Some((x, _)), Some((y, _))) if x != y => {
            push_json(
                Category::Index,
                "index",
                &parse(x, "index.json", a)?,
                &parse(y, "index.json", b)?,
                out,
            );
        }
        (Some(_), None) | (None, Some(_)) => out.push(Difference::new(
            Category::Index,
            "index.json",
            "",
            a.image.index.as_ref().map(|_| "present".into()),
            b.image.index.as_ref().map(|_| "present".into()),
        )),
        _ => {}
    }
    if a.image.manifest_bytes != b.image.manifest_bytes {
        push_json(
            Category::Manifest,
            "manifest",
            &parse(&a.image.manifest_bytes, "manifest", a)?,
            &parse(&b.image.manifest_bytes, "manifest", b)?,
            out,
        );
    }
    Ok(())
}

/// Config fields; semantic comparison leaves out times, history and diff_ids.
fn compare_configs(
    a: &Input<'_>,
    b: &Input<'_>,
    semantic: bool,
    out: &mut Vec<Difference>,
) -> Result<()> {
    if a.image.config_bytes == b.image.config_bytes {
        return Ok(());
    }
    let mut x = parse(&a.image.config_bytes, "config", a)?;
    let mut y = parse(&b.image.config_bytes, "config", b)?;
    if semantic {
        for v in [&mut x, &mut y] {
            if let Value::Object(m) = v {
                for k in ["created", "history", "rootfs"] {
                    m.remove(k);
                }
            }
        }
    }
    push_json(Category::Config, "", &x, &y, out);
    Ok(())
}

/// Scans `(side, layer)` pairs in parallel; results in the order asked.
fn scan_layers(
    inputs: [&Input<'_>; 2],
    jobs: &[(usize, usize)],
    workers: usize,
) -> Result<Vec<Listing>> {
    let openers = [
        ImageLayers::new(inputs[0].source),
        ImageLayers::new(inputs[1].source),
    ];
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Listing>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, jobs.len().max(1)) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= jobs.len() {
                    break;
                }
                let (side, i) = jobs[k];
                let input = inputs[side];
                let d = &input.image.manifest.layers[i];
                let diff_id = input.image.config.diff_ids().get(i).copied();
                let r = openers[side]
                    .open(d)
                    .and_then(|blob| scan(blob, &Expected::of(d, diff_id)))
                    .map_err(|e| {
                        e.context(format!("{}: layer {} ({})", input.name, i + 1, d.digest))
                    });
                if let Ok(mut v) = results.lock() {
                    v[k] = Some(r);
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| Error::env("a layer scanner panicked"))?;
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::env("a layer was not scanned"))))
        .collect()
}

fn octal(m: i64) -> String {
    format!("{m:04o}")
}

fn time(t: Option<kiln_layer::Timestamp>) -> String {
    match t {
        None => "0".into(),
        Some(t) => GoTime {
            unix_secs: t.secs,
            nanos: t.nanos,
            offset_secs: 0,
        }
        .to_string(),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn bytes_value(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => format!(
            "0x{}",
            v.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}

/// A one-line description of an entry, for entries present on one side only.
fn summary(e: &Entry) -> String {
    let mut s = format!("{} {} {}:{}", e.kind.name(), octal(e.mode), e.uid, e.gid);
    match e.kind {
        Kind::File => {
            if let Some(d) = e.digest {
                s.push_str(&format!(" {d}"));
            }
        }
        Kind::Symlink | Kind::Hardlink => s.push_str(&format!(" -> {}", lossy(&e.link))),
        _ => {}
    }
    s
}

/// The attributes compared, as (field, value) pairs.
fn attributes(e: &Entry, strict: bool, group: Option<&[u8]>) -> Vec<(String, String)> {
    let mut v = vec![
        ("type".to_string(), e.kind.name().to_string()),
        ("mode".into(), octal(e.mode)),
        ("uid".into(), e.uid.to_string()),
        ("gid".into(), e.gid.to_string()),
    ];
    if strict {
        v.push(("uname".into(), lossy(&e.uname)));
        v.push(("gname".into(), lossy(&e.gname)));
        v.push(("mtime".into(), time(e.mtime)));
    }
    if let Some(d) = e.digest {
        v.push(("content".into(), d.to_string()));
    }
    if matches!(e.kind, Kind::Symlink | Kind::Hardlink) {
        v.push(("link".into(), lossy(&e.link)));
    }
    if matches!(e.kind, Kind::Char | Kind::Block) {
        v.push(("device".into(), format!("{}:{}", e.device.0, e.device.1)));
    }
    if let Some(g) = group {
        v.push(("hardlinked with".into(), lossy(g)));
    }
    for (k, x) in &e.xattrs {
        v.push((format!("xattr {k}"), bytes_value(x)));
    }
    v
}

/// One side of a path being compared.
struct Side<'a> {
    entry: &'a Entry,
    /// Where the content lives: (layer index, name there).
    source: (usize, Vec<u8>),
    /// The hard link group (its first name), if any.
    group: Option<&'a [u8]>,
}

/// Appends the differences of one path; `prefix` names the layer in strict mode.
fn compare_entry(
    prefix: &str,
    layer: Option<usize>,
    path: &[u8],
    a: Option<Side<'_>>,
    b: Option<Side<'_>>,
    strict: bool,
    out: &mut Vec<Difference>,
) {
    let name = format!("{prefix}{}", lossy(path));
    let sources = [
        a.as_ref().map(|x| x.source.clone()),
        b.as_ref().map(|x| x.source.clone()),
    ];
    let mut push = |field: &str, x: Option<String>, y: Option<String>| {
        let mut d = Difference::new(Category::File, name.clone(), field, x, y);
        d.layer = layer;
        d.sources = sources.clone();
        out.push(d);
    };
    match (a, b) {
        (Some(x), Some(y)) => {
            let ax: BTreeMap<String, String> =
                attributes(x.entry, strict, x.group).into_iter().collect();
            let ay: BTreeMap<String, String> =
                attributes(y.entry, strict, y.group).into_iter().collect();
            // Fields in a fixed, meaningful order, then xattrs.
            let order = [
                "type",
                "content",
                "mode",
                "uid",
                "gid",
                "link",
                "device",
                "hardlinked with",
                "uname",
                "gname",
                "mtime",
            ];
            let mut keys: Vec<&String> = ax.keys().chain(ay.keys()).collect();
            keys.sort_by_key(|k| {
                (
                    order.iter().position(|o| o == k).unwrap_or(order.len()),
                    (*k).clone(),
                )
            });
            keys.dedup();
            for k in keys {
                let (p, q) = (ax.get(k), ay.get(k));
                if p != q {
                    push(k, p.cloned(), q.cloned());
                }
            }
        }
        (Some(x), None) => push("", Some(summary(x.entry)), None),
        (None, Some(y)) => push("", None, Some(summary(y.entry))),
        (None, None) => {}
    }
}

/// Two layers at the same index, strictly: entries by path, then their order.
fn compare_layer(i: usize, a: &Listing, b: &Listing, out: &mut Vec<Difference>) {
    let prefix = format!("layers[{i}]/");
    let mut layer_row = |field: &str, x: String, y: String| {
        let mut d = Difference::new(
            Category::Layer,
            format!("layers[{i}]"),
            field,
            Some(x),
            Some(y),
        );
        d.layer = Some(i);
        out.push(d);
    };
    if a.digests.diff_id != b.digests.diff_id {
        layer_row(
            "diff_id",
            a.digests.diff_id.to_string(),
            b.digests.diff_id.to_string(),
        );
    }
    if a.digests.compression != b.digests.compression {
        layer_row(
            "compression",
            format!("{:?}", a.digests.compression).to_lowercase(),
            format!("{:?}", b.digests.compression).to_lowercase(),
        );
    }
    let ma: BTreeMap<&[u8], &Entry> = a.entries.iter().map(|e| (e.path.as_slice(), e)).collect();
    let mb: BTreeMap<&[u8], &Entry> = b.entries.iter().map(|e| (e.path.as_slice(), e)).collect();
    // Entry order: the paths both have, in each archive's order.
    let oa: Vec<&[u8]> = a
        .entries
        .iter()
        .map(|e| e.path.as_slice())
        .filter(|p| mb.contains_key(p))
        .collect();
    let ob: Vec<&[u8]> = b
        .entries
        .iter()
        .map(|e| e.path.as_slice())
        .filter(|p| ma.contains_key(p))
        .collect();
    if let Some(k) = oa.iter().zip(&ob).position(|(x, y)| x != y) {
        layer_row(
            "order",
            format!("entry {}: {}", k + 1, lossy(oa[k])),
            format!("entry {}: {}", k + 1, lossy(ob[k])),
        );
    }
    let mut paths: Vec<&[u8]> = ma.keys().chain(mb.keys()).copied().collect();
    paths.sort_by(|x, y| cmp_paths(x, y));
    paths.dedup();
    for p in paths {
        let x = ma.get(p).map(|&entry| Side {
            entry,
            source: (i, p.to_vec()),
            group: None,
        });
        let y = mb.get(p).map(|&entry| Side {
            entry,
            source: (i, p.to_vec()),
            group: None,
        });
        compare_entry(&prefix, Some(i), p, x, y, true, out);
    }
}

/// Two root file systems, semantically.
fn compare_rootfs(a: &RootFs<'_>, b: &RootFs<'_>, out: &mut Vec<Difference>) {
    let (ga, gb) = (link_groups(a), link_groups(b));
    let mut paths: Vec<&[u8]> = a.keys().chain(b.keys()).copied().collect();
    paths.sort_by(|x, y| cmp_paths(x, y));
    paths.dedup();
    for p in paths {
        // A resolved hard link carries the entry of the file it links to.
        let x = node_side(a, &ga, p);
        let y = node_side(b, &gb, p);
        compare_entry("", None, p, x, y, false, out);
    }
}

fn node_side<'a>(
    fs: &RootFs<'a>,
    groups: &BTreeMap<&'a [u8], &'a [u8]>,
    path: &[u8],
) -> Option<Side<'a>> {
    fs.get(path).map(|n| Side {
        entry: n.entry,
        source: n.source(),
        group: groups.get(path).copied(),
    })
}
