//! Reading the layers of an image: opening each blob (also in `docker save`'s older
//! layout, where layers are files named by path), decompressing it whatever its
//! compression, and checking its digest, size and diff_id while it streams, so that a
//! layer is read exactly once.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use kiln_digest::{Digest, Hasher, HashingReader};
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

/// Decompressed bytes handed from the reading thread to `f`, per message.
const CHUNK: usize = 256 << 10;
/// Messages in flight: bounds the memory between the two threads to about 2 MiB.
const QUEUE: usize = 8;

/// What the reading thread found.
struct Produced {
    digest: Digest,
    size: u64,
    /// Reading the blob's end failed (after the tar stream, or after `f` stopped).
    drained: io::Result<()>,
}

/// The blob as read, hashed on the way.
type Blob<R> = BufReader<HashingReader<R>>;

/// Reads the blob to its end on its own thread: hashes it, decompresses it and sends the
/// tar's bytes to `tx` (an error of the decoder is sent too, where `f` sees it). When the
/// receiver is gone (`f` failed), the rest of the blob is still read and hashed, so that a
/// digest mismatch can explain the failure.
///
/// The tar's own hash (the diff_id of a compressed blob) is taken on the receiving side:
/// decompressing and hashing the blob already keep this thread the busier one.
fn produce<R: Read>(
    mut br: Blob<R>,
    compression: BlobCompression,
    tx: SyncSender<io::Result<Vec<u8>>>,
) -> Result<Produced> {
    {
        let mut tar: Box<dyn Read + '_> = match compression {
            BlobCompression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(&mut br)),
            BlobCompression::Zstd => Box::new(
                ruzstd::decoding::StreamingDecoder::new(&mut br)
                    .map_err(|e| Error::input(format!("not a valid zstd stream: {e}")))?,
            ),
            BlobCompression::None => Box::new(&mut br),
        };
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let msg = match kiln_layer::tar::read_full(&mut tar, &mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    chunk.truncate(n);
                    Ok(chunk)
                }
                Err(e) => Err(e),
            };
            let failed = msg.is_err();
            if tx.send(msg).is_err() || failed {
                break;
            }
        }
    }
    drop(tx);
    // The rest of the blob (a decoder may stop before the end of its input).
    let drained = io::copy(&mut br, &mut io::sink()).map(drop);
    let (_, digest, size) = br.into_inner().finish();
    Ok(Produced {
        digest,
        size,
        drained,
    })
}

/// The tar stream as the reading thread sends it, hashed here when it is not the blob
/// itself.
struct Received {
    rx: Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
    hasher: Option<Hasher>,
}

impl Read for Received {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    if let Some(h) = self.hasher.as_mut() {
                        h.update(&chunk);
                    }
                    self.buf = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Decompresses the blob read from `raw` and hands the tar stream to `f`; then reads
/// whatever `f` left (trailing bytes belong to the digests too) and checks digest, size and
/// diff_id. Reading, hashing and decompressing run on a thread of their own, beside `f`.
/// When `f` fails on a blob that does not match its digest, the mismatch is reported
/// instead: it is the better explanation.
pub fn read_layer<R: Read + Send, T>(
    raw: R,
    expected: &Expected,
    f: impl FnOnce(&mut dyn Read) -> Result<T>,
) -> Result<(T, ReadDigests)> {
    let mut br = BufReader::with_capacity(1 << 16, HashingReader::new(raw));
    let compression = match br.fill_buf() {
        Ok(head) => BlobCompression::sniff(head),
        Err(e) => return Err(Error::input(format!("cannot read the layer: {e}"))),
    };
    let (tx, rx) = sync_channel(QUEUE);
    std::thread::scope(|s| {
        let producer = s.spawn(move || produce(br, compression, tx));
        let mut tar = Received {
            rx,
            buf: Vec::new(),
            pos: 0,
            // An uncompressed blob is the tar: its digest is the diff_id, no second hash.
            hasher: (compression != BlobCompression::None).then(Hasher::new),
        };
        let outcome = match f(&mut tar) {
            Ok(t) => io::copy(&mut tar, &mut io::sink())
                .map(|_| t)
                .map_err(|e| Error::input(format!("cannot decompress the layer: {e}"))),
            Err(e) => Err(e),
        };
        let tar_digest = tar.hasher.take().map(Hasher::finish);
        // Lets a producer blocked on a full queue see that nobody listens any more.
        drop(tar);
        let p = producer
            .join()
            .map_err(|_| Error::env("the layer reading thread panicked"))??;
        let (diff_id, uncompressed_size) = tar_digest.unwrap_or((p.digest, p.size));
        if let Err(e) = p.drained {
            return Err(outcome
                .err()
                .unwrap_or_else(|| Error::input(format!("cannot read the layer: {e}"))));
        }
        if let Some(want) = expected.size {
            if p.size != want {
                return Err(Error::input(format!(
                    "the blob is {} bytes, the manifest says {want}",
                    p.size
                )));
            }
        }
        if let Some(want) = expected.digest {
            if p.digest != want {
                return Err(Error::input(format!(
                    "the blob's content has digest {}, not the {want} the manifest names (corrupt or tampered)",
                    p.digest
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
                digest: p.digest,
                size: p.size,
                diff_id,
                uncompressed_size,
                compression,
            },
        ))
    })
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
    fn the_diff_id_covers_what_the_reader_left() {
        // A compressed blob's tar is hashed on the receiving side: the bytes after where the
        // tar reader stopped (padding past the end-of-archive blocks, say) count too.
        let tar: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        let blob = gz(&tar);
        let exp = Expected {
            digest: Some(Digest::of(&blob)),
            size: Some(blob.len() as u64),
            diff_id: Some(Digest::of(&tar)),
        };
        let (_, d) = read_layer(&blob[..], &exp, |r| {
            let mut head = [0u8; 1000];
            r.read_exact(&mut head).unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(
            (d.diff_id, d.uncompressed_size),
            (Digest::of(&tar), 600_000)
        );
        let err = read_layer(
            &blob[..],
            &Expected {
                diff_id: Some(Digest::of(&tar[1..])),
                ..exp
            },
            |_| Ok(()),
        )
        .unwrap_err();
        assert!(err.message().contains("diff_id"), "{err}");
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
