//! Reading images: OCI layout directories, and docker- or OCI-format tarballs (an OCI
//! layout in a tar, with or without `manifest.json`; also `docker save`'s older layout of
//! `manifest.json` + `<id>/layer.tar`). Tarballs are indexed once and blobs are read by
//! seeking, never extracted, so hostile member names cannot write anything anywhere.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};

use crate::section::FileSection;
use crate::sniff::BlobCompression;
use std::path::{Path, PathBuf};

use kiln_digest::{Digest, HashingReader};
use kiln_layer::tar::{typeflag, TarReader};

use crate::spec::{
    media, Descriptor, DockerManifestRecord, ImageConfig, Index, Manifest, Platform,
};
use crate::store::BlobSource;
use crate::ImageError;

/// Largest JSON document (index, manifest, config) read into memory.
pub const MAX_JSON: u64 = 16 << 20;

/// Where an image is read from.
pub enum ImageSource {
    Layout(PathBuf),
    Tarball {
        path: PathBuf,
        /// member name -> (data offset, size)
        members: BTreeMap<String, (u64, u64)>,
        /// Layers of a legacy `docker save` archive (`<id>/layer.tar`, listed by
        /// manifest.json): digest -> member name, so that they open by digest like blobs.
        layers: BTreeMap<Digest, String>,
    },
}

fn invalid(what: impl Into<String>, message: impl Into<String>) -> ImageError {
    ImageError::Invalid {
        what: what.into(),
        message: message.into(),
    }
}

impl ImageSource {
    /// Opens a layout directory or a tarball (optionally prefixed `oci-layout://`,
    /// `oci:`, `docker-archive:` or `oci-archive:`).
    pub fn open(spec: &str) -> Result<ImageSource, ImageError> {
        let path = spec
            .strip_prefix("oci-layout://")
            .or_else(|| spec.strip_prefix("oci:"))
            .or_else(|| spec.strip_prefix("docker-archive:"))
            .or_else(|| spec.strip_prefix("oci-archive:"))
            .unwrap_or(spec);
        let path = PathBuf::from(path);
        let md = std::fs::metadata(&path).map_err(|e| {
            invalid(
                path.display().to_string(),
                format!("cannot open the image: {e}"),
            )
        })?;
        if md.is_dir() {
            if !path.join("index.json").is_file() {
                return Err(invalid(
                    path.display().to_string(),
                    "is a directory but not an OCI layout (no index.json)",
                ));
            }
            return Ok(ImageSource::Layout(path));
        }
        let f = File::open(&path)?;
        let len = f.metadata()?.len();
        // Only the headers are read: layer data is sought over.
        let mut tr = TarReader::seekable(BufReader::new(f));
        let mut members = BTreeMap::new();
        loop {
            let h = tr.next_header().map_err(|e| {
                invalid(
                    path.display().to_string(),
                    format!("not a readable tar archive: {e}"),
                )
            })?;
            let Some(h) = h else { break };
            if h.typeflag != typeflag::REG && h.typeflag != typeflag::REG_A {
                continue;
            }
            let name = String::from_utf8_lossy(&h.name)
                .trim_start_matches("./")
                .to_string();
            let (offset, size) = (tr.offset(), h.size as u64);
            if offset.saturating_add(size) > len {
                return Err(invalid(
                    path.display().to_string(),
                    format!("not a readable tar archive: it ends inside {name}"),
                ));
            }
            members.insert(name, (offset, size));
        }
        if members.is_empty() {
            return Err(invalid(
                path.display().to_string(),
                "is not an image tarball (no files in it)",
            ));
        }
        let mut source = ImageSource::Tarball {
            path,
            members,
            layers: BTreeMap::new(),
        };
        let layers = source.legacy_layers()?;
        if let ImageSource::Tarball { layers: l, .. } = &mut source {
            *l = layers;
        }
        Ok(source)
    }

    /// The layers a legacy `docker save` archive (manifest.json, no index.json) names by
    /// path, by digest. A malformed manifest.json gives none here; loading reports it.
    fn legacy_layers(&self) -> Result<BTreeMap<Digest, String>, ImageError> {
        let mut out = BTreeMap::new();
        if self.read_small("index.json")?.is_some() {
            return Ok(out);
        }
        let Some(mj) = self.read_small("manifest.json")? else {
            return Ok(out);
        };
        let Ok(records) = serde_json::from_slice::<Vec<DockerManifestRecord>>(&mj) else {
            return Ok(out);
        };
        // Each member is looked at once, however often manifest.json lists it (a 16 MiB
        // manifest.json can name one large config a million times).
        let mut seen = std::collections::BTreeSet::new();
        let mut configs: BTreeMap<&str, Option<ImageConfig>> = BTreeMap::new();
        for rec in &records {
            if !configs.contains_key(rec.config.as_str()) {
                let config = self
                    .read_small(&rec.config)?
                    .and_then(|b| serde_json::from_slice(&b).ok());
                configs.insert(&rec.config, config);
            }
            let diff_ids = configs[rec.config.as_str()]
                .as_ref()
                .map_or(&[][..], |c| c.diff_ids());
            for (i, member) in rec.layers.iter().enumerate() {
                let member = member.trim_start_matches("./");
                if !seen.insert(member) {
                    continue;
                }
                if let Some(d) = self.legacy_layer_digest(member, diff_ids.get(i))? {
                    out.insert(d, member.to_string());
                }
            }
        }
        Ok(out)
    }

    /// The digest of a layer member, which every reader of the blob then verifies. Hashing
    /// it here would read the layer once more: a content-addressed name already says it,
    /// and an uncompressed layer's digest is its diff_id. Anything else is hashed.
    fn legacy_layer_digest(
        &self,
        member: &str,
        diff_id: Option<&Digest>,
    ) -> Result<Option<Digest>, ImageError> {
        let Some((mut r, _)) = self.open_member(member)? else {
            return Ok(None);
        };
        if let Some(d) = member
            .strip_prefix("blobs/sha256/")
            .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok())
        {
            return Ok(Some(d));
        }
        let mut head = [0u8; BlobCompression::MAGIC_LEN];
        let n = kiln_layer::tar::read_full(&mut r, &mut head)?;
        Ok(Some(match diff_id {
            Some(&d) if BlobCompression::sniff(&head[..n]) == BlobCompression::None => d,
            _ => kiln_digest::digest_reader(io::Cursor::new(&head[..n]).chain(r))?.0,
        }))
    }

    /// The raw (unverified) bytes of blob `d` and their length, or `None` when the source
    /// does not hold it. Legacy `docker save` layers open by their digest too.
    pub fn open_blob_raw(&self, d: &Digest) -> io::Result<Option<FileSection>> {
        match self {
            ImageSource::Layout(dir) => match File::open(dir.join("blobs/sha256").join(d.hex())) {
                Ok(f) => FileSection::whole(f).map(Some),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            ImageSource::Tarball { layers, .. } => match layers.get(d) {
                Some(member) => self.open_section(member),
                None => self.open_section(&format!("blobs/sha256/{}", d.hex())),
            },
        }
    }

    /// A tarball member as a section of the tarball.
    fn open_section(&self, name: &str) -> io::Result<Option<FileSection>> {
        match self {
            ImageSource::Layout(dir) => match File::open(dir.join(name)) {
                Ok(f) => FileSection::whole(f).map(Some),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            ImageSource::Tarball { path, members, .. } => match members.get(name) {
                Some(&(offset, size)) => {
                    Ok(Some(FileSection::new(File::open(path)?, offset, size)))
                }
                None => Ok(None),
            },
        }
    }

    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            ImageSource::Layout(p) => format!("OCI layout {}", p.display()),
            ImageSource::Tarball { path, .. } => format!("tarball {}", path.display()),
        }
    }

    fn open_member(&self, name: &str) -> io::Result<Option<(Box<dyn Read + '_>, u64)>> {
        Ok(self.open_section(name)?.map(|s| {
            let len = s.len();
            (Box::new(s) as Box<dyn Read>, len)
        }))
    }

    /// A small file (JSON) of the image, or `None`.
    pub fn read_small(&self, name: &str) -> Result<Option<Vec<u8>>, ImageError> {
        match self.open_member(name)? {
            None => Ok(None),
            Some((r, len)) => {
                if len > MAX_JSON {
                    return Err(invalid(
                        format!("{} in {}", name, self.describe()),
                        format!("is {len} bytes, more than the {MAX_JSON}-byte limit"),
                    ));
                }
                let mut buf = Vec::with_capacity(len as usize);
                r.take(MAX_JSON).read_to_end(&mut buf)?;
                Ok(Some(buf))
            }
        }
    }

    /// Reads a blob fully and checks its digest (for JSON blobs).
    pub fn read_blob_verified(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let name = format!("blobs/sha256/{}", d.hex());
        let bytes = self.read_small(&name)?.ok_or(ImageError::MissingBlob(*d))?;
        let actual = Digest::of(&bytes);
        if actual != *d {
            return Err(ImageError::Blob {
                digest: *d,
                message: format!("content has digest {actual}"),
            });
        }
        Ok(bytes)
    }

    /// Opens a blob that verifies its digest and size when read to the end: reading past
    /// the end reports a mismatch as an error.
    pub fn open_blob_verified(
        &self,
        d: &Digest,
        size: u64,
    ) -> Result<VerifiedReader<'_>, ImageError> {
        let r = self.open_blob_raw(d)?.ok_or(ImageError::MissingBlob(*d))?;
        let len = r.len();
        let r: Box<dyn Read + '_> = Box::new(r);
        if len != size {
            return Err(ImageError::Blob {
                digest: *d,
                message: format!("is {len} bytes, the manifest says {size}"),
            });
        }
        Ok(VerifiedReader {
            inner: Some(HashingReader::new(r)),
            expected: *d,
        })
    }
}

impl BlobSource for ImageSource {
    fn open_blob(&self, digest: &Digest) -> io::Result<Option<Box<dyn Read + '_>>> {
        Ok(self
            .open_blob_raw(digest)?
            .map(|r| Box::new(r) as Box<dyn Read>))
    }
}

/// A reader that fails at the end of the stream if the bytes did not have the digest.
pub struct VerifiedReader<'a> {
    inner: Option<HashingReader<Box<dyn Read + 'a>>>,
    expected: Digest,
}

impl Read for VerifiedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        let n = inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let (_, d, _) = self.inner.take().expect("present").finish();
            if d != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("blob {} has digest {d}", self.expected),
                ));
            }
        }
        Ok(n)
    }
}

/// The index of a multi-platform image in a source whose index.json names exactly one index
/// (as `docker buildx`, `skopeo copy --all` and kiln's own multi-platform outputs lay it out).
#[derive(Clone, Debug)]
pub struct PlatformIndex {
    /// The index blob as stored (its digest is the multi-platform image's identity).
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
    pub index: Index,
}

impl PlatformIndex {
    /// Reads it; an error says why the source is not one multi-platform image.
    pub fn read(source: &ImageSource) -> Result<PlatformIndex, ImageError> {
        let what = source.describe();
        let bytes = source
            .read_small("index.json")?
            .ok_or_else(|| invalid(&what, "has no index.json, so no multi-platform image"))?;
        let top: Index = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("index.json in {what}"), e.to_string()))?;
        let named = distinct(&top.manifests);
        let [one] = named.as_slice() else {
            return Err(invalid(
                &what,
                format!(
                    "index.json lists {} images, not one multi-platform index; take them one \
                     at a time with --platform",
                    named.len()
                ),
            ));
        };
        if !is_index(&one.media_type) {
            return Err(invalid(
                &what,
                format!(
                    "holds one image ({}), not a multi-platform index",
                    one.digest
                ),
            ));
        }
        let bytes = source.read_blob_verified(&one.digest)?;
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("index {} in {what}", one.digest), e.to_string()))?;
        if let Some(m) = index.manifests.iter().find(|m| is_index(&m.media_type)) {
            return Err(invalid(
                &what,
                format!(
                    "index {} nests another index ({}), which kiln does not follow",
                    one.digest, m.digest
                ),
            ));
        }
        Ok(PlatformIndex {
            bytes,
            digest: one.digest,
            media_type: one.media_type.clone(),
            index,
        })
    }
}

/// An image as found in a source, with every JSON document verified against its digest.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    /// `index.json` (bytes and parsed) when the source has one.
    pub index: Option<(Vec<u8>, Index)>,
    pub manifest_bytes: Vec<u8>,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub manifest: Manifest,
    pub config_bytes: Vec<u8>,
    pub config: ImageConfig,
}

impl LoadedImage {
    pub fn platform(&self) -> Platform {
        self.config.platform()
    }
}

/// Loads the single image in `source` (or the one for `platform` from a multi-platform
/// index; or the one whose manifest has `digest`).
pub fn load(
    source: &ImageSource,
    platform: Option<&Platform>,
    digest: Option<&Digest>,
) -> Result<LoadedImage, ImageError> {
    let what = source.describe();
    if let Some(index_bytes) = source.read_small("index.json")? {
        let index: Index = serde_json::from_slice(&index_bytes)
            .map_err(|e| invalid(format!("index.json in {what}"), e.to_string()))?;
        let desc = select(&index, source, platform, digest, &what, 0)?;
        return load_manifest(source, desc, Some((index_bytes, index)), platform, 0);
    }
    if let Some(mj) = source.read_small("manifest.json")? {
        return load_docker_save(source, &mj, &what);
    }
    Err(invalid(
        what,
        "has neither index.json nor manifest.json: not an image",
    ))
}

/// Indexes followed inside index.json's: real images nest one (a multi-platform index);
/// a chain of thousands would overflow the stack.
const MAX_NESTING: usize = 8;

fn too_deep(what: &str) -> ImageError {
    invalid(
        what,
        format!("indexes are nested more than {MAX_NESTING} deep"),
    )
}

/// The descriptors naming distinct digests, first occurrence first.
fn distinct(manifests: &[Descriptor]) -> Vec<&Descriptor> {
    let mut seen = std::collections::BTreeSet::new();
    manifests.iter().filter(|m| seen.insert(m.digest)).collect()
}

/// The image `index` names; `depth` counts the indexes followed to reach it.
fn select(
    index: &Index,
    source: &ImageSource,
    platform: Option<&Platform>,
    digest: Option<&Digest>,
    what: &str,
    depth: usize,
) -> Result<Descriptor, ImageError> {
    if depth > MAX_NESTING {
        return Err(too_deep(what));
    }
    if let Some(d) = digest {
        // By digest: directly listed, or inside a nested index.
        if let Some(m) = index.manifests.iter().find(|m| m.digest == *d) {
            return Ok(m.clone());
        }
        for m in &index.manifests {
            if is_index(&m.media_type) {
                let bytes = source.read_blob_verified(&m.digest)?;
                let nested: Index = serde_json::from_slice(&bytes)
                    .map_err(|e| invalid(format!("index {} in {what}", m.digest), e.to_string()))?;
                if let Some(x) = nested.manifests.iter().find(|x| x.digest == *d) {
                    return Ok(x.clone());
                }
            }
        }
        // A manifest blob that the index does not list (e.g. a layout holding several).
        let bytes = source.read_blob_verified(d)?;
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("manifest {d} in {what}"), e.to_string()))?;
        let mt = if m.media_type.is_empty() {
            media::OCI_MANIFEST.to_string()
        } else {
            m.media_type.clone()
        };
        return Ok(Descriptor::new(&mt, *d, bytes.len() as u64));
    }
    // Several index entries for the same manifest (one per name) are one image.
    let unique = distinct(&index.manifests);
    match unique.as_slice() {
        [] => Err(invalid(
            format!("index.json in {what}"),
            "lists no manifests",
        )),
        [one] if !is_index(&one.media_type) => Ok((*one).clone()),
        [one] => {
            let bytes = source.read_blob_verified(&one.digest)?;
            let nested: Index = serde_json::from_slice(&bytes)
                .map_err(|e| invalid(format!("index {} in {what}", one.digest), e.to_string()))?;
            select(&nested, source, platform, None, what, depth + 1)
        }
        many => {
            let want = platform.ok_or_else(|| {
                invalid(
                    what,
                    "holds several images; choose one with a platform or a manifest digest",
                )
            })?;
            many.iter()
                .find(|m| {
                    m.platform.as_ref().is_some_and(|p| {
                        p.os == want.os
                            && p.architecture == want.architecture
                            && (want.variant.is_empty() || p.variant == want.variant)
                    })
                })
                .map(|m| (*m).clone())
                .ok_or_else(|| invalid(what, format!("has no image for {}", want.display())))
        }
    }
}

fn is_index(mt: &str) -> bool {
    mt == media::OCI_INDEX || mt == media::DOCKER_LIST
}

fn load_manifest(
    source: &ImageSource,
    desc: Descriptor,
    index: Option<(Vec<u8>, Index)>,
    platform: Option<&Platform>,
    depth: usize,
) -> Result<LoadedImage, ImageError> {
    let what = source.describe();
    if depth > MAX_NESTING {
        return Err(too_deep(&what));
    }
    let bytes = source.read_blob_verified(&desc.digest)?;
    if is_index(&desc.media_type) {
        let nested: Index = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("index {} in {what}", desc.digest), e.to_string()))?;
        let d = select(&nested, source, platform, None, &what, depth + 1)?;
        return load_manifest(source, d, index, platform, depth + 1);
    }
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("manifest {} in {what}", desc.digest), e.to_string()))?;
    let config_bytes = source.read_blob_verified(&manifest.config.digest)?;
    let config: ImageConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
        invalid(
            format!("config {} in {what}", manifest.config.digest),
            e.to_string(),
        )
    })?;
    let mt = if !desc.media_type.is_empty() {
        desc.media_type.clone()
    } else if !manifest.media_type.is_empty() {
        manifest.media_type.clone()
    } else {
        media::OCI_MANIFEST.to_string()
    };
    Ok(LoadedImage {
        index,
        manifest_digest: desc.digest,
        manifest_bytes: bytes,
        manifest_media_type: mt,
        manifest,
        config_bytes,
        config,
    })
}

/// `docker save`'s older layout: `manifest.json` names a config file and uncompressed layer
/// tars by path. A manifest is synthesised (uncompressed layers) so the rest of kiln can
/// treat it like any image; its digest is not a registry digest.
fn load_docker_save(
    source: &ImageSource,
    mj: &[u8],
    what: &str,
) -> Result<LoadedImage, ImageError> {
    let records: Vec<DockerManifestRecord> = serde_json::from_slice(mj)
        .map_err(|e| invalid(format!("manifest.json in {what}"), e.to_string()))?;
    let rec = match records.as_slice() {
        [one] => one,
        [] => {
            return Err(invalid(
                format!("manifest.json in {what}"),
                "lists no images",
            ))
        }
        _ => {
            return Err(invalid(
                format!("manifest.json in {what}"),
                "lists several images; kiln reads one image per archive",
            ))
        }
    };
    let config_bytes = source
        .read_small(&rec.config)?
        .ok_or_else(|| invalid(what, format!("config {} is missing", rec.config)))?;
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| invalid(format!("{} in {what}", rec.config), e.to_string()))?;
    let digests: BTreeMap<&str, Digest> = match source {
        ImageSource::Tarball { layers, .. } => {
            layers.iter().map(|(d, m)| (m.as_str(), *d)).collect()
        }
        ImageSource::Layout(_) => BTreeMap::new(),
    };
    let mut layers = Vec::new();
    for l in &rec.layers {
        let l = l.trim_start_matches("./");
        let (_, size) = source
            .open_member(l)?
            .ok_or_else(|| invalid(what, format!("layer {l} is missing")))?;
        let digest = match digests.get(l) {
            Some(&d) => d,
            None => {
                let named = l
                    .strip_prefix("blobs/sha256/")
                    .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok());
                named.ok_or_else(|| invalid(what, format!("layer {l}: cannot tell its digest")))?
            }
        };
        layers.push(Descriptor::new(media::DOCKER_LAYER, digest, size));
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: media::DOCKER_MANIFEST.into(),
        artifact_type: String::new(),
        config: Descriptor::new(
            media::DOCKER_CONFIG,
            Digest::of(&config_bytes),
            config_bytes.len() as u64,
        ),
        layers,
        subject: None,
        annotations: BTreeMap::new(),
    };
    let manifest_bytes = crate::gojson::to_vec_indent(&manifest);
    Ok(LoadedImage {
        index: None,
        manifest_digest: Digest::of(&manifest_bytes),
        manifest_bytes,
        manifest_media_type: media::DOCKER_MANIFEST.into(),
        manifest,
        config_bytes,
        config,
    })
}

/// Path of a layout or tarball given on the command line, for messages.
pub fn display_path(p: &Path) -> String {
    p.display().to_string()
}
