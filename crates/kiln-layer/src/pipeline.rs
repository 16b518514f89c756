//! Making a layer on several cores: the tar stream on one, its compression on the others.
//!
//! The calling thread serializes entries through a [`LayerWriter`] without compression
//! (which also gives the diff_id); its writes are handed, unchanged and in order, to a second
//! thread that feeds a [`Compressor`] and hashes its output. The compressor thus sees exactly
//! the `write` calls it would inside a compressing `LayerWriter` (Go's write pattern, which
//! deflate output may depend on), so the blob is byte-identical; only the work is spread.
//!
//! Writes travel in parcels of about [`PARCEL`] bytes that remember where each write ended,
//! and up to [`QUEUE`] parcels may wait: the parallel gzip writer takes its input in batches
//! (4 MiB on 2 cores) and compresses each on all cores, so the tar pass must be able to run
//! a whole batch ahead or the cores idle while it catches up. An uncompressed layer needs no
//! second thread (its digest is its diff_id) and is written directly.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, SyncSender};

use kiln_digest::HashingWriter;

use crate::compress::{Compression, Compressor};
use crate::layer::{LayerInfo, LayerWriter};
use crate::tar::TarError;

/// Bytes gathered before a parcel is handed over.
const PARCEL: usize = 1 << 20;
/// Parcels waiting for the compressor: bounds the memory in flight to about 9 MiB.
const QUEUE: usize = 8;

/// What can go wrong besides the caller's own errors.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot finish the layer: {0}")]
    Finish(TarError),
    #[error("cannot write the layer: {0}")]
    Compress(io::Error),
    #[error("the layer compressor thread panicked")]
    Panicked,
}

/// Writes of the tar pass, concatenated, with the end of each write.
#[derive(Default)]
struct Parcel {
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

/// Where the tar pass writes: to the compressing thread, or (uncompressed) to the output.
pub struct Handoff<W>(Route<W>);

enum Route<W> {
    Direct(W),
    Parcels {
        tx: SyncSender<Parcel>,
        parcel: Parcel,
    },
}

impl<W> Handoff<W> {
    fn send(&mut self) -> io::Result<()> {
        if let Route::Parcels { tx, parcel } = &mut self.0 {
            tx.send(std::mem::take(parcel))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the compressor stopped"))?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Handoff<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let full = match &mut self.0 {
            Route::Direct(w) => return w.write(buf),
            Route::Parcels { parcel, .. } => {
                if buf.is_empty() {
                    return Ok(0);
                }
                if parcel.data.capacity() == 0 {
                    parcel.data.reserve(PARCEL + 64 * 1024);
                }
                parcel.data.extend_from_slice(buf);
                parcel.ends.push(parcel.data.len());
                parcel.data.len() >= PARCEL
            }
        };
        if full {
            self.send()?;
        }
        Ok(buf.len())
    }

    /// Hands over what has been gathered (the end of the stream flushes too).
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Route::Direct(w) => w.flush(),
            Route::Parcels { parcel, .. } if parcel.ends.is_empty() => Ok(()),
            Route::Parcels { .. } => self.send(),
        }
    }
}

/// Runs `body` against a layer writer whose output is compressed with `compression` (on
/// other threads) into `out`; returns `out` and what was written.
pub fn write_layer<W, E, F>(out: W, compression: Compression, body: F) -> Result<(W, LayerInfo), E>
where
    W: Write + Send,
    E: From<PipelineError>,
    F: FnOnce(&mut LayerWriter<Handoff<W>>) -> Result<(), E>,
{
    if compression == Compression::Uncompressed {
        let mut lw = LayerWriter::new(Handoff(Route::Direct(out)), compression);
        body(&mut lw)?;
        let (handoff, info) = lw.finish().map_err(PipelineError::Finish)?;
        return match handoff.0 {
            Route::Direct(w) => Ok((w, info)),
            Route::Parcels { .. } => unreachable!("an uncompressed layer is written directly"),
        };
    }
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
            let handoff = Handoff(Route::Parcels {
                tx,
                parcel: Parcel::default(),
            });
            let mut lw = LayerWriter::new(handoff, Compression::Uncompressed);
            body(&mut lw).and_then(|()| {
                let (mut handoff, info) = lw.finish().map_err(PipelineError::Finish)?;
                handoff
                    .flush()
                    .map_err(|e| PipelineError::Finish(TarError::Io(e)))?;
                // Dropping the handoff (the sender) lets the compressor see the end.
                Ok(info)
            })
        };
        let compressed = compressor
            .join()
            .map_err(|_| PipelineError::Panicked)?
            .map_err(PipelineError::Compress);
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
    use crate::tar::{typeflag, Header, Timestamp};

    fn body<S: Write>(lw: &mut LayerWriter<S>) -> Result<(), PipelineError> {
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
            .map_err(PipelineError::Finish)?;
            lw.copy_data(&data[..]).map_err(PipelineError::Finish)?;
        }
        Ok(())
    }

    #[test]
    fn same_blob_as_a_compressing_layer_writer() {
        for compression in [Compression::Gzip, Compression::Uncompressed] {
            let mut direct = LayerWriter::new(Vec::new(), compression);
            body(&mut direct).unwrap();
            let (want, want_info) = direct.finish().unwrap();
            let (got, info) = write_layer(Vec::new(), compression, body).unwrap();
            assert!(got == want, "{compression:?}");
            assert_eq!(info, want_info);
        }
    }

    #[test]
    fn errors_of_the_body_come_through() {
        let err = write_layer(Vec::new(), Compression::Gzip, |_| {
            Err::<(), _>(PipelineError::Panicked)
        })
        .unwrap_err();
        assert!(matches!(err, PipelineError::Panicked));
    }
}
