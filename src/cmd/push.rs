//! `kiln push`: a docker- or OCI-format tarball or an OCI layout directory to a registry.
//! Blobs the registry has are skipped; the manifest goes up byte for byte with its own media
//! type, so the digest the registry reports is the local image digest (checked).

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::PathBuf;

use clap::Args;
use kiln_digest::Digest;
use kiln_image::import::{self, ImageSource, LoadedImage};
use kiln_registry::{Manifest, MediaType, PushOutcome, Target, UploadMode};

use crate::cmd::pull::{client, parse_reference};
use crate::fail::{CliResult, Failure};
use crate::progress::ProgressMode;

#[derive(Args, Debug)]
#[command(after_long_help = PUSH_EXAMPLES)]
pub struct PushArgs {
    /// Image to push: docker- or OCI-format tarball, or OCI layout directory
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// Where to: NAME[:TAG] (default tag `latest`) or NAME@sha256:... (must be the image's digest)
    #[arg(value_name = "REF")]
    pub reference: String,

    /// Image to pick when IMAGE holds several, os/arch[/variant]
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    /// Upload blobs in chunks of this many bytes (PATCH requests) instead of one PUT each
    #[arg(long = "chunk-size", value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_size: Option<u64>,

    /// Registry (host[:port]) that may be reached over plain http (loopback always may)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,

    /// Write the pushed manifest's digest (sha256:...) to this file
    #[arg(long = "digest-file", value_name = "PATH")]
    pub digest_file: Option<PathBuf>,

    /// Progress output on stderr (bars only in `auto` mode on a terminal)
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
}

const PUSH_EXAMPLES: &str = "\
Examples:
  kiln push image.tar registry.example/app:1.2
  kiln push --chunk-size 5242880 layout-dir registry.example/app@sha256:...

Credentials come from Docker's config.json ($DOCKER_CONFIG, else ~/.docker).";

pub fn run(a: PushArgs) -> CliResult {
    let r = parse_reference(&a.reference)?;
    let platform = match &a.platform {
        Some(p) => Some(kiln_build::platform::parse(p).map_err(Failure::input)?),
        None => None,
    };
    let what = a.image.display().to_string();
    let src = ImageSource::open(&what)?;
    let img = import::load(&src, platform.as_ref(), None)?;
    if img.index.is_none() {
        return Err(Failure::input(format!(
            "{what}: an old-style `docker save` archive (no index.json): its manifest is not a \
             registry manifest, so it cannot be pushed with its digest; re-export it as an OCI \
             layout or kiln tarball"
        )));
    }
    let media_type = match MediaType::parse(&img.manifest_media_type) {
        Some(m) if !m.is_index() => m,
        _ => {
            return Err(Failure::input(format!(
                "{what}: manifest {} has media type {:?}, not an image manifest kiln can push",
                img.manifest_digest, img.manifest_media_type
            )))
        }
    };
    if let Some(d) = r.digest() {
        if d != img.manifest_digest {
            return Err(Failure::input(format!(
                "{}: the reference names {d} but {what} holds image {}",
                a.reference, img.manifest_digest
            )));
        }
    }
    let mode = match a.chunk_size {
        Some(n) => UploadMode::Chunked(usize::try_from(n).unwrap_or(usize::MAX)),
        None => UploadMode::Monolithic,
    };

    let client = client(&a.insecure_registries, a.progress);
    let repo = r.repository();
    let mut seen: Vec<Digest> = Vec::new();
    let config = &img.manifest.config;
    let blobs = std::iter::once(config).chain(img.manifest.layers.iter());
    let (mut uploaded, mut existed) = (0usize, 0usize);
    for desc in blobs {
        if seen.contains(&desc.digest) {
            continue;
        }
        seen.push(desc.digest);
        let size = u64::try_from(desc.size).map_err(|_| {
            Failure::input(format!(
                "{what}: blob {} has a negative size {}",
                desc.digest, desc.size
            ))
        })?;
        let mut reader = open_blob(&src, &img, &desc.digest)?;
        match client.push_blob(repo, &desc.digest, size, &mut reader, mode)? {
            PushOutcome::Uploaded => uploaded += 1,
            PushOutcome::Exists => existed += 1,
        }
    }
    let manifest = Manifest::new(media_type, img.manifest_bytes.clone());
    let target = match (r.tag(), r.digest()) {
        (Some(t), _) => Target::Tag(t),
        (None, Some(d)) => Target::Digest(d),
        (None, None) => Target::Tag("latest"),
    };
    let pushed = client.put_manifest(repo, &target, &manifest)?;
    if let Some(path) = &a.digest_file {
        std::fs::write(path, format!("{pushed}\n"))
            .map_err(|e| Failure::env(format!("{}: {e}", path.display())))?;
    }
    println!("pushed:             {}@{pushed}", r.name());
    println!("image digest:       {pushed}");
    println!("blobs:              {uploaded} uploaded, {existed} already there");
    Ok(0)
}

/// Something `push_blob` can read and rewind.
trait Blob: Read + Seek {}
impl<T: Read + Seek> Blob for T {}

/// A seekable reader of one blob: the config from memory, a layer from the layout's file or
/// from its member's bytes inside the tarball (read in place, never extracted).
fn open_blob<'a>(
    src: &ImageSource,
    img: &'a LoadedImage,
    digest: &Digest,
) -> Result<Box<dyn Blob + 'a>, Failure> {
    if *digest == img.manifest.config.digest {
        return Ok(Box::new(Cursor::new(img.config_bytes.as_slice())));
    }
    let name = format!("blobs/sha256/{}", digest.hex());
    let missing = || Failure::input(format!("{}: blob {digest} is missing", src.describe()));
    match src {
        ImageSource::Layout(dir) => {
            let path = dir.join(&name);
            match File::open(&path) {
                Ok(f) => Ok(Box::new(f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(missing()),
                Err(e) => Err(Failure::env(format!("{}: {e}", path.display()))),
            }
        }
        ImageSource::Tarball { path, members } => {
            let &(offset, len) = members.get(&name).ok_or_else(missing)?;
            let file =
                File::open(path).map_err(|e| Failure::env(format!("{}: {e}", path.display())))?;
            Ok(Box::new(Section::new(file, offset, len)))
        }
    }
}

/// The byte range `[start, start + len)` of a file as a file of its own.
struct Section {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Section {
    fn new(file: File, start: u64, len: u64) -> Section {
        Section {
            file,
            start,
            len,
            pos: 0,
        }
    }
}

impl Read for Section {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Section {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn section_reads_and_seeks_within_its_range() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789").unwrap();
        let mut s = Section::new(f, 3, 4);
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert_eq!(out, "3456");
        assert_eq!(s.seek(SeekFrom::End(0)).unwrap(), 4);
        assert_eq!(s.seek(SeekFrom::Start(2)).unwrap(), 2);
        out.clear();
        s.read_to_string(&mut out).unwrap();
        assert_eq!(out, "56");
        assert!(s.seek(SeekFrom::Current(-5)).is_err());
    }
}
