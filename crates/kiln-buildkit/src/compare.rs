//! The cross-check: an image BuildKit built against kiln's native rebuild, layer by layer.
//!
//! Layers are matched by position. Equal blob digests: identical. Equal diff_ids with
//! different blobs: the same files, compressed differently. Otherwise both layers are read
//! (blobs verified against their digests, content against the config's diff_id) and the
//! first differing entries are reported by name, type, mode, owner, mtime, size, link target,
//! content hash and xattrs; when the entries agree, the first differing byte of the tar
//! streams says where the encoding differs.
//!
//! Small and self-contained on purpose: a general image diff belongs in kiln-diff.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read};

use kiln_digest::{Digest, HashingReader};
use kiln_image::import::{ImageSource, LoadedImage};
use kiln_image::spec::Descriptor;
use kiln_layer::tar::{typeflag, Timestamp};
use kiln_layer::TarReader;

use crate::Error;

/// At most this many differing entries are listed per layer.
pub const MAX_LISTED: usize = 10;

/// One side of the comparison.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    /// `BuildKit image` or `kiln rebuild`, for messages.
    pub label: &'a str,
    pub source: &'a ImageSource,
    pub image: &'a LoadedImage,
}

/// A layer as the manifest and config describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerFacts {
    pub digest: Digest,
    pub size: i64,
    pub media_type: String,
    pub diff_id: Option<Digest>,
}

/// How one layer compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerVerdict {
    /// Same blob.
    Identical,
    /// Same uncompressed content (diff_id), different compressed blob.
    SameContent,
    /// Different content.
    Differs(ContentDiff),
    /// Only one image has a layer at this position.
    Missing,
}

/// What differs inside a layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentDiff {
    /// The first differing entries, at most [`MAX_LISTED`].
    pub entries: Vec<EntryDiff>,
    /// How many more differing entries there are.
    pub more: usize,
    /// When the entries agree: where the tar encoding differs.
    pub encoding: Option<String>,
}

/// One differing tar entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryDiff {
    /// The entry name as stored in the layer.
    pub path: String,
    pub change: EntryChange,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryChange {
    OnlyInBuildKit,
    OnlyInKiln,
    /// Fields that differ: (field, BuildKit's value, kiln's value).
    Fields(Vec<(&'static str, String, String)>),
}

/// One layer position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerReport {
    /// 1-based.
    pub index: usize,
    pub buildkit: Option<LayerFacts>,
    pub kiln: Option<LayerFacts>,
    pub verdict: LayerVerdict,
}

/// The result of a cross-check.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub buildkit_digest: Digest,
    pub kiln_digest: Digest,
    pub layers: Vec<LayerReport>,
    /// Config fields that differ (`config.Env`, `history`, ...); empty when the configs are
    /// byte-identical.
    pub config: Vec<String>,
    pub config_digests: (Digest, Digest),
    /// Manifest-level differences besides layers and config.
    pub manifest: Vec<String>,
}

impl Comparison {
    /// Same image digest.
    pub fn identical(&self) -> bool {
        self.buildkit_digest == self.kiln_digest
    }

    /// The report `kiln crosscheck` prints.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let n = self.layers.len();
        for l in &self.layers {
            let at = format!("layer {}/{n}", l.index);
            match (&l.verdict, &l.buildkit, &l.kiln) {
                (LayerVerdict::Identical, Some(b), _) => {
                    let _ = writeln!(o, "{at}: identical  {}", b.digest);
                }
                (LayerVerdict::SameContent, Some(b), Some(k)) => {
                    let _ = writeln!(
                        o,
                        "{at}: same content (diff_id {}), compressed blobs differ: {} (BuildKit) vs {} (kiln)",
                        show(b.diff_id),
                        b.digest,
                        k.digest
                    );
                }
                (LayerVerdict::Missing, b, k) => {
                    let (who, f) = match (b, k) {
                        (Some(b), _) => ("BuildKit's image", b),
                        (_, Some(k)) => ("kiln's rebuild", k),
                        _ => continue,
                    };
                    let _ = writeln!(o, "{at}: differs: only {who} has it ({})", f.digest);
                }
                (LayerVerdict::Differs(d), Some(b), Some(k)) => {
                    let _ = writeln!(
                        o,
                        "{at}: differs: diff_id {} (BuildKit) vs {} (kiln)",
                        show(b.diff_id),
                        show(k.diff_id)
                    );
                    for e in &d.entries {
                        let _ = writeln!(o, "    {}", e.describe());
                    }
                    if d.more > 0 {
                        let _ = writeln!(o, "    ... and {} more differing entries", d.more);
                    }
                    if let Some(enc) = &d.encoding {
                        let _ = writeln!(o, "    {enc}");
                    }
                }
                _ => {}
            }
        }
        if self.config.is_empty() {
            let _ = writeln!(o, "config: identical  {}", self.config_digests.0);
        } else {
            let _ = writeln!(
                o,
                "config: differs: {} (BuildKit {} vs kiln {})",
                self.config.join(", "),
                self.config_digests.0,
                self.config_digests.1
            );
        }
        for m in &self.manifest {
            let _ = writeln!(o, "manifest: differs: {m}");
        }
        if self.identical() {
            let _ = writeln!(
                o,
                "verdict: identical: kiln reproduces {}",
                self.buildkit_digest
            );
        } else {
            let differing = self
                .layers
                .iter()
                .filter(|l| l.verdict != LayerVerdict::Identical)
                .count();
            let _ = writeln!(
                o,
                "verdict: differs: image {} (BuildKit) vs {} (kiln); {differing} of {n} layers not identical",
                self.buildkit_digest, self.kiln_digest
            );
        }
        o
    }
}

fn show(d: Option<Digest>) -> String {
    d.map(|d| d.to_string()).unwrap_or_else(|| "(none)".into())
}

impl EntryDiff {
    fn describe(&self) -> String {
        match &self.change {
            EntryChange::OnlyInBuildKit => format!("{}: only in BuildKit's layer", self.path),
            EntryChange::OnlyInKiln => format!("{}: only in kiln's layer", self.path),
            EntryChange::Fields(f) => {
                let parts: Vec<String> = f
                    .iter()
                    .map(|(name, b, k)| format!("{name} {b} (BuildKit) vs {k} (kiln)"))
                    .collect();
                format!("{}: {}", self.path, parts.join("; "))
            }
        }
    }
}

fn facts(img: &LoadedImage, i: usize) -> Option<LayerFacts> {
    let d: &Descriptor = img.manifest.layers.get(i)?;
    Some(LayerFacts {
        digest: d.digest,
        size: d.size,
        media_type: d.media_type.clone(),
        diff_id: img.config.diff_ids().get(i).copied(),
    })
}

/// Compares the two images.
pub fn compare(buildkit: Side<'_>, kiln: Side<'_>) -> Result<Comparison, Error> {
    let n = buildkit
        .image
        .manifest
        .layers
        .len()
        .max(kiln.image.manifest.layers.len());
    let mut layers = Vec::new();
    for i in 0..n {
        let b = facts(buildkit.image, i);
        let k = facts(kiln.image, i);
        let verdict = match (&b, &k) {
            (Some(b), Some(k)) if b.digest == k.digest => LayerVerdict::Identical,
            (Some(b), Some(k)) if b.diff_id.is_some() && b.diff_id == k.diff_id => {
                LayerVerdict::SameContent
            }
            (Some(b), Some(k)) => {
                LayerVerdict::Differs(diff_layers((buildkit, i, b), (kiln, i, k))?)
            }
            _ => LayerVerdict::Missing,
        };
        layers.push(LayerReport {
            index: i + 1,
            buildkit: b,
            kiln: k,
            verdict,
        });
    }
    let mut manifest = Vec::new();
    let (bm, km) = (&buildkit.image.manifest, &kiln.image.manifest);
    if buildkit.image.manifest_media_type != kiln.image.manifest_media_type {
        manifest.push(format!(
            "media type {} (BuildKit) vs {} (kiln)",
            buildkit.image.manifest_media_type, kiln.image.manifest_media_type
        ));
    }
    if bm.annotations != km.annotations {
        manifest.push(format!(
            "annotations {:?} (BuildKit) vs {:?} (kiln)",
            bm.annotations, km.annotations
        ));
    }
    if bm.config.media_type != km.config.media_type {
        manifest.push(format!(
            "config media type {} (BuildKit) vs {} (kiln)",
            bm.config.media_type, km.config.media_type
        ));
    }
    let config = if bm.config.digest == km.config.digest {
        Vec::new()
    } else {
        config_fields(&buildkit.image.config_bytes, &kiln.image.config_bytes)
    };
    Ok(Comparison {
        buildkit_digest: buildkit.image.manifest_digest,
        kiln_digest: kiln.image.manifest_digest,
        layers,
        config,
        config_digests: (bm.config.digest, km.config.digest),
        manifest,
    })
}

/// The config fields that differ: top-level keys, and the keys inside `config` and `rootfs`.
fn config_fields(a: &[u8], b: &[u8]) -> Vec<String> {
    use serde_json::Value;
    let parse = |x: &[u8]| serde_json::from_slice::<Value>(x).unwrap_or(Value::Null);
    let (a, b) = (parse(a), parse(b));
    let (Some(ao), Some(bo)) = (a.as_object(), b.as_object()) else {
        return vec!["(not JSON objects)".into()];
    };
    let mut out = Vec::new();
    let keys: BTreeSet<&String> = ao.keys().chain(bo.keys()).collect();
    for k in keys {
        let (x, y) = (ao.get(k), bo.get(k));
        if x == y {
            continue;
        }
        match (x.and_then(Value::as_object), y.and_then(Value::as_object)) {
            (Some(xo), Some(yo)) if k == "config" || k == "rootfs" => {
                let inner: BTreeSet<&String> = xo.keys().chain(yo.keys()).collect();
                for ik in inner {
                    if xo.get(ik) != yo.get(ik) {
                        out.push(format!("{k}.{ik}"));
                    }
                }
            }
            _ => match (x.and_then(Value::as_array), y.and_then(Value::as_array)) {
                (Some(xa), Some(ya)) => {
                    let first = xa
                        .iter()
                        .zip(ya)
                        .position(|(p, q)| p != q)
                        .unwrap_or(xa.len().min(ya.len()));
                    out.push(format!("{k}[{first}]"));
                }
                _ => out.push(k.clone()),
            },
        }
    }
    if out.is_empty() {
        // Same values, different bytes (key order, spacing, escaping).
        out.push("(encoding only: same values)".into());
    }
    out
}

/// One tar entry's observable facts.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    name: String,
    kind: u8,
    mode: i64,
    owner: (i64, i64),
    names: (String, String),
    mtime: Option<Timestamp>,
    size: i64,
    link: String,
    content: Option<Digest>,
    xattrs: BTreeMap<String, String>,
    device: (i64, i64),
}

impl Entry {
    fn fields(&self, other: &Entry) -> Vec<(&'static str, String, String)> {
        let mut out = Vec::new();
        let mut push = |name: &'static str, a: String, b: String| {
            if a != b {
                out.push((name, a, b));
            }
        };
        push("type", kind_name(self.kind), kind_name(other.kind));
        push(
            "mode",
            format!("{:o}", self.mode),
            format!("{:o}", other.mode),
        );
        push(
            "owner",
            format!("{}:{}", self.owner.0, self.owner.1),
            format!("{}:{}", other.owner.0, other.owner.1),
        );
        push(
            "owner names",
            format!("{:?}:{:?}", self.names.0, self.names.1),
            format!("{:?}:{:?}", other.names.0, other.names.1),
        );
        push("mtime", time(self.mtime), time(other.mtime));
        push("size", self.size.to_string(), other.size.to_string());
        push("link", self.link.clone(), other.link.clone());
        push("content", show(self.content), show(other.content));
        push(
            "xattrs",
            format!("{:?}", self.xattrs),
            format!("{:?}", other.xattrs),
        );
        push(
            "device",
            format!("{},{}", self.device.0, self.device.1),
            format!("{},{}", other.device.0, other.device.1),
        );
        out
    }
}

fn kind_name(k: u8) -> String {
    match k {
        typeflag::REG | typeflag::REG_A => "file".into(),
        typeflag::LINK => "hardlink".into(),
        typeflag::SYMLINK => "symlink".into(),
        typeflag::CHAR => "char device".into(),
        typeflag::BLOCK => "block device".into(),
        typeflag::DIR => "directory".into(),
        typeflag::FIFO => "fifo".into(),
        other => format!("type {:?}", other as char),
    }
}

fn time(t: Option<Timestamp>) -> String {
    match t {
        None => "(zero)".into(),
        Some(t) if t.nanos == 0 => t.secs.to_string(),
        Some(t) => format!("{}.{:09}", t.secs, t.nanos),
    }
}

/// A layer's entries in tar order, with the stream offset each header starts at.
struct Listing {
    entries: Vec<Entry>,
    starts: Vec<u64>,
}

fn layer_error(side: Side<'_>, i: usize, m: impl std::fmt::Display) -> Error {
    Error::input(format!("{}: layer {}: {m}", side.label, i + 1))
}

/// The uncompressed stream of layer `i`, checked against its blob digest as it is read.
fn open_layer<'a>(side: Side<'a>, i: usize, f: &LayerFacts) -> Result<Box<dyn Read + 'a>, Error> {
    if f.media_type.ends_with("zstd") {
        return Err(layer_error(
            side,
            i,
            format!("{}: zstd layers are not compared", f.media_type),
        ));
    }
    let size = u64::try_from(f.size)
        .map_err(|_| layer_error(side, i, format!("negative size {} in the manifest", f.size)))?;
    let blob = side
        .source
        .open_blob_verified(&f.digest, size)
        .map_err(|e| layer_error(side, i, e))?;
    let mut r = BufReader::new(blob);
    let gzip = r
        .fill_buf()
        .map_err(|e| layer_error(side, i, e))?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    })
}

fn list_layer(side: Side<'_>, i: usize, f: &LayerFacts) -> Result<Listing, Error> {
    let err = |m: String| layer_error(side, i, m);
    let mut tr = TarReader::new(HashingReader::new(open_layer(side, i, f)?));
    let mut listing = Listing {
        entries: Vec::new(),
        starts: Vec::new(),
    };
    loop {
        let start = tr.offset();
        let Some(h) = tr.next_header().map_err(|e| err(e.to_string()))? else {
            break;
        };
        let content = if h.typeflag == typeflag::REG || h.typeflag == typeflag::REG_A {
            let (d, _) = kiln_digest::digest_reader(&mut tr).map_err(|e| err(e.to_string()))?;
            Some(d)
        } else {
            None
        };
        let xattrs = h
            .pax_records
            .iter()
            .filter_map(|(k, v)| {
                let k = String::from_utf8_lossy(k);
                k.strip_prefix("SCHILY.xattr.")
                    .map(|n| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
            })
            .collect();
        listing.starts.push(start);
        listing.entries.push(Entry {
            name: String::from_utf8_lossy(&h.name).into_owned(),
            kind: if h.typeflag == typeflag::REG_A {
                typeflag::REG
            } else {
                h.typeflag
            },
            mode: h.mode,
            owner: (h.uid, h.gid),
            names: (
                String::from_utf8_lossy(&h.uname).into_owned(),
                String::from_utf8_lossy(&h.gname).into_owned(),
            ),
            mtime: h.mtime,
            size: h.size,
            link: String::from_utf8_lossy(&h.linkname).into_owned(),
            content,
            xattrs,
            device: (h.devmajor, h.devminor),
        });
    }
    // The diff_id covers the whole stream, padding after the end marker included.
    let mut rest = tr.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| err(e.to_string()))?;
    let (_, diff_id, _) = rest.finish();
    if let Some(want) = f.diff_id {
        if want != diff_id {
            return Err(err(format!(
                "its content has diff_id {diff_id}, but the image config lists {want}"
            )));
        }
    }
    Ok(listing)
}

fn diff_layers(
    (bs, bi, bf): (Side<'_>, usize, &LayerFacts),
    (ks, ki, kf): (Side<'_>, usize, &LayerFacts),
) -> Result<ContentDiff, Error> {
    let b = list_layer(bs, bi, bf)?;
    let k = list_layer(ks, ki, kf)?;
    let index = |l: &Listing| -> BTreeMap<String, usize> {
        l.entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect()
    };
    let (bidx, kidx) = (index(&b), index(&k));
    let mut all = Vec::new();
    for e in &b.entries {
        match kidx.get(&e.name) {
            None => all.push(EntryDiff {
                path: e.name.clone(),
                change: EntryChange::OnlyInBuildKit,
            }),
            Some(&j) => {
                let f = e.fields(&k.entries[j]);
                if !f.is_empty() {
                    all.push(EntryDiff {
                        path: e.name.clone(),
                        change: EntryChange::Fields(f),
                    });
                }
            }
        }
    }
    for e in &k.entries {
        if !bidx.contains_key(&e.name) {
            all.push(EntryDiff {
                path: e.name.clone(),
                change: EntryChange::OnlyInKiln,
            });
        }
    }
    // Duplicate names make the maps above blind to some entries; the encoding check below
    // still catches them.
    let mut d = ContentDiff {
        more: all.len().saturating_sub(MAX_LISTED),
        entries: all.into_iter().take(MAX_LISTED).collect(),
        encoding: None,
    };
    if d.entries.is_empty() {
        d.encoding = Some(encoding_difference((bs, bi, bf, &b), (ks, ki, kf, &k))?);
    }
    Ok(d)
}

/// Where two layers with the same entries differ: their order, or the first differing byte.
fn encoding_difference(
    (bs, bi, bf, b): (Side<'_>, usize, &LayerFacts, &Listing),
    (ks, ki, kf, k): (Side<'_>, usize, &LayerFacts, &Listing),
) -> Result<String, Error> {
    let names = |l: &Listing| l.entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    let (bn, kn) = (names(b), names(k));
    if bn != kn {
        let at = bn
            .iter()
            .zip(&kn)
            .position(|(x, y)| x != y)
            .unwrap_or(bn.len().min(kn.len()));
        return Ok(format!(
            "same entries, different order: entry #{} is {:?} in BuildKit's layer, {:?} in kiln's",
            at + 1,
            bn.get(at).map(String::as_str).unwrap_or("(end)"),
            kn.get(at).map(String::as_str).unwrap_or("(end)")
        ));
    }
    let mut x = open_layer(bs, bi, bf)?;
    let mut y = open_layer(ks, ki, kf)?;
    let (mut bx, mut by) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    let mut offset = 0u64;
    loop {
        let nx = read_full(&mut x, &mut bx).map_err(|e| layer_error(bs, bi, e))?;
        let ny = read_full(&mut y, &mut by).map_err(|e| layer_error(ks, ki, e))?;
        let n = nx.min(ny);
        if let Some(p) = bx[..n].iter().zip(&by[..n]).position(|(p, q)| p != q) {
            let at = offset + p as u64;
            let entry = b.starts.iter().rposition(|&s| s <= at);
            let name = entry
                .and_then(|e| b.entries.get(e))
                .map(|e| format!(" (the header or data of {:?})", e.name))
                .unwrap_or_default();
            return Ok(format!(
                "same entries in the same order; the tar streams first differ at byte {at}{name}"
            ));
        }
        if nx != ny {
            return Ok(format!(
                "same entries in the same order; one tar stream ends at byte {}",
                offset + n as u64
            ));
        }
        if n == 0 {
            return Ok("the tar streams are equal, yet the diff_ids differ".into());
        }
        offset += n as u64;
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(m) => n += m,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
