//! goflate: a byte-exact Rust port of the deflate encoder of Go 1.23's `compress/flate`
//! (and the `compress/gzip` writer framing around it).
//!
//! BuildKit compresses image layers with Go's `compress/gzip` at the default level, so an
//! image builder only reproduces BuildKit's layer (and manifest) digests if its deflate
//! output is Go's, bit for bit. zlib, miniz or libdeflate produce valid but different
//! streams. Go 1.21 to 1.26 share this encoder; Go 1.27 replaced it.
//!
//! Every level is ported: -2 (Huffman only), -1/6 (default), 0 (stored), 1 (BestSpeed,
//! `deflatefast`), 2..=9 (hash chains; lazy matching from 4 on).
//!
//! # Write boundaries
//!
//! Go's output can depend on how the input was split into `Write` calls, so
//! [`GzipWriter`] and [`DeflateWriter`] treat each `write` call as one Go `Write` and
//! reproduce Go's output for the same sequence of calls (any sequence). Wrapping them in
//! a `BufWriter` or writing through `write_all` of a writer that splits differently changes
//! the split, and so possibly the output.
//!
//! When it matters (levels 2..=9 only; 0, 1 and -2 cut 65535-byte blocks whatever the
//! writes): the parser only runs while at least 262 bytes are ahead of it, and matches
//! are capped at 258 bytes, so tokens do not depend on how much input is buffered; what
//! does is *when the 64 KiB window slides*. Go slides it during a fill (the start of every
//! `Write`, and again inside a `Write` whenever the window is full) if the parser has
//! reached window index 65274. With one big `Write` the parser always stops at the first
//! loop top after 65274 before the next fill, and only ever slides there. Other write
//! patterns can slide
//!
//! * at a loop top exactly at window index 65274, when a `Write` ended in the last 262
//!   bytes before the window end and the parser's previous loop top was at least 262 bytes
//!   before that `Write`'s end;
//! * near the end of the input, when the last `Write` begins within 262 bytes of a point
//!   past index 65274 (with one big `Write` there is no later fill, so no slide).
//!
//! A slide at a different point changes which earlier positions can still be matched (the
//! window start cuts off candidates that are less than 32 KiB back) and whether the open
//! block can still be a stored block, so the bytes can differ. Write boundaries that are
//! multiples of 512 (tar headers, padding, zero blocks) never end in those 262-byte zones
//! (they are congruent to 32506..=32767 modulo 32768); the end of a file's data before its
//! padding can.
//!
//! [`ParallelGzipWriter`] records the write boundaries and reproduces the serial output for
//! the same calls.

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
