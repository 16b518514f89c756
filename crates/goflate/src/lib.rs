//! goflate: a byte-exact Rust port of the deflate encoder of Go 1.23's `compress/flate`
//! (and the `compress/gzip` writer framing around it).
//!
//! BuildKit compresses image layers with Go's `compress/gzip` at the default level, so an
//! image builder only reproduces BuildKit's layer (and manifest) digests if its deflate
//! output is Go's, bit for bit. zlib, miniz or libdeflate produce valid but different
//! streams. Go 1.21 to 1.26 share this encoder; Go 1.27 replaced it.
//!
//! Every level is ported: -2 (Huffman only), -1/6 (default), 0 (stored), 1 (BestSpeed,
//! `deflatefast`), 2..=9 (hash chains; lazy matching from 4 on). The port follows Go's
//! algorithms wherever they decide bytes (hashing, chain walks, lazy matching, block cuts,
//! Huffman code construction and tie-breaking, block type choice); the rest is ordinary
//! Rust. Checked against Go 1.23.4 by golden vectors, BuildKit's own layer blobs and a
//! differential test (see `tests/`).
//!
//! * [`GzipWriter`] / [`DeflateWriter`]: streaming `io::Write` encoders (Go's
//!   `gzip.NewWriterLevel` / `flate.NewWriter`); [`gzip`] / [`deflate`] for slices.
//! * [`ParallelGzipWriter`] / [`gzip_parallel`]: the same bytes from several threads
//!   (levels 4..=9; other levels run serially).
//!
//! # Speed
//!
//! On the project's 2-vCPU machine at the default level, MB/s (10^6 B/s) of input: Go's
//! best of 3 and the criterion means of `testdata/goflate/bench.sh` (flate2: an earlier run):
//!
//! | input (64 MiB)          | Go 1.23 | goflate | goflate, 2 threads | flate2 (zlib-rs, 6) |
//! |-------------------------|---------|---------|--------------------|---------------------|
//! | layer-tar-like, mixed   | 38.9    | 55.4    | 93.8               | 67.3 (other bytes)  |
//! | random                  | 74.7    | 92.2    | 134.5              | 58.8 (other bytes)  |
//!
//! The parallel writer needs free cores: its phases wait for their slowest thread, so on a
//! busy machine it can fall below the serial writer.
//!
//! # Write boundaries
//!
//! Go's output can depend on how the input was split into `Write` calls, so
//! [`GzipWriter`], [`DeflateWriter`] and [`ParallelGzipWriter`] treat each `write` call as
//! one Go `Write` and reproduce Go's output for the same sequence of calls (any sequence).
//! Wrapping them in a `BufWriter`, or writing through something that splits or merges
//! writes differently, changes the split and so possibly the output.
//!
//! When it matters (levels 2..=9 only; 0, 1 and -2 cut 65535-byte blocks whatever the
//! writes): the parser only runs while at least 262 bytes are ahead of it and matches are
//! capped at 258 bytes, so tokens do not depend on how much input is buffered; what does is
//! *when the 64 KiB window slides* (by 32 KiB). Go slides it during a fill (at the start of
//! every `Write`, and again inside a `Write` whenever the window is full) if the parser has
//! reached window index 65274. With one big `Write` the parser always stops at the first
//! loop top past 65274 and slides there. Other write patterns can slide elsewhere:
//!
//! * at a loop top exactly at window index 65274: when a `Write` ends at window index
//!   65274..=65535 and at least 262 bytes after the parser's previous loop top;
//! * at the end of the input: when the input ends inside the current window and a `Write`
//!   boundary `B` before the end makes the parser stop at a loop top at or past index 65274
//!   (the first loop top after `B - 262`); the next `Write` slides the window, which one big
//!   `Write` never does there (no fill follows its last step).
//!
//! A slide at another point changes which earlier positions can still be matched (nothing
//! before the window start is) and whether the open block may still be a stored block, so
//! the bytes can differ: `testdata/goflate/vectors.txt` has two such inputs (`copies:`),
//! checked against Go both ways. Window starts are multiples of 32 KiB, so only a `Write`
//! boundary congruent to 32506..=32767 modulo 32768 can have an effect. Boundaries that are
//! multiples of 512 (tar headers, padding, zero blocks, whole 32 KiB data pieces) never are;
//! the end of a file's data before its padding can be.

mod bitwriter;
mod deflate;
mod fast;
mod gzip;
mod huffman;
mod level;
mod lz77;
mod parallel;
mod pgzip;
mod token;

pub use deflate::{deflate, DeflateWriter};
pub use gzip::{gzip, GzipWriter};
pub use level::{InvalidLevel, Level};
pub use pgzip::{gzip_parallel, gzip_parallel_chunked, ParallelGzipWriter, DEFAULT_CHUNK_SIZE};
