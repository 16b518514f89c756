//! Compressing a layer on its own cores while the tar stream is being made.
//!
//! One thread serializes entries through kiln-layer's [`LayerWriter`] without compression
//! (which also gives the diff_id); its writes are handed, unchanged and in order, to a second
//! thread that feeds kiln-layer's [`Compressor`] and hashes its output. The compressor thus
//! sees exactly the `write` calls it would inside a compressing `LayerWriter` (Go's write
//! pattern, which deflate output may depend on), so the blob is byte-identical; only the
//! work is spread over the cores.
//!
//! Writes travel in parcels of about [`PARCEL`] bytes that remember where each write ended,
//! and up to [`QUEUE`] parcels may wait: the parallel gzip writer takes its input in batches
//! (4 MiB on 2 cores) and compresses each on all cores, so the tar pass must be able to run
//! a whole batch ahead or the cores idle while it catches up.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, SyncSender};

use kiln_digest::HashingWriter;
use kiln_layer::compress::Compressor;
use kiln_layer::{Compression, LayerInfo, LayerWriter};

use crate::error::{Error, Result};

/// Bytes gathered before a parcel is handed over.
const PARCEL: usize = 1 << 20;
/// Parcels waiting for the compressor: bounds the memory in flight to about 9 MiB.
const QUEUE: usize = 4;

/// Writes of the tar pass, concatenated, with the end of each write.
#[derive(Default)]
pub struct Parcel {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Parcel {
    /// Replays the writes, one `write_all` per original write.
    fn replay(&self, w: &mut impl Write) -> io::Result<()> {
        let mut start = 0;
        for &end in &self.ends {
            w.write_all(&self.data[start..end])?;
            start = end;
        }
        Ok(())
    }
}

/// Hands the writes to the compressing thread.
pub struct Handoff {
    tx: SyncSender<Parcel>,
    parcel: Parcel,
}

impl Handoff {
    fn send(&mut self) -> io::Result<()> {
        let parcel = std::mem::take(&mut self.parcel);
        self.tx
            .send(parcel)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the compressor stopped"))
    }
}

impl Write for Handoff {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.parcel.data.capacity() == 0 {
            self.parcel.data.reserve(PARCEL + 64 * 1024);
        }
        self.parcel.data.extend_from_slice(buf);
        self.parcel.ends.push(self.parcel.data.len());
        if self.parcel.data.len() >= PARCEL {
            self.send()?;
        }
        Ok(buf.len())
    }
    /// Hands over what has been gathered (the end of the stream flushes too).
    fn flush(&mut self) -> io::Result<()> {
        if self.parcel.ends.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

/// Runs `body` against a layer writer whose output is compressed with `compression` on a
/// second thread into `out`.
pub fn write_layer<W, F>(out: W, compression: Compression, body: F) -> Result<(W, LayerInfo)>
where
    W: Write + Send,
    F: FnOnce(&mut LayerWriter<Handoff>) -> Result<()>,
{
    let (tx, rx) = sync_channel::<Parcel>(QUEUE);
    std::thread::scope(|s| {
        let compressor = s.spawn(move || -> io::Result<_> {
            let mut c = Compressor::new(HashingWriter::new(out), compression);
            for parcel in rx {
                parcel.replay(&mut c)?;
            }
            Ok(c.finish()?.finish())
        });
        let made = {
            let handoff = Handoff {
                tx,
                parcel: Parcel::default(),
            };
            let mut lw = LayerWriter::new(handoff, Compression::Uncompressed);
            body(&mut lw).and_then(|()| {
                lw.finish()
                    .and_then(|(mut handoff, info)| {
                        handoff.flush()?;
                        // Dropping the handoff (the sender) lets the compressor see the end.
                        Ok(info)
                    })
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
