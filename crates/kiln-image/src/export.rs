//! Writing an image as BuildKit's exporters do: a docker- or OCI-format tarball (both are an
//! OCI layout in a tar; docker adds `manifest.json`), or an OCI layout directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use kiln_digest::Digest;
use kiln_layer::tar::{typeflag, Header, TarWriter, Timestamp};

use crate::gojson;
use crate::spec::{media, Descriptor, DockerManifestRecord, Index, Platform};
use crate::store::{require_blob, BlobSource};
use crate::ImageError;

/// Which tarball layout to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TarballKind {
    /// OCI layout plus `manifest.json` (what `docker load` and `docker-archive:` read).
    Docker,
    /// OCI layout only.
    Oci,
}

/// An image name as the exporters record it: `full` goes into the index annotation
/// `io.containerd.image.name`, `familiar` into `RepoTags`, `tag` into
/// `org.opencontainers.image.ref.name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageName {
    pub full: String,
    pub familiar: String,
    pub tag: Option<String>,
}

impl ImageName {
    /// Records the name on an index descriptor, as containerd's exporter does.
    fn annotate(&self, d: &mut Descriptor) {
        d.annotations
            .insert("io.containerd.image.name".into(), self.full.clone());
        if let Some(tag) = &self.tag {
            d.annotations
                .insert("org.opencontainers.image.ref.name".into(), tag.clone());
        }
    }
}

/// A single-platform image ready to be written out.
#[derive(Clone, Debug)]
pub struct Image {
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub layers: Vec<Descriptor>,
    pub platform: Platform,
    /// `org.opencontainers.image.created` for the index descriptor (RFC 3339), if any.
    pub created: Option<String>,
}

impl Image {
    /// The descriptor of the manifest as the index lists it for `name`.
    fn index_descriptor(&self, name: Option<&ImageName>) -> Descriptor {
        let mut d = Descriptor::new(
            &self.manifest_media_type,
            self.manifest_digest,
            self.manifest.len() as u64,
        );
        if let Some(c) = &self.created {
            d.annotations
                .insert("org.opencontainers.image.created".into(), c.clone());
        }
        if let Some(n) = name {
            n.annotate(&mut d);
        }
        d.platform = Some(Platform {
            os_features: Vec::new(),
            ..self.platform.clone()
        });
        d
    }

    /// `index.json`: one descriptor per name, or one without a name.
    pub fn index_json(&self, names: &[ImageName]) -> Vec<u8> {
        let manifests = if names.is_empty() {
            vec![self.index_descriptor(None)]
        } else {
            names
                .iter()
                .map(|n| self.index_descriptor(Some(n)))
                .collect()
        };
        gojson::to_vec(&Index::oci(manifests))
    }

    /// Docker's `manifest.json`.
    pub fn docker_manifest_json(&self, names: &[ImageName]) -> Vec<u8> {
        let tags: Vec<String> = names.iter().map(|n| n.familiar.clone()).collect();
        gojson::to_vec(&[DockerManifestRecord {
            config: format!("blobs/sha256/{}", self.config_digest.hex()),
            repo_tags: (!tags.is_empty()).then_some(tags),
            layers: self
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                .collect(),
        }])
    }

    /// Every blob of the image, deduplicated and sorted by digest, with its size.
    fn blobs(&self) -> Vec<(Digest, u64)> {
        let mut set = BTreeSet::new();
        set.insert((self.manifest_digest, self.manifest.len() as u64));
        set.insert((self.config_digest, self.config.len() as u64));
        for l in &self.layers {
            set.insert((l.digest, l.size as u64));
        }
        // One entry per digest (sizes agree when digests do).
        let mut out: Vec<(Digest, u64)> = Vec::new();
        for (d, s) in set {
            if out.last().map(|(ld, _)| *ld) != Some(d) {
                out.push((d, s));
            }
        }
        out
    }

    /// The blobs the image holds in memory: its manifest and config.
    fn documents(&self) -> impl Iterator<Item = (Digest, &[u8])> {
        [
            (self.manifest_digest, &self.manifest[..]),
            (self.config_digest, &self.config[..]),
        ]
        .into_iter()
    }
}

pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Several single-platform images under one index (an OCI image index blob).
#[derive(Clone, Debug)]
pub struct ImageSet {
    pub images: Vec<Image>,
    /// The index blob, listing the images' manifests.
    pub index: Vec<u8>,
    pub index_digest: Digest,
}

impl ImageSet {
    /// `index.json`: the index blob, once per name (or once without a name).
    fn index_json(&self, names: &[ImageName]) -> Vec<u8> {
        let descriptor = |name: Option<&ImageName>| {
            let mut d =
                Descriptor::new(media::OCI_INDEX, self.index_digest, self.index.len() as u64);
            if let Some(n) = name {
                n.annotate(&mut d);
            }
            d
        };
        let manifests = if names.is_empty() {
            vec![descriptor(None)]
        } else {
            names.iter().map(|n| descriptor(Some(n))).collect()
        };
        gojson::to_vec(&Index::oci(manifests))
    }
}

/// What an OCI layout holds: every blob (sorted by digest, once each), the documents kept in
/// memory, `index.json`, and for docker tarballs `manifest.json`.
struct Contents<'a> {
    blobs: Vec<(Digest, u64)>,
    documents: BTreeMap<Digest, &'a [u8]>,
    source: &'a dyn BlobSource,
    index_json: Vec<u8>,
    manifest_json: Option<Vec<u8>>,
}

impl<'a> Contents<'a> {
    fn of_image(
        image: &'a Image,
        source: &'a dyn BlobSource,
        kind: TarballKind,
        names: &[ImageName],
    ) -> Contents<'a> {
        Contents {
            blobs: image.blobs(),
            documents: image.documents().collect(),
            source,
            index_json: image.index_json(names),
            manifest_json: (kind == TarballKind::Docker).then(|| image.docker_manifest_json(names)),
        }
    }

    fn of_set(set: &'a ImageSet, source: &'a dyn BlobSource, names: &[ImageName]) -> Contents<'a> {
        let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
        let mut documents: BTreeMap<Digest, &'a [u8]> = BTreeMap::new();
        for image in &set.images {
            blobs.extend(image.blobs());
            documents.extend(image.documents());
        }
        blobs.insert(set.index_digest, set.index.len() as u64);
        documents.insert(set.index_digest, &set.index[..]);
        Contents {
            blobs: blobs.into_iter().collect(),
            documents,
            source,
            index_json: set.index_json(names),
            manifest_json: None,
        }
    }

    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + 'a>, ImageError> {
        match self.documents.get(digest) {
            Some(bytes) => Ok(Box::new(*bytes)),
            None => require_blob(self.source, digest),
        }
    }
}

fn member(name: &str, flag: u8, mode: i64, size: usize) -> Header {
    Header {
        typeflag: flag,
        name: name.as_bytes().to_vec(),
        mode,
        size: size as i64,
        mtime: Some(Timestamp::EPOCH),
        ..Header::default()
    }
}

/// Writes the image as a tarball the way containerd's archive exporter (used by BuildKit)
/// does: members sorted by name, USTAR, uid/gid 0, mtime 0.
pub fn write_tarball<W: Write>(
    w: W,
    image: &Image,
    source: &dyn BlobSource,
    kind: TarballKind,
    names: &[ImageName],
) -> Result<W, ImageError> {
    write_contents(w, &Contents::of_image(image, source, kind, names))
}

/// Writes several images under their index as an OCI-format tarball (members as
/// [`write_tarball`] writes them).
pub fn write_set_tarball<W: Write>(
    w: W,
    set: &ImageSet,
    source: &dyn BlobSource,
    names: &[ImageName],
) -> Result<W, ImageError> {
    write_contents(w, &Contents::of_set(set, source, names))
}

fn write_contents<W: Write>(w: W, c: &Contents<'_>) -> Result<W, ImageError> {
    let mut tw = TarWriter::new(w);
    tw.write_header(&member("blobs/", typeflag::DIR, 0o755, 0))?;
    tw.write_header(&member("blobs/sha256/", typeflag::DIR, 0o755, 0))?;
    for &(digest, size) in &c.blobs {
        let name = format!("blobs/sha256/{}", digest.hex());
        tw.write_header(&member(&name, typeflag::REG, 0o444, size as usize))?;
        let r = c.open(&digest)?;
        tw.copy_data(r).map_err(|e| ImageError::Blob {
            digest,
            message: e.to_string(),
        })?;
    }
    tw.write_header(&member(
        "index.json",
        typeflag::REG,
        0o644,
        c.index_json.len(),
    ))?;
    tw.write_data(&c.index_json)?;
    if let Some(mj) = &c.manifest_json {
        tw.write_header(&member("manifest.json", typeflag::REG, 0o644, mj.len()))?;
        tw.write_data(mj)?;
    }
    tw.write_header(&member(
        "oci-layout",
        typeflag::REG,
        0o444,
        OCI_LAYOUT.len(),
    ))?;
    tw.write_data(OCI_LAYOUT)?;
    Ok(tw.finish()?)
}

/// Writes the image as an OCI layout directory at `dir` (which must not exist yet): built in
/// a temp directory beside it and renamed into place, so a failure leaves nothing behind.
pub fn write_layout_dir(
    dir: &Path,
    image: &Image,
    source: &dyn BlobSource,
    names: &[ImageName],
) -> Result<(), ImageError> {
    write_layout(
        dir,
        &Contents::of_image(image, source, TarballKind::Oci, names),
    )
}

/// Writes several images under their index as an OCI layout directory (as
/// [`write_layout_dir`] does).
pub fn write_set_layout_dir(
    dir: &Path,
    set: &ImageSet,
    source: &dyn BlobSource,
    names: &[ImageName],
) -> Result<(), ImageError> {
    write_layout(dir, &Contents::of_set(set, source, names))
}

fn write_layout(dir: &Path, c: &Contents<'_>) -> Result<(), ImageError> {
    if dir.exists() {
        return Err(ImageError::Output {
            path: dir.to_path_buf(),
            message: "already exists; choose a new directory for an OCI layout".into(),
        });
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".kiln-layout-")
        .tempdir_in(&parent)
        .map_err(|e| ImageError::Output {
            path: dir.to_path_buf(),
            message: format!(
                "cannot create a temporary directory in {}: {e}",
                parent.display()
            ),
        })?;
    let blobs = tmp.path().join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    for (digest, _) in &c.blobs {
        let mut r = c.open(digest)?;
        let mut f = fs::File::create(blobs.join(digest.hex()))?;
        std::io::copy(&mut r, &mut f)?;
    }
    fs::write(tmp.path().join("index.json"), &c.index_json)?;
    fs::write(tmp.path().join("oci-layout"), OCI_LAYOUT)?;
    let kept = tmp.keep();
    fs::rename(&kept, dir).map_err(|e| {
        let _ = fs::remove_dir_all(&kept);
        ImageError::Output {
            path: dir.to_path_buf(),
            message: e.to_string(),
        }
    })?;
    Ok(())
}

/// Writes a file atomically: a temp file beside `dest`, renamed over it only when `write`
/// succeeded. On any error nothing is left behind.
pub fn write_file_atomically<F>(dest: &Path, write: F) -> Result<(), ImageError>
where
    F: FnOnce(&mut std::io::BufWriter<&mut fs::File>) -> Result<(), ImageError>,
{
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let out_err = |message: String| ImageError::Output {
        path: dest.to_path_buf(),
        message,
    };
    if dest.is_dir() {
        return Err(out_err("is a directory".into()));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".kiln-out-")
        .tempfile_in(&parent)
        .map_err(|e| out_err(format!("cannot write in {}: {e}", parent.display())))?;
    {
        let mut bw = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        write(&mut bw)?;
        bw.flush()?;
    }
    tmp.as_file().sync_all()?;
    // Outputs are world-readable like any file `docker save` writes, whatever the umask.
    set_mode_644(tmp.as_file())?;
    tmp.persist(dest)
        .map_err(|e| out_err(e.error.to_string()))?;
    Ok(())
}

#[cfg(unix)]
fn set_mode_644(f: &fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_mode_644(_: &fs::File) -> std::io::Result<()> {
    Ok(())
}
