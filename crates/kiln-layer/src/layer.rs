//! Writing one layer blob: tar bytes are hashed (diff_id), compressed and hashed again
//! (blob digest) as they stream to the sink, so memory never grows with the layer.

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

type Sink<W> = HashingWriter<Compressor<HashingWriter<W>>>;

/// Streams one layer tar into `W`.
pub struct LayerWriter<W: Write> {
    tar: TarWriter<Sink<W>>,
    compression: Compression,
}

impl<W: Write> LayerWriter<W> {
    pub fn new(w: W, compression: Compression) -> Self {
        let sink = HashingWriter::new(Compressor::new(HashingWriter::new(w), compression));
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
        let inner = compressor.finish()?;
        let (w, digest, size) = inner.finish();
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
}
