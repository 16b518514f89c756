//! BuildKit's rewrite-timestamp conversion of an existing layer: every header is read with
//! Go's tar semantics, its times clamped to the epoch (later times become the epoch, older
//! ones stay), and written again with Go's writer. Data is copied unchanged.

use std::io::{Read, Write};

use crate::tar::{Header, TarError, TarReader, TarWriter, Timestamp};
use crate::LayerWriter;

/// Anything tar entries can be written to: a plain [`TarWriter`] or a [`LayerWriter`].
pub trait EntrySink {
    fn write_header(&mut self, h: &Header) -> Result<(), TarError>;
    fn copy_data<R: Read>(&mut self, r: R) -> Result<(), TarError>;
}

impl<W: Write> EntrySink for TarWriter<W> {
    fn write_header(&mut self, h: &Header) -> Result<(), TarError> {
        TarWriter::write_header(self, h)
    }
    fn copy_data<R: Read>(&mut self, r: R) -> Result<(), TarError> {
        TarWriter::copy_data(self, r)
    }
}

impl<W: Write> EntrySink for LayerWriter<W> {
    fn write_header(&mut self, h: &Header) -> Result<(), TarError> {
        LayerWriter::write_header(self, h)
    }
    fn copy_data<R: Read>(&mut self, r: R) -> Result<(), TarError> {
        LayerWriter::copy_data(self, r)
    }
}

/// Statistics of a rewrite, for progress and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RewriteStats {
    pub entries: u64,
    pub clamped: u64,
}

/// Re-serialises the tar read from `input` into `out`, clamping times to `epoch` when given.
/// Bytes after the archive's end marker are read and discarded, as BuildKit does.
pub fn rewrite_tar<R: Read, S: EntrySink>(
    input: R,
    epoch: Option<Timestamp>,
    out: &mut S,
) -> Result<RewriteStats, TarError> {
    let mut tr = TarReader::new(input);
    let mut stats = RewriteStats::default();
    while let Some(mut h) = tr.next_header()? {
        stats.entries += 1;
        if let Some(epoch) = epoch {
            let before = (h.mtime, h.atime, h.ctime);
            h.mtime = h.mtime.map(|t| t.clamped(epoch));
            h.atime = h.atime.map(|t| t.clamped(epoch));
            h.ctime = h.ctime.map(|t| t.clamped(epoch));
            if before != (h.mtime, h.atime, h.ctime) {
                stats.clamped += 1;
            }
        }
        out.write_header(&h)?;
        out.copy_data(&mut tr)?;
    }
    let mut rest = tr.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink())?;
    Ok(stats)
}
