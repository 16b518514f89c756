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

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_layer::TarWriter;
    use std::path::Path;

    /// (name, mode, mtime, data) of a regular file.
    type File<'a> = (&'a str, i64, i64, &'a [u8]);

    fn layer(files: &[File<'_>], trailing_blocks: usize) -> Vec<u8> {
        let mut w = TarWriter::new(Vec::new());
        for (name, mode, mtime, data) in files {
            w.write_header(&kiln_layer::Header {
                typeflag: typeflag::REG,
                name: name.as_bytes().to_vec(),
                mode: *mode,
                size: data.len() as i64,
                mtime: Some(Timestamp::from_secs(*mtime)),
                ..Default::default()
            })
            .unwrap();
            w.write_data(data).unwrap();
        }
        let mut v = w.finish().unwrap();
        v.extend(std::iter::repeat_n(0u8, 512 * trailing_blocks));
        v
    }

    /// An OCI layout with these uncompressed layers; `lie` replaces the config's diff_ids.
    fn layout(dir: &Path, layers: &[Vec<u8>], lie: Option<&str>) -> (ImageSource, LoadedImage) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |b: &[u8]| {
            let d = Digest::of(b);
            std::fs::write(blobs.join(d.hex()), b).unwrap();
            d
        };
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for l in layers {
            let d = put(l);
            descs.push(format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{}}}"#,
                l.len()
            ));
            diff_ids.push(format!("\"{}\"", lie.unwrap_or(&d.to_string())));
        }
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
            diff_ids.join(",")
        );
        let c = put(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{c}","size":{}}},"layers":[{}]}}"#,
            config.len(),
            descs.join(",")
        );
        let m = put(manifest.as_bytes());
        std::fs::write(
            dir.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{m}","size":{}}}]}}"#,
                manifest.len()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let src = ImageSource::open(&dir.display().to_string()).unwrap();
        let img = kiln_image::import::load(&src, None, None).unwrap();
        (src, img)
    }

    fn run(a: &[Vec<u8>], b: &[Vec<u8>]) -> Result<Comparison, Error> {
        let t = tempfile::tempdir().unwrap();
        let (sa, ia) = layout(&t.path().join("a"), a, None);
        let (sb, ib) = layout(&t.path().join("b"), b, None);
        compare(
            Side {
                label: "the BuildKit image",
                source: &sa,
                image: &ia,
            },
            Side {
                label: "kiln's rebuild",
                source: &sb,
                image: &ib,
            },
        )
    }

    const BASE: &[File<'static>] = &[("a", 0o644, 10, b"one"), ("b", 0o755, 10, b"two")];

    #[test]
    fn identical_images() {
        let c = run(&[layer(BASE, 0)], &[layer(BASE, 0)]).unwrap();
        assert!(c.identical());
        assert_eq!(c.layers[0].verdict, LayerVerdict::Identical);
        assert!(c.render().ends_with(&format!(
            "verdict: identical: kiln reproduces {}\n",
            c.buildkit_digest
        )));
    }

    #[test]
    fn entry_fields_and_presence() {
        let kiln_side: &[File<'_>] = &[("a", 0o600, 11, b"one"), ("c", 0o644, 10, b"")];
        let c = run(&[layer(BASE, 0)], &[layer(kiln_side, 0)]).unwrap();
        assert!(!c.identical());
        let LayerVerdict::Differs(d) = &c.layers[0].verdict else {
            panic!("{:?}", c.layers[0].verdict)
        };
        assert_eq!(
            d.entries,
            [
                EntryDiff {
                    path: "a".into(),
                    change: EntryChange::Fields(vec![
                        ("mode", "644".into(), "600".into()),
                        ("mtime", "10".into(), "11".into()),
                    ]),
                },
                EntryDiff {
                    path: "b".into(),
                    change: EntryChange::OnlyInBuildKit
                },
                EntryDiff {
                    path: "c".into(),
                    change: EntryChange::OnlyInKiln
                },
            ]
        );
        let r = c.render();
        assert!(
            r.contains(
                "    a: mode 644 (BuildKit) vs 600 (kiln); mtime 10 (BuildKit) vs 11 (kiln)\n"
            ),
            "{r}"
        );
        assert!(r.contains("    b: only in BuildKit's layer\n"), "{r}");
        assert!(
            r.contains("config: differs: rootfs.diff_ids (BuildKit sha256:"),
            "{r}"
        );
    }

    #[test]
    fn many_differences_are_capped() {
        let names: Vec<String> = (0..15).map(|i| format!("f{i:02}")).collect();
        let files: Vec<File<'_>> = names
            .iter()
            .map(|n| (n.as_str(), 0o644, 1, &b"x"[..]))
            .collect();
        let c = run(&[layer(&files, 0)], &[layer(&[], 0)]).unwrap();
        let LayerVerdict::Differs(d) = &c.layers[0].verdict else {
            panic!()
        };
        assert_eq!(d.entries.len(), MAX_LISTED);
        assert_eq!(d.more, 5);
        assert!(c.render().contains("... and 5 more differing entries"));
    }

    #[test]
    fn order_and_encoding() {
        let swapped: &[File<'_>] = &[BASE[1], BASE[0]];
        let c = run(&[layer(BASE, 0)], &[layer(swapped, 0)]).unwrap();
        let LayerVerdict::Differs(d) = &c.layers[0].verdict else {
            panic!()
        };
        assert!(d.entries.is_empty());
        assert_eq!(
            d.encoding.as_deref(),
            Some("same entries, different order: entry #1 is \"a\" in BuildKit's layer, \"b\" in kiln's")
        );
        let c = run(&[layer(BASE, 0)], &[layer(BASE, 2)]).unwrap();
        let LayerVerdict::Differs(d) = &c.layers[0].verdict else {
            panic!()
        };
        let end = layer(BASE, 0).len();
        assert_eq!(
            d.encoding.as_deref(),
            Some(
                format!("same entries in the same order; one tar stream ends at byte {end}")
                    .as_str()
            )
        );
    }

    #[test]
    fn layer_count() {
        let c = run(&[layer(BASE, 0)], &[layer(BASE, 0), layer(&[], 0)]).unwrap();
        assert_eq!(c.layers.len(), 2);
        assert_eq!(c.layers[0].verdict, LayerVerdict::Identical);
        assert_eq!(c.layers[1].verdict, LayerVerdict::Missing);
        assert!(c
            .render()
            .contains("layer 2/2: differs: only kiln's rebuild has it"));
    }

    #[test]
    fn a_config_that_lies_about_diff_ids_is_bad_input() {
        let t = tempfile::tempdir().unwrap();
        let lie = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        let (sa, ia) = layout(&t.path().join("a"), &[layer(BASE, 0)], Some(lie));
        let (sb, ib) = layout(&t.path().join("b"), &[layer(&BASE[..1], 0)], None);
        let e = compare(
            Side {
                label: "the BuildKit image",
                source: &sa,
                image: &ia,
            },
            Side {
                label: "kiln's rebuild",
                source: &sb,
                image: &ib,
            },
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .starts_with("the BuildKit image: layer 1: its content has diff_id sha256:"),
            "{e}"
        );
        assert!(e
            .to_string()
            .ends_with(&format!("but the image config lists {lie}")));
    }
}
