//! Tar archives as Go's `archive/tar` writes and reads them.

mod header;
mod reader;
mod writer;

pub use header::{
    block_padding, go_path_clean, is_header_only, typeflag, EncodedHeader, Format, Header,
    PaxRecords, Timestamp, BLOCK, MAX_SPECIAL_FILE_SIZE,
};
pub use reader::{TarReader, MAX_HEADER_SIZE};
pub use writer::{read_full, TarWriter, COPY_CHUNK};

/// What went wrong reading or writing a tar stream.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("tar entry {name:?}: {message}")]
    Header { name: String, message: String },
    #[error("malformed tar stream at byte {offset}: {message}")]
    Malformed { offset: u64, message: String },
    #[error("tar entry {name:?}: {message}")]
    Data { name: String, message: String },
    /// A valid entry kiln cannot write (BuildKit could): a limit of kiln, not bad input.
    #[error("tar entry {name:?}: {message}")]
    Unsupported { name: String, message: String },
}

impl TarError {
    pub(crate) fn header(name: &[u8], message: &str) -> TarError {
        TarError::Header {
            name: String::from_utf8_lossy(name).into_owned(),
            message: message.to_string(),
        }
    }
}
