//! Go 1.23's `compressor`: how written bytes reach the window and when blocks are cut, for
//! every level, plus the streaming [`DeflateWriter`].

use crate::bitwriter::{BitWriter, MAX_STORE_BLOCK_SIZE};
use crate::fast::DeflateFast;
use crate::level::Level;
use crate::lz77::{Matcher, Params, Sink, SLIDE_AT, WINDOW_SIZE};
use crate::token::Token;
use std::io::{self, Write};

/// Tokens per block before the hash-chain levels cut one (Go's `maxFlateBlockTokens`).
pub(crate) const MAX_FLATE_BLOCK_TOKENS: usize = 1 << 14;

/// Collects tokens and writes a block every [`MAX_FLATE_BLOCK_TOKENS`] (Go's
/// `compressor.writeBlock`).
pub(crate) struct BlockSink<'a> {
    pub(crate) tokens: &'a mut Vec<Token>,
    /// Window index of the current block's first byte; `None` once the window moved past it
    /// (Go's `blockStart = math.MaxInt32`): such a block cannot be stored.
    pub(crate) block_start: &'a mut Option<usize>,
    pub(crate) bw: &'a mut BitWriter,
}

impl BlockSink<'_> {
    fn write_block(&mut self, index: usize, window: &[u8]) {
        if index > 0 {
            let input = match *self.block_start {
                Some(start) if start <= index => Some(&window[start..index]),
                _ => None,
            };
            *self.block_start = Some(index);
            self.bw.write_block(self.tokens, false, input);
        }
        self.tokens.clear();
    }
}

impl Sink for BlockSink<'_> {
    #[inline(always)]
    fn push(&mut self, t: Token, end: usize, window: &[u8]) {
        self.tokens.push(t);
        if self.tokens.len() == MAX_FLATE_BLOCK_TOKENS {
            self.write_block(end, window);
        }
    }

    fn flush(&mut self, end: usize, window: &[u8]) {
        if !self.tokens.is_empty() {
            self.write_block(end, window);
        }
    }
}

/// Levels 2..=9: a 64 KiB window that slides by 32 KiB.
struct ChainEngine {
    window: Box<[u8]>,
    window_end: usize,
    matcher: Matcher,
    tokens: Vec<Token>,
    block_start: Option<usize>,
}

impl ChainEngine {
    fn step(&mut self, sync: bool, bw: &mut BitWriter) {
        let mut sink = BlockSink {
            tokens: &mut self.tokens,
            block_start: &mut self.block_start,
            bw,
        };
        self.matcher
            .deflate(&self.window[..self.window_end], sync, usize::MAX, &mut sink);
    }

    /// Go's `fillDeflate`.
    fn fill(&mut self, b: &[u8]) -> usize {
        if self.matcher.index >= SLIDE_AT {
            self.window.copy_within(WINDOW_SIZE..2 * WINDOW_SIZE, 0);
            self.matcher.slide();
            self.window_end -= WINDOW_SIZE;
            self.block_start = match self.block_start {
                Some(s) if s >= WINDOW_SIZE => Some(s - WINDOW_SIZE),
                _ => None,
            };
        }
        let n = b.len().min(self.window.len() - self.window_end);
        self.window[self.window_end..self.window_end + n].copy_from_slice(&b[..n]);
        self.window_end += n;
        n
    }
}

/// The per-level machinery of Go's `compressor`.
enum Engine {
    /// Level 0: stored blocks of 65535 bytes.
    Store { window: Vec<u8> },
    /// Level -2: Huffman-coded literal blocks of 65535 bytes.
    Huff { window: Vec<u8> },
    /// Level 1: `deflatefast` over blocks of 65535 bytes.
    Fast {
        window: Vec<u8>,
        fast: Box<DeflateFast>,
        tokens: Vec<Token>,
    },
    /// Levels 2..=9.
    Chain(Box<ChainEngine>),
}

/// Go's `compressor` writing into an in-memory [`BitWriter`].
pub(crate) struct Compressor {
    engine: Engine,
    pub(crate) bw: BitWriter,
}

/// Go's `fillStore`: append to a window of at most 65535 bytes.
fn fill_store(window: &mut Vec<u8>, b: &[u8]) -> usize {
    let n = b.len().min(MAX_STORE_BLOCK_SIZE - window.len());
    window.extend_from_slice(&b[..n]);
    n
}

impl Compressor {
    pub(crate) fn new(level: Level) -> Compressor {
        let engine = match level.effective() {
            0 => Engine::Store {
                window: Vec::with_capacity(MAX_STORE_BLOCK_SIZE),
            },
            -2 => Engine::Huff {
                window: Vec::with_capacity(MAX_STORE_BLOCK_SIZE),
            },
            1 => Engine::Fast {
                window: Vec::with_capacity(MAX_STORE_BLOCK_SIZE),
                fast: Box::new(DeflateFast::new()),
                tokens: Vec::with_capacity(MAX_STORE_BLOCK_SIZE),
            },
            l => Engine::Chain(Box::new(ChainEngine {
                window: vec![0; 2 * WINDOW_SIZE].into_boxed_slice(),
                window_end: 0,
                matcher: Matcher::new(Params::for_level(l as u8)),
                tokens: Vec::with_capacity(MAX_FLATE_BLOCK_TOKENS + 1),
                block_start: Some(0),
            })),
        };
        Compressor {
            engine,
            bw: BitWriter::new(),
        }
    }

    /// Go's `compressor.write`: alternate `step` and `fill` until `b` is in the window.
    pub(crate) fn write(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            self.step(false);
            let n = match &mut self.engine {
                Engine::Store { window }
                | Engine::Huff { window }
                | Engine::Fast { window, .. } => fill_store(window, b),
                Engine::Chain(c) => c.fill(b),
            };
            b = &b[n..];
        }
    }

    /// Go's `step` for the level; `sync` asks to process everything.
    fn step(&mut self, sync: bool) {
        let bw = &mut self.bw;
        match &mut self.engine {
            Engine::Store { window } => {
                if !window.is_empty() && (window.len() == MAX_STORE_BLOCK_SIZE || sync) {
                    bw.write_stored_block(window, false);
                    window.clear();
                }
            }
            Engine::Huff { window } => {
                if (window.len() < MAX_STORE_BLOCK_SIZE && !sync) || window.is_empty() {
                    return;
                }
                bw.write_block_huff(false, window);
                window.clear();
            }
            Engine::Fast {
                window,
                fast,
                tokens,
            } => {
                if window.len() < MAX_STORE_BLOCK_SIZE {
                    if !sync {
                        return;
                    }
                    if window.len() < 128 {
                        // Small final pieces: stored or Huffman-only, and forget history.
                        match window.len() {
                            0 => return,
                            1..=16 => bw.write_stored_block(window, false),
                            _ => bw.write_block_huff(false, window),
                        }
                        window.clear();
                        fast.reset();
                        return;
                    }
                }
                tokens.clear();
                fast.encode(tokens, window);
                // If matching removed less than 1/16, code the literals only.
                if tokens.len() > window.len() - (window.len() >> 4) {
                    bw.write_block_huff(false, window);
                } else {
                    bw.write_block_dynamic(tokens, false, window);
                }
                window.clear();
            }
            Engine::Chain(c) => c.step(sync, bw),
        }
    }

    /// Go's `Flush`: everything written so far, then an empty stored block.
    pub(crate) fn sync_flush(&mut self) {
        self.step(true);
        self.bw.write_stored_header(0, false);
        self.bw.align();
    }

    /// Go's `Close`: everything written so far, then the final empty stored block.
    pub(crate) fn close(&mut self) {
        self.step(true);
        self.bw.write_stored_header(0, true);
        self.bw.align();
    }
}

/// Compressed bytes are handed to the inner writer in pieces of about this size.
const DRAIN_AT: usize = 64 * 1024;

/// A raw deflate (RFC 1951) stream writer producing exactly the bytes of Go 1.23's
/// `flate.NewWriter(w, level)` given the same sequence of `Write` calls.
///
/// Each [`Write::write`] call consumes the whole buffer and counts as one Go `Write`.
/// [`Write::flush`] only passes on finished bytes (the stream is unchanged);
/// [`DeflateWriter::sync_flush`] is Go's `Flush`. Call [`DeflateWriter::finish`] to end the
/// stream: dropping the writer loses the end of the stream.
pub struct DeflateWriter<W: Write> {
    c: Compressor,
    inner: Option<W>,
    poisoned: bool,
}

impl<W: Write> DeflateWriter<W> {
    /// A writer compressing at `level` into `inner`.
    pub fn new(inner: W, level: Level) -> DeflateWriter<W> {
        DeflateWriter::with_prefix(inner, level, &[])
    }

    /// Like `new`, with `prefix` written to `inner` before the stream (the gzip header).
    pub(crate) fn with_prefix(inner: W, level: Level, prefix: &[u8]) -> DeflateWriter<W> {
        let mut c = Compressor::new(level);
        c.bw.out.extend_from_slice(prefix);
        DeflateWriter {
            c,
            inner: Some(inner),
            poisoned: false,
        }
    }

    fn check(&self) -> io::Result<()> {
        if self.poisoned {
            return Err(io::Error::other("goflate: writer failed earlier"));
        }
        Ok(())
    }

    fn drain(&mut self, min: usize) -> io::Result<()> {
        if self.c.bw.out.len() < min {
            return Ok(());
        }
        let inner = match self.inner.as_mut() {
            Some(w) => w,
            None => return Err(io::Error::other("goflate: writer already finished")),
        };
        if let Err(e) = inner.write_all(&self.c.bw.out) {
            self.poisoned = true;
            return Err(e);
        }
        self.c.bw.out.clear();
        Ok(())
    }

    /// Go's `Flush`: compresses everything written so far and emits an empty stored block,
    /// so that a reader can decode all of it. Changes the stream (unlike `io::Write::flush`).
    pub fn sync_flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.c.sync_flush();
        self.drain(0)?;
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }

    /// Ends the stream (Go's `Close`) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.finish_in_place()?;
        self.inner
            .take()
            .ok_or_else(|| io::Error::other("goflate: writer already finished"))
    }

    pub(crate) fn finish_in_place(&mut self) -> io::Result<()> {
        self.check()?;
        self.c.close();
        self.drain(0)
    }

    /// Bytes to put after the stream, before the inner writer is returned (gzip trailer).
    pub(crate) fn append_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.c.bw.out.extend_from_slice(bytes);
        self.drain(0)
    }

    pub(crate) fn into_inner(mut self) -> io::Result<W> {
        self.inner
            .take()
            .ok_or_else(|| io::Error::other("goflate: writer already finished"))
    }

    /// The inner writer.
    pub fn get_ref(&self) -> Option<&W> {
        self.inner.as_ref()
    }
}

impl<W: Write> Write for DeflateWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        self.c.write(buf);
        self.drain(DRAIN_AT)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.drain(0)?;
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

/// Compresses `data` (as one `Write`) into a raw deflate stream.
pub fn deflate(data: &[u8], level: Level) -> Vec<u8> {
    let mut c = Compressor::new(level);
    c.write(data);
    c.close();
    c.bw.out
}
