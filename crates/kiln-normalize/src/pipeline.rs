//! Compressing a layer on its own core while the tar stream is being made.
//!
//! One thread serializes entries through kiln-layer's [`LayerWriter`] without compression
//! (which also gives the diff_id); every write it makes is handed, unchanged and in order,
//! to a second thread that feeds kiln-layer's [`Compressor`] and hashes its output. The
//! compressor thus sees exactly the `write` calls it would inside a compressing
//! `LayerWriter` (Go's write pattern, which deflate output may depend on), so the blob is
//! byte-identical; only the work is spread over two cores.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, SyncSender};

use kiln_digest::HashingWriter;
use kiln_layer::compress::Compressor;
use kiln_layer::{Compression, LayerInfo, LayerWriter};

use crate::error::{Error, Result};

/// Writes between the two threads (each at most 32 KiB): bounds memory to a few MiB.
const QUEUE: usize = 64;

/// Hands every write to the compressing thread.
pub struct Handoff(SyncSender<Vec<u8>>);

impl Write for Handoff {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .send(buf.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the compressor stopped"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `body` against a layer writer whose output is compressed with `compression` on a
/// second thread into `out`.
pub fn write_layer<W, F>(out: W, compression: Compression, body: F) -> Result<(W, LayerInfo)>
where
    W: Write + Send,
    F: FnOnce(&mut LayerWriter<Handoff>) -> Result<()>,
{
    let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
    std::thread::scope(|s| {
        let compressor = s.spawn(move || -> io::Result<_> {
            let mut c = Compressor::new(HashingWriter::new(out), compression);
            for chunk in rx {
                c.write_all(&chunk)?;
            }
            Ok(c.finish()?.finish())
        });
        let made = {
            let mut lw = LayerWriter::new(Handoff(tx), Compression::Uncompressed);
            body(&mut lw).and_then(|()| {
                lw.finish()
                    // Dropping the handoff (the sender) lets the compressor see the end.
                    .map(|(_handoff, info)| info)
                    .map_err(|e| Error::env(format!("cannot finish the layer: {e}")))
            })
        };
        let compressed = compressor
            .join()
            .map_err(|_| Error::env("the compressor thread panicked"))?
            .map_err(|e| Error::env(format!("cannot write the layer: {e}")));
        // A failing compressor explains a failing writer (the pipe broke), not the reverse.
        let (w, digest, size) = compressed?;
        let tar = made?;
        Ok((
            w,
            LayerInfo {
                diff_id: tar.diff_id,
                digest,
                size,
                uncompressed_size: tar.uncompressed_size,
                compression,
            },
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_layer::tar::{typeflag, Header, Timestamp};

    fn body<S: Write>(lw: &mut LayerWriter<S>) -> Result<()> {
        for i in 0..50 {
            let data = format!("file {i} ").repeat(3000 * i + 1).into_bytes();
            lw.write_header(&Header {
                typeflag: typeflag::REG,
                name: format!("f{i}").into_bytes(),
                size: data.len() as i64,
                mode: 0o644,
                mtime: Some(Timestamp::from_secs(i as i64)),
                ..Header::default()
            })
            .map_err(|e| Error::input(e.to_string()))?;
            lw.copy_data(&data[..])
                .map_err(|e| Error::input(e.to_string()))?;
        }
        Ok(())
    }

    #[test]
    fn same_blob_as_a_compressing_layer_writer() {
        let mut direct = LayerWriter::new(Vec::new(), Compression::Gzip);
        body(&mut direct).unwrap();
        let (want, want_info) = direct.finish().unwrap();
        let (got, info) = write_layer(Vec::new(), Compression::Gzip, body).unwrap();
        assert_eq!(got, want);
        assert_eq!(info, want_info);
    }

    #[test]
    fn errors_of_the_body_come_through() {
        let err =
            write_layer(Vec::new(), Compression::Gzip, |_| Err(Error::input("nope"))).unwrap_err();
        assert_eq!(err.message(), "nope");
    }
}
