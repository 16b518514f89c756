//! A content-addressed local cache of blobs and manifests, laid out like an OCI image layout
//! (`blobs/sha256/<hex>`), and the "fetch through the cache" helpers built on it.
//!
//! Nothing partial is ever visible under a digest's name: content is written to a temporary
//! file in the same directory while it is hashed, and renamed into place only when size and
//! digest check out; on any failure the temporary file is deleted. Lookups check the size
//! again (and, on request, the digest), and drop entries that fail.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use kiln_digest::{digest_reader, Digest, HashingWriter};

use crate::client::Client;
use crate::error::{Error, Result, Site};
use crate::manifest::{Descriptor, Manifest, ManifestError, MediaType};
use crate::platform::{select_from, Platform};
use crate::reference::{Reference, Repository, Target};

/// How far a lookup re-checks a cached blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// The file's size must equal the expected size (when one is given). Cheap.
    Size,
    /// Also re-hash the file.
    Digest,
}

/// Where blobs come from when they are not cached.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Online(&'a Client),
    /// Use the cache only; anything missing is reported, by digest.
    Offline,
}

/// A blob in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedBlob {
    pub descriptor: Descriptor,
    pub path: PathBuf,
}

/// An image whose manifests and blobs are all in the cache.
#[derive(Clone, Debug)]
pub struct PulledImage {
    /// The reference pinned to the digest it resolved to (the index's, for a multi-platform
    /// image).
    pub reference: Reference,
    /// The index the manifest was picked from, if the reference named one.
    pub index: Option<Manifest>,
    /// The image manifest for the platform.
    pub manifest: Manifest,
    pub config: CachedBlob,
    pub layers: Vec<CachedBlob>,
}

/// The cache directory.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
}

/// How deep indexes may nest before kiln gives up on finding an image manifest.
const MAX_INDEX_DEPTH: usize = 4;

impl Cache {
    /// `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`; `None` when neither variable is usable.
    pub fn default_root() -> Option<PathBuf> {
        root_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
    }

    /// Opens (creating if needed) a cache rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Cache> {
        let cache = Cache { root: root.into() };
        for dir in [cache.blob_dir(), cache.media_type_dir()] {
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Ok(cache)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Media types of cached manifests (the blob itself holds the bytes).
    fn media_type_dir(&self) -> PathBuf {
        self.root.join("manifests").join("sha256")
    }

    /// Where blob `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(digest.hex())
    }

    /// The path of blob `digest` if it is cached and passes `verify`. An entry that fails is
    /// deleted, so that the next fetch replaces it.
    pub fn blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
        verify: Verify,
    ) -> Result<Option<PathBuf>> {
        let path = self.blob_path(digest);
        let meta = match fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let size_ok = size.is_none_or(|s| s == meta.len());
        let digest_ok = size_ok
            && match verify {
                Verify::Size => true,
                Verify::Digest => {
                    let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
                    let (actual, _) = digest_reader(file).map_err(|e| Error::io(&path, e))?;
                    actual == *digest
                }
            };
        if digest_ok {
            return Ok(Some(path));
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Stores blob `digest` from whatever `fill` writes, checking size (when given) and digest
    /// before it becomes visible. An error from `fill` or from the checks leaves nothing behind.
    pub fn insert_blob_with<F>(
        &self,
        digest: &Digest,
        size: Option<u64>,
        fill: F,
    ) -> Result<PathBuf>
    where
        F: FnOnce(&mut dyn Write) -> Result<()>,
    {
        let dir = self.blob_dir();
        let mut tmp = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        let tmp_path = tmp.path().to_path_buf();
        let (actual, n) = {
            let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 16, tmp.as_file_mut()));
            fill(&mut w)?;
            w.flush().map_err(|e| Error::io(&tmp_path, e))?;
            let (_, actual, n) = w.finish();
            (actual, n)
        };
        let site = || Site::new(self.root.display(), format!("blob {digest}"));
        if let Some(expected) = size.filter(|&s| s != n) {
            return Err(Error::SizeMismatch {
                site: site(),
                expected,
                actual: n,
            });
        }
        if actual != *digest {
            return Err(Error::DigestMismatch {
                site: site(),
                actual,
            });
        }
        let file = tmp.as_file();
        file.sync_all().map_err(|e| Error::io(&tmp_path, e))?;
        set_readable(file).map_err(|e| Error::io(&tmp_path, e))?;
        let path = self.blob_path(digest);
        tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(path)
    }

    /// Stores a blob read from `reader` (a local file, a build output).
    pub fn insert_blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<PathBuf> {
        let src = Site::new("local content", format!("blob {digest}"));
        self.insert_blob_with(digest, size, |w| {
            io::copy(reader, w).map(|_| ()).map_err(|e| Error::Source {
                site: src,
                source: e,
            })
        })
    }

    /// A cached manifest, re-verified against its digest (manifests are small).
    pub fn manifest(&self, digest: &Digest) -> Result<Option<Manifest>> {
        let type_path = self.media_type_dir().join(digest.hex());
        let media_type = match fs::read_to_string(&type_path) {
            Ok(s) => MediaType::parse(s.trim()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&type_path, e)),
        };
        let Some(media_type) = media_type else {
            // Unreadable entry: forget it.
            let _ = fs::remove_file(&type_path);
            return Ok(None);
        };
        if self.blob(digest, None, Verify::Digest)?.is_none() {
            return Ok(None);
        }
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let m = Manifest::new(media_type, bytes);
        // Checked again after reading, in case the file changed in between.
        Ok((m.digest == *digest).then_some(m))
    }

    /// Stores a manifest (its bytes as a blob, its media type beside).
    pub fn insert_manifest(&self, m: &Manifest) -> Result<()> {
        self.insert_blob(
            &m.digest,
            Some(m.bytes.len() as u64),
            &mut m.bytes.as_slice(),
        )?;
        let dir = self.media_type_dir();
        let mut tmp = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        tmp.write_all(m.media_type.as_str().as_bytes())
            .and_then(|()| set_readable(tmp.as_file()))
            .map_err(|e| Error::io(tmp.path(), e))?;
        let path = dir.join(m.digest.hex());
        tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }

    /// Which of these blobs are not in the cache (size-checked), in the order given, without
    /// repeats.
    pub fn missing<'d>(
        &self,
        blobs: impl IntoIterator<Item = (&'d Digest, Option<u64>)>,
    ) -> Result<Vec<Digest>> {
        let mut out: Vec<Digest> = Vec::new();
        for (d, size) in blobs {
            if !out.contains(d) && self.blob(d, size, Verify::Size)?.is_none() {
                out.push(*d);
            }
        }
        Ok(out)
    }

    /// The path of blob `digest`, downloading it from `repo` only when it is not cached.
    pub fn fetch_blob(
        &self,
        client: &Client,
        repo: &Repository,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<PathBuf> {
        if let Some(path) = self.blob(digest, size, Verify::Size)? {
            return Ok(path);
        }
        self.insert_blob_with(digest, size, |w| {
            client.get_blob(repo, digest, size, w).map(|_| ())
        })
    }

    /// Manifest `digest`, from the cache or else from `repo` (then cached).
    pub fn fetch_manifest(
        &self,
        client: &Client,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<Manifest> {
        if let Some(m) = self.manifest(digest)? {
            return Ok(m);
        }
        let m = client.get_manifest(repo, &Target::Digest(*digest))?;
        self.insert_manifest(&m)?;
        Ok(m)
    }

    fn manifest_from(
        &self,
        source: Source<'_>,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<Manifest> {
        match source {
            Source::Online(client) => self.fetch_manifest(client, repo, digest),
            Source::Offline => self.manifest(digest)?.ok_or_else(|| Error::Offline {
                cache: self.root.clone(),
                missing: vec![*digest],
            }),
        }
    }

    /// The manifest or index a reference pinned by digest names, fetched (online) or read
    /// from the cache, verified against the digest.
    pub fn top_manifest(&self, source: Source<'_>, reference: &Reference) -> Result<Manifest> {
        match reference.target() {
            Target::Digest(d) => self.manifest_from(source, reference.repository(), &d),
            Target::Tag(_) => Err(Error::OfflineTag {
                reference: reference.to_string(),
            }),
        }
    }

    /// Every image the multi-platform index `top` lists, except those `skip` names, made
    /// sure of in the cache as [`Cache::pull`] does for one. `index` is the reference pinned
    /// to `top`. An index nested in it is refused: kiln does not follow one.
    pub fn pull_index_images(
        &self,
        source: Source<'_>,
        index: &Reference,
        top: &Manifest,
        skip: impl Fn(&Descriptor) -> bool,
    ) -> Result<Vec<PulledImage>> {
        let site = || Site::new(index.repository(), format!("manifest {}", top.digest));
        let parsed = top.index().map_err(|e| Error::Manifest {
            site: site(),
            source: e,
        })?;
        let mut images = Vec::new();
        for entry in parsed.manifests.iter().filter(|d| !skip(d)) {
            if MediaType::parse(&entry.media_type).is_some_and(|m| m.is_index()) {
                return Err(Error::Manifest {
                    site: site(),
                    source: ManifestError::NestedIndex {
                        index: top.digest,
                        nested: entry.digest,
                    },
                });
            }
            // An image manifest: the platform only picks from an index, so any will do.
            images.push(self.pull(source, &index.pinned(entry.digest), &Platform::default())?);
        }
        Ok(images)
    }

    /// Makes sure an image is in the cache: resolves the reference (online only; offline, it
    /// must be pinned by digest), picks the manifest for `platform` from an index, and fetches
    /// config and layers that are missing. Offline, every missing blob is reported at once.
    pub fn pull(
        &self,
        source: Source<'_>,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<PulledImage> {
        let repo = reference.repository();
        let top = match (reference.target(), source) {
            (Target::Digest(d), _) => d,
            (Target::Tag(t), Source::Online(client)) => client.resolve_tag(repo, t)?.digest,
            (Target::Tag(_), Source::Offline) => {
                return Err(Error::OfflineTag {
                    reference: reference.to_string(),
                })
            }
        };
        let mut manifest = self.manifest_from(source, repo, &top)?;
        let mut index = None;
        for _ in 0..MAX_INDEX_DEPTH {
            if !manifest.media_type.is_index() {
                break;
            }
            let site = Site::new(repo, format!("manifest {}", manifest.digest));
            let parsed = manifest.index().map_err(|e| Error::Manifest {
                site: site.clone(),
                source: e,
            })?;
            let desc =
                select_from(&parsed, platform).map_err(|e| Error::Manifest { site, source: e })?;
            let child = self.manifest_from(source, repo, &desc.digest)?;
            if child.bytes.len() as u64 != desc.size {
                return Err(Error::SizeMismatch {
                    site: Site::new(repo, format!("manifest {}", desc.digest)),
                    expected: desc.size,
                    actual: child.bytes.len() as u64,
                });
            }
            index.get_or_insert(manifest);
            manifest = child;
        }
        let site = Site::new(repo, format!("manifest {}", manifest.digest));
        let image = manifest
            .image()
            .map_err(|e| Error::Manifest { site, source: e })?;
        let mut blobs = Vec::new();
        let mut missing = Vec::new();
        for desc in image.blobs() {
            let path = match source {
                Source::Online(client) => {
                    Some(self.fetch_blob(client, repo, &desc.digest, Some(desc.size))?)
                }
                Source::Offline => self.blob(&desc.digest, Some(desc.size), Verify::Size)?,
            };
            match path {
                Some(path) => blobs.push(CachedBlob {
                    descriptor: desc.clone(),
                    path,
                }),
                None if !missing.contains(&desc.digest) => missing.push(desc.digest),
                None => {}
            }
        }
        if !missing.is_empty() {
            return Err(Error::Offline {
                cache: self.root.clone(),
                missing,
            });
        }
        let mut blobs = blobs.into_iter();
        let Some(config) = blobs.next() else {
            // blobs() always yields the config first; an empty list means nothing was found.
            return Err(Error::Offline {
                cache: self.root.clone(),
                missing: vec![image.config.digest],
            });
        };
        Ok(PulledImage {
            reference: reference.pinned(top),
            index,
            manifest,
            config,
            layers: blobs.collect(),
        })
    }
}

/// Cached files are readable by all, whatever the umask, as in an OCI layout.
fn set_readable(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(())
    }
}

fn root_from(xdg: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    // The XDG spec says relative values are to be ignored.
    match xdg.map(PathBuf::from).filter(|p| p.is_absolute()) {
        Some(dir) => Some(dir.join("kiln")),
        None => home
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".cache").join("kiln")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn default_root_follows_xdg_then_home() {
        assert_eq!(
            root_from(Some("/xdg".into()), Some("/home/u".into())),
            Some(PathBuf::from("/xdg/kiln"))
        );
        assert_eq!(
            root_from(Some("relative".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.cache/kiln"))
        );
        assert_eq!(
            root_from(None, Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.cache/kiln"))
        );
        assert_eq!(root_from(None, None), None);
    }

    #[test]
    fn insert_verifies_and_leaves_nothing_on_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let data = b"hello blob".to_vec();
        let d = Digest::of(&data);

        let wrong = Digest::of(b"other");
        let e = cache.insert_blob(&wrong, None, &mut &data[..]).unwrap_err();
        assert!(
            matches!(e, Error::DigestMismatch { actual, .. } if actual == d),
            "{e}"
        );
        let e = cache.insert_blob(&d, Some(3), &mut &data[..]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::SizeMismatch {
                    expected: 3,
                    actual: 10,
                    ..
                }
            ),
            "{e}"
        );
        let e = cache
            .insert_blob_with(&d, None, |w| {
                w.write_all(&data[..4]).unwrap();
                Err(Error::NotFound {
                    site: Site::new("r", "x"),
                })
            })
            .unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }));
        assert!(
            entries(&cache.blob_dir()).is_empty(),
            "no partial or wrong files"
        );

        let path = cache.insert_blob(&d, Some(10), &mut &data[..]).unwrap();
        assert_eq!(path, cache.blob_path(&d));
        assert_eq!(fs::read(&path).unwrap(), data);
        assert_eq!(entries(&cache.blob_dir()), [d.hex()]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o644
            );
        }
        assert_eq!(
            cache.blob(&d, Some(10), Verify::Digest).unwrap(),
            Some(path.clone())
        );
        assert_eq!(
            cache
                .missing([(&d, Some(10)), (&wrong, None), (&wrong, None)])
                .unwrap(),
            [wrong]
        );
    }

    #[test]
    fn corrupt_entries_are_dropped_on_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let data = b"0123456789";
        let d = Digest::of(data);
        let path = cache.insert_blob(&d, None, &mut &data[..]).unwrap();

        // Same size, different bytes: only a digest check notices.
        fs::write(&path, b"9876543210").unwrap();
        assert_eq!(
            cache.blob(&d, Some(10), Verify::Size).unwrap(),
            Some(path.clone())
        );
        assert_eq!(cache.blob(&d, Some(10), Verify::Digest).unwrap(), None);
        assert!(!path.exists());

        cache.insert_blob(&d, None, &mut &data[..]).unwrap();
        fs::write(&path, b"short").unwrap();
        assert_eq!(cache.blob(&d, Some(10), Verify::Size).unwrap(), None);
        assert!(!path.exists());
    }

    #[test]
    fn manifests_keep_their_media_type() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let m = Manifest::new(
            MediaType::DockerManifest,
            br#"{"schemaVersion":2}"#.to_vec(),
        );
        assert_eq!(cache.manifest(&m.digest).unwrap(), None);
        cache.insert_manifest(&m).unwrap();
        assert_eq!(cache.manifest(&m.digest).unwrap(), Some(m.clone()));
        fs::write(cache.blob_path(&m.digest), b"{}").unwrap();
        assert_eq!(
            cache.manifest(&m.digest).unwrap(),
            None,
            "tampered manifest is not served"
        );
    }

    #[test]
    fn offline_pull_of_a_tag_is_refused_and_missing_manifests_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let r = Reference::parse("127.0.0.1:5000/busybox:latest").unwrap();
        let e = cache
            .pull(Source::Offline, &r, &Platform::linux_amd64())
            .unwrap_err();
        assert!(matches!(e, Error::OfflineTag { .. }), "{e}");
        assert_eq!(e.class(), crate::ErrorClass::BadInput);

        let d = Digest::of(b"m");
        let e = cache
            .pull(Source::Offline, &r.pinned(d), &Platform::linux_amd64())
            .unwrap_err();
        assert!(
            matches!(&e, Error::Offline { missing, .. } if missing == &vec![d]),
            "{e}"
        );
    }
}
