//! Writing one layer blob: tar bytes are hashed (diff_id), compressed and hashed again
//! (blob digest; an uncompressed blob's is the diff_id) as they stream to the sink, so
//! memory never grows with the layer.

use std::io::{Read, Write};

use kiln_digest::{Digest, HashingWriter};

use crate::compress::{Compression, Compressor};
use crate::tar::{Header, TarError, TarWriter};

/// What a finished layer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// sha256 of the blob as stored.
    pub digest: Digest,
    /// Size of the blob as stored.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    pub compression: Compression,
}

type Sink<W> = HashingWriter<Compressor<Blob<W>>>;

/// Where the compressor's output goes. It is hashed on its way for the blob digest, unless
/// the layer is stored uncompressed: then the blob is the tar, whose digest (the diff_id) is
/// being taken already. Hashing those bytes twice took 15% of an uncompressed
/// `kiln normalize` and a sixth of the tar pass's CPU when gzip runs on other threads.
enum Blob<W> {
    Hashed(HashingWriter<W>),
    Tar(W),
}

impl<W: Write> Write for Blob<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Blob::Hashed(w) => w.write(buf),
            Blob::Tar(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Blob::Hashed(w) => w.write_all(buf),
            Blob::Tar(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Blob::Hashed(w) => w.flush(),
            Blob::Tar(w) => w.flush(),
        }
    }
}

/// Streams one layer tar into `W`.
pub struct LayerWriter<W: Write> {
    tar: TarWriter<Sink<W>>,
    compression: Compression,
}

impl<W: Write> LayerWriter<W> {
    pub fn new(w: W, compression: Compression) -> Self {
        let blob = match compression {
            Compression::Uncompressed => Blob::Tar(w),
            Compression::Gzip => Blob::Hashed(HashingWriter::new(w)),
        };
        let sink = HashingWriter::new(Compressor::new(blob, compression));
        LayerWriter {
            tar: TarWriter::new(sink),
            compression,
        }
    }

    pub fn write_header(&mut self, h: &Header) -> Result<(), TarError> {
        self.tar.write_header(h)
    }

    pub fn write_data(&mut self, buf: &[u8]) -> Result<(), TarError> {
        self.tar.write_data(buf)
    }

    pub fn copy_data<R: Read>(&mut self, r: R) -> Result<(), TarError> {
        self.tar.copy_data(r)
    }

    /// Ends the tar, flushes the compressor and returns the sink and the digests.
    pub fn finish(self) -> Result<(W, LayerInfo), TarError> {
        let sink = self.tar.finish()?;
        let (compressor, diff_id, uncompressed_size) = sink.finish();
        let (w, digest, size) = match compressor.finish()? {
            Blob::Hashed(h) => h.finish(),
            Blob::Tar(w) => (w, diff_id, uncompressed_size),
        };
        Ok((
            w,
            LayerInfo {
                diff_id,
                digest,
                size,
                uncompressed_size,
                compression: self.compression,
            },
        ))
    }
}

/// The canonical empty layer (two zero blocks), as BuildKit emits for steps that change
/// nothing.
pub fn write_empty_layer<W: Write>(
    w: W,
    compression: Compression,
) -> Result<(W, LayerInfo), TarError> {
    LayerWriter::new(w, compression).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_layer_digests() {
        let (bytes, info) = write_empty_layer(Vec::new(), Compression::Uncompressed).unwrap();
        assert_eq!(bytes, vec![0u8; 1024]);
        assert_eq!(
            info.diff_id.to_string(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
        assert_eq!(info.digest, info.diff_id);
        let (gz, info) = write_empty_layer(Vec::new(), Compression::Gzip).unwrap();
        assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        assert_eq!(
            info.diff_id.to_string(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
        assert_eq!(info.size, gz.len() as u64);
    }

    /// The digests and sizes describe the bytes written, whichever way they were taken (an
    /// uncompressed blob's come from the tar's hash).
    #[test]
    fn digests_and_sizes_are_those_of_the_bytes_written() {
        use flate2::read::GzDecoder;
        use std::io::Read as _;
        for compression in [Compression::Uncompressed, Compression::Gzip] {
            let mut lw = LayerWriter::new(Vec::new(), compression);
            let data = b"some file content ".repeat(5000);
            lw.write_header(&Header {
                typeflag: crate::tar::typeflag::REG,
                name: b"f".to_vec(),
                size: data.len() as i64,
                mode: 0o644,
                ..Header::default()
            })
            .unwrap();
            lw.write_data(&data).unwrap();
            let (blob, info) = lw.finish().unwrap();
            let tar = match compression {
                Compression::Uncompressed => blob.clone(),
                Compression::Gzip => {
                    let mut t = Vec::new();
                    GzDecoder::new(&blob[..]).read_to_end(&mut t).unwrap();
                    assert_ne!(t, blob);
                    t
                }
            };
            assert_eq!(info.digest, Digest::of(&blob), "{compression:?}");
            assert_eq!(info.size, blob.len() as u64, "{compression:?}");
            assert_eq!(info.diff_id, Digest::of(&tar), "{compression:?}");
            assert_eq!(info.uncompressed_size, tar.len() as u64, "{compression:?}");
        }
    }
}
