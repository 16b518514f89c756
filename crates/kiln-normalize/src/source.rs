//! Reading the layers of an image: opening each blob (also in `docker save`'s older
//! layout, where layers are files named by path), decompressing it whatever its
//! compression, and checking its digest, size and diff_id while it streams, so that a
//! layer is read exactly once.

use std::io::{self, BufRead, BufReader, Read};

use kiln_digest::{Digest, Hasher};
use kiln_image::import::ImageSource;
use kiln_image::spec::Descriptor;

use crate::error::{Error, Result};

/// Opens the layer blobs of one image.
pub struct ImageLayers<'a> {
    source: &'a ImageSource,
}

impl<'a> ImageLayers<'a> {
    pub fn new(source: &'a ImageSource) -> ImageLayers<'a> {
        ImageLayers { source }
    }

    /// The raw bytes of a layer blob (not yet verified: see [`read_layer`]).
    pub fn open(&self, layer: &Descriptor) -> Result<Box<dyn Read + Send + 'a>> {
        match self.source.open_blob_raw(&layer.digest) {
            Ok(Some(r)) => Ok(Box::new(r)),
            Ok(None) => Err(Error::input(format!(
                "layer blob {} is missing",
                layer.digest
            ))),
            Err(e) => Err(Error::env(format!(
                "{}: layer blob {}: {e}",
                self.source.describe(),
                layer.digest
            ))),
        }
    }
}

/// What a layer blob must turn out to be. `None` fields are not checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    pub diff_id: Option<Digest>,
}

impl Expected {
    pub fn of(layer: &Descriptor, diff_id: Option<Digest>) -> Expected {
        Expected {
            digest: Some(layer.digest),
            size: u64::try_from(layer.size).ok(),
            diff_id,
        }
    }
}

pub use kiln_image::sniff::BlobCompression;

/// What was read: the blob's digest and size, the tar's diff_id and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadDigests {
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
    pub uncompressed_size: u64,
    pub compression: BlobCompression,
}

/// Hashes what flows through it into a borrowed hasher (if any).
struct Tap<'h, R> {
    inner: R,
    hasher: Option<&'h mut Hasher>,
}

impl<R: Read> Read for Tap<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Decompresses the blob read from `raw` and hands the tar stream to `f`; then reads
/// whatever `f` left (trailing bytes belong to the digests too) and checks digest, size and
/// diff_id. When `f` fails on a blob that does not match its digest, the mismatch is
/// reported instead: it is the better explanation.
pub fn read_layer<R: Read, T>(
    raw: R,
    expected: &Expected,
    f: impl FnOnce(&mut dyn Read) -> Result<T>,
) -> Result<(T, ReadDigests)> {
    let mut blob_hasher = Hasher::new();
    let mut tar_hasher = Hasher::new();
    let mut tap = Tap {
        inner: raw,
        hasher: Some(&mut blob_hasher),
    };
    let mut br = BufReader::with_capacity(1 << 16, &mut tap);
    let compression = match br.fill_buf() {
        Ok(head) => BlobCompression::sniff(head),
        Err(e) => return Err(Error::input(format!("cannot read the layer: {e}"))),
    };
    let outcome = {
        let decoder: Box<dyn Read + '_> = match compression {
            BlobCompression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(&mut br)),
            BlobCompression::Zstd => Box::new(
                ruzstd::decoding::StreamingDecoder::new(&mut br)
                    .map_err(|e| Error::input(format!("not a valid zstd stream: {e}")))?,
            ),
            BlobCompression::None => Box::new(&mut br),
        };
        // An uncompressed blob is the tar: its digest is the diff_id, no second hash.
        let mut tar = Tap {
            inner: decoder,
            hasher: (compression != BlobCompression::None).then_some(&mut tar_hasher),
        };
        match f(&mut tar) {
            Ok(t) => io::copy(&mut tar, &mut io::sink())
                .map(|_| t)
                .map_err(|e| Error::input(format!("cannot decompress the layer: {e}"))),
            Err(e) => Err(e),
        }
    };
    // The rest of the blob (a decoder may stop before the end of its input).
    let drained = io::copy(&mut br, &mut io::sink());
    drop(br);
    drop(tap);
    let (digest, size) = blob_hasher.finish();
    let (diff_id, uncompressed_size) = match compression {
        BlobCompression::None => (digest, size),
        _ => tar_hasher.finish(),
    };
    if let Err(e) = drained {
        return Err(outcome
            .err()
            .unwrap_or_else(|| Error::input(format!("cannot read the layer: {e}"))));
    }
    if let Some(want) = expected.size {
        if size != want {
            return Err(Error::input(format!(
                "the blob is {size} bytes, the manifest says {want}"
            )));
        }
    }
    if let Some(want) = expected.digest {
        if digest != want {
            return Err(Error::input(format!(
                "the blob's content has digest {digest}, not the {want} the manifest names (corrupt or tampered)"
            )));
        }
    }
    let value = outcome?;
    if let Some(want) = expected.diff_id {
        if diff_id != want {
            return Err(Error::input(format!(
                "the uncompressed layer has digest {diff_id}, but the config's diff_id is {want}"
            )));
        }
    }
    Ok((
        value,
        ReadDigests {
            digest,
            size,
            diff_id,
            uncompressed_size,
            compression,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_plain_give_the_same_diff_id() {
        let tar = vec![7u8; 5000];
        let blob = gz(&tar);
        let exp = Expected {
            digest: Some(Digest::of(&blob)),
            size: Some(blob.len() as u64),
            diff_id: Some(Digest::of(&tar)),
        };
        let (n, d) = read_layer(&blob[..], &exp, |r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            Ok(v.len())
        })
        .unwrap();
        assert_eq!(n, 5000);
        assert_eq!(d.compression, BlobCompression::Gzip);
        assert_eq!(d.diff_id, Digest::of(&tar));
        let (_, d) = read_layer(&tar[..], &Expected::default(), |_| Ok(())).unwrap();
        assert_eq!(d.compression, BlobCompression::None);
        assert_eq!((d.digest, d.diff_id), (Digest::of(&tar), Digest::of(&tar)));
    }

    #[test]
    fn zstd_layers_are_read() {
        let tar = b"zstd layer ".repeat(500);
        let blob = ruzstd::encoding::compress_to_vec(
            &tar[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let exp = Expected {
            digest: Some(Digest::of(&blob)),
            size: Some(blob.len() as u64),
            diff_id: Some(Digest::of(&tar)),
        };
        let (back, d) = read_layer(&blob[..], &exp, |r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v)
                .map_err(|e| Error::input(e.to_string()))?;
            Ok(v)
        })
        .unwrap();
        assert_eq!(back, tar);
        assert_eq!(d.compression, BlobCompression::Zstd);
    }

    #[test]
    fn mismatches_are_errors() {
        let tar = vec![1u8; 1024];
        let wrong = Digest::of(b"other");
        let err = read_layer(
            &tar[..],
            &Expected {
                digest: Some(wrong),
                ..Expected::default()
            },
            |_| Ok(()),
        )
        .unwrap_err();
        assert!(err.message().contains("tampered"), "{err}");
        let err = read_layer(
            &tar[..],
            &Expected {
                size: Some(3),
                ..Expected::default()
            },
            |_| Ok(()),
        )
        .unwrap_err();
        assert!(err.message().contains("1024 bytes"), "{err}");
        let err = read_layer(
            &tar[..],
            &Expected {
                diff_id: Some(wrong),
                ..Expected::default()
            },
            |_| Ok(()),
        )
        .unwrap_err();
        assert!(err.message().contains("diff_id"), "{err}");
    }

    #[test]
    fn digest_mismatch_explains_a_parse_failure() {
        let tar = [1u8; 100];
        let err = read_layer(
            &tar[..],
            &Expected {
                digest: Some(Digest::of(b"x")),
                ..Expected::default()
            },
            |_| -> Result<()> { Err(Error::input("garbage")) },
        )
        .unwrap_err();
        assert!(err.message().contains("tampered"), "{err}");
    }
}
