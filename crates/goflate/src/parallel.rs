//! Parallel deflate whose output is byte-identical to the serial (Go) encoder's.
//!
//! The input is cut at chunk starts that are multiples of 32 KiB. The parser of the real
//! stream handles the first chunk; each other chunk gets a fresh parser that starts at the
//! chunk start with the 32 KiB before it hashed (which is all a match can reach), a window
//! start of `chunk - 32 KiB`, and no pending match. Such a parser's state differs from the
//! real one at first, but usually converges within a few hundred bytes: when the
//! predecessor, continuing past the chunk start, reaches a loop top with the same state as
//! the fresh parser had there (position, pending match, window start and fill level; the
//! hash chains then agree on everything reachable, see `Checkpoint`), every later token is
//! the same, so the token streams are spliced there. If they never meet, the predecessor
//! carries on over the next chunk: always correct, only less parallel.
//!
//! Block boundaries do not depend on the parse beyond the token stream: a block ends every
//! 16384 tokens from the start of the stream. Whether a block may be stored depends on window
//! slides while it was open, which the parsers record. So the merged tokens are cut into
//! blocks serially, the blocks are Huffman-coded in parallel (each thread from bit 0), and
//! the bit strings are joined at their real bit positions.
//!
//! Window slides happen at Go's fills, which follow the `Write` calls (see the crate docs);
//! the parsers simulate Go's fills from the recorded write boundaries, so the output is the
//! serial output for the same `Write` calls.
//!
//! Work goes in batches of 4 chunks per thread: phase 1 parses every chunk at once (fresh
//! parsers record checkpoints every 512 bytes over their first 64 KiB; on layer tars the
//! parsers meet within a few hundred bytes), phase 2 lets each parser follow the stream into
//! the next chunk until it meets a checkpoint, then blocks are cut and coded. The real
//! parser at the batch end carries over to the next batch.

use crate::bitwriter::{BitWriter, Piece};
use crate::deflate::MAX_FLATE_BLOCK_TOKENS;
use crate::lz77::{LazyState, Matcher, Params, Sink, Stop, MIN_LOOKAHEAD, SLIDE_AT, WINDOW_SIZE};
use crate::token::Token;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const WINDOW: u64 = WINDOW_SIZE as u64;
/// Distance between checkpoints where parsers compare states. Parsers that meet keep
/// meeting, so a wider step only lets the predecessor run up to this much further before
/// the splice; each checkpoint pauses a fresh parser. 512 instead of 64: 2% less CPU and
/// wall time on a Debian layer (1.286 -> 1.262 s on 2 threads, 10 interleaved runs).
const CHECKPOINT_STEP: u64 = 512;
/// How far past a chunk start parsers look for a splice point.
const SPLICE_ZONE: u64 = 64 * 1024;

/// Input bytes and where the `Write` calls that brought them ended.
pub(crate) struct Input<'a> {
    pub(crate) data: &'a [u8],
    /// Absolute position of `data[0]`.
    pub(crate) base: u64,
    /// Absolute ends of the writes, increasing, all in `base..=base + data.len()`.
    pub(crate) bounds: &'a [u64],
    /// No data follows `data`.
    pub(crate) last: bool,
}

impl Input<'_> {
    fn end(&self) -> u64 {
        self.base + self.data.len() as u64
    }

    /// The first write end after `pos` (or the end of the data).
    fn bound_after(&self, pos: u64) -> u64 {
        let i = self.bounds.partition_point(|&b| b <= pos);
        self.bounds
            .get(i)
            .copied()
            .unwrap_or(self.end())
            .min(self.end())
    }

    fn slice(&self, r: Range<u64>) -> &[u8] {
        &self.data[(r.start - self.base) as usize..(r.end - self.base) as usize]
    }
}

/// A window slide: at loop top `at`, before token number `token`, to window start `ws`.
#[derive(Clone, Copy, Debug)]
struct Slide {
    at: u64,
    token: usize,
    ws: u64,
}

/// A parser's state at its first loop top at or after `x`.
///
/// Two parsers at the same loop top with equal `lazy`, `ws` and `e` produce the same tokens
/// from there on: both have hashed every position from the window start (each hashes all
/// positions it passes at levels 4-9, and a fresh parser starts hashing at its own window
/// start), and matches never reach before the window start.
#[derive(Clone, Copy, Debug)]
struct Checkpoint {
    x: u64,
    at: u64,
    lazy: LazyState,
    ws: u64,
    e: u64,
    tokens: usize,
}

impl Checkpoint {
    fn same_state(&self, o: &Checkpoint) -> bool {
        self.at == o.at && self.lazy == o.lazy && self.ws == o.ws && self.e == o.e
    }
}

/// Tokens between two marks of a [`Runner`].
const MARK_EVERY: usize = 256;

/// Collects tokens, and the absolute position after every [`MARK_EVERY`]th token so that
/// block boundaries can be placed without summing every token's length.
struct VecSink<'a> {
    tokens: &'a mut Vec<Token>,
    marks: &'a mut Vec<u64>,
    ws: u64,
}

impl Sink for VecSink<'_> {
    #[inline(always)]
    fn push(&mut self, t: Token, end: usize, _window: &[u8]) {
        self.tokens.push(t);
        if self.tokens.len() % MARK_EVERY == 0 {
            self.marks.push(self.ws + end as u64);
        }
    }

    fn flush(&mut self, _end: usize, _window: &[u8]) {}
}

/// Input bytes covered by `tokens`.
fn input_len(tokens: &[Token]) -> u64 {
    tokens.iter().map(|t| t.input_len() as u64).sum()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// At a loop top at or after the requested position.
    Paused,
    /// All input consumed (the input was the last).
    Drained,
    /// Needs input that has not arrived.
    Starved,
}

/// A hash-chain parser over absolute positions that fills and slides its window as Go's
/// `compressor.write` would for the recorded writes, collecting tokens.
struct Runner {
    m: Matcher,
    /// Absolute window start.
    ws: u64,
    /// Absolute end of the data in the window (Go's `windowEnd`).
    e: u64,
    tokens: Vec<Token>,
    /// `marks[k]`: absolute position after token `(k + 1) * MARK_EVERY - 1`.
    marks: Vec<u64>,
    /// Absolute position where `tokens[0]` starts.
    base: u64,
    slides: Vec<Slide>,
}

impl Runner {
    /// The parser of a stream's start.
    fn start(params: Params) -> Runner {
        Runner {
            m: Matcher::new(params),
            ws: 0,
            e: 0,
            tokens: Vec::new(),
            marks: Vec::new(),
            base: 0,
            slides: Vec::new(),
        }
    }

    /// Starts a new token list at the current loop top.
    fn clear_tokens(&mut self) {
        self.tokens.clear();
        self.marks.clear();
        self.slides.clear();
        // A pending literal or match starts one byte back.
        self.base = self.pos() - u64::from(self.m.lazy_state().byte_available);
    }

    /// Absolute position where token `t` starts (or the end, for `t == tokens.len()`).
    fn pos_of(&self, t: usize) -> u64 {
        let k = t / MARK_EVERY;
        let from = if k == 0 { self.base } else { self.marks[k - 1] };
        from + input_len(&self.tokens[k * MARK_EVERY..t])
    }

    /// Turns `spare` (or a new parser) into a fresh parser at `c` (a multiple of 32 KiB, at
    /// least 32 KiB), with the window starting 32 KiB before and that much hashed.
    fn fresh_at(spare: Option<Runner>, params: Params, inp: &Input, c: u64) -> Runner {
        let mut r = match spare {
            Some(mut r) => {
                r.m.reset();
                r
            }
            None => Runner::start(params),
        };
        r.ws = c - WINDOW;
        r.e = inp
            .bound_after(c + MIN_LOOKAHEAD as u64 - 1)
            .min(r.ws + 2 * WINDOW);
        r.m.prime(inp.slice(r.ws..r.e), WINDOW_SIZE);
        r.clear_tokens();
        r
    }

    /// Absolute position of the next loop top.
    fn pos(&self) -> u64 {
        self.ws + self.m.index as u64
    }

    fn checkpoint(&self, x: u64) -> Checkpoint {
        Checkpoint {
            x,
            at: self.pos(),
            lazy: self.m.lazy_state(),
            ws: self.ws,
            e: self.e,
            tokens: self.tokens.len(),
        }
    }

    /// Parses until the first loop top at or after `stop` (or the end of the input).
    fn run_until(&mut self, inp: &Input, stop: u64) -> Outcome {
        loop {
            let window = inp.slice(self.ws..self.e);
            let pause = stop.saturating_sub(self.ws).min(usize::MAX as u64) as usize;
            let mut sink = VecSink {
                tokens: &mut self.tokens,
                marks: &mut self.marks,
                ws: self.ws,
            };
            match self.m.deflate(window, false, pause, &mut sink) {
                Stop::Paused => return Outcome::Paused,
                Stop::Drained => return Outcome::Drained,
                Stop::NeedInput => {}
            }
            if self.e >= inp.end() {
                if !inp.last {
                    return Outcome::Starved;
                }
                self.m.deflate(window, true, usize::MAX, &mut sink);
                return Outcome::Drained;
            }
            // Go's fillDeflate, then the copy of as much of the write as fits.
            if self.m.index >= SLIDE_AT {
                self.m.slide();
                self.ws += WINDOW;
                self.slides.push(Slide {
                    at: self.pos(),
                    token: self.tokens.len(),
                    ws: self.ws,
                });
            }
            self.e = inp.bound_after(self.e).min(self.ws + 2 * WINDOW);
        }
    }
}

/// How a worker's stretch of the real token stream ends.
#[derive(Clone, Copy, Debug)]
enum Exit {
    /// The worker's stream joins worker `into`'s at loop top `at`.
    Splice {
        into: usize,
        at: u64,
        mine: usize,
        theirs: usize,
    },
    /// The worker reached the batch end (or the end of the input).
    End,
}

/// Runs `f(0..n)` on up to `threads` threads, handing out indices in order.
fn run_tasks<F: Fn(usize) + Sync>(threads: usize, n: usize, f: F) {
    let next = AtomicUsize::new(0);
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        f(i);
    };
    let helpers = threads.min(n).saturating_sub(1);
    if helpers == 0 {
        worker();
        return;
    }
    std::thread::scope(|s| {
        for _ in 0..helpers {
            s.spawn(worker);
        }
        worker();
    });
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Parses chunk `i` of a batch: the real parser's from where it is, a fresh parser's from
/// the chunk start (recording checkpoints), up to the next chunk start or `end`.
fn parse_chunk(
    i: usize,
    r: &mut Runner,
    inp: &Input,
    starts: &[u64],
    end: Option<u64>,
) -> Vec<Checkpoint> {
    let limit = starts.get(i + 1).copied().or(end);
    let mut cps = Vec::new();
    if i > 0 {
        let zone_end = (starts[i] + SPLICE_ZONE).min(limit.unwrap_or(u64::MAX));
        let mut x = starts[i];
        while x < zone_end {
            if r.run_until(inp, x) != Outcome::Paused {
                return cps;
            }
            cps.push(r.checkpoint(x));
            x += CHECKPOINT_STEP;
        }
    }
    r.run_until(inp, limit.unwrap_or(u64::MAX));
    cps
}

/// Continues parser `i` (at the next chunk start) until it meets a later parser at one of
/// its checkpoints, or reaches the batch end.
fn follow(
    i: usize,
    r: &mut Runner,
    inp: &Input,
    starts: &[u64],
    end: Option<u64>,
    cps: &[Vec<Checkpoint>],
) -> Exit {
    for target in i + 1..starts.len() {
        if r.run_until(inp, starts[target]) != Outcome::Paused {
            return Exit::End;
        }
        for cp in &cps[target] {
            if r.run_until(inp, cp.x) != Outcome::Paused {
                return Exit::End;
            }
            let mine = r.checkpoint(cp.x);
            if mine.same_state(cp) {
                return Exit::Splice {
                    into: target,
                    at: cp.at,
                    mine: mine.tokens,
                    theirs: cp.tokens,
                };
            }
        }
    }
    r.run_until(inp, end.unwrap_or(u64::MAX));
    Exit::End
}

/// A block to Huffman-code: its tokens in the merged list, and its bytes if it may be
/// stored.
struct Job {
    tokens: JobTokens,
    input: Option<Range<u64>>,
}

/// Where a block's tokens are: in one parser's list, or gathered from several.
enum JobTokens {
    In(usize, Range<usize>),
    Gathered(Vec<Token>),
}

/// Blocks cut from a batch, waiting to be Huffman-coded while the next batch is parsed.
struct Coding {
    /// Token lists of the batch's parsers, indexed by [`JobTokens::In`].
    tokens: Vec<Vec<Token>>,
    jobs: Vec<Job>,
    /// The first absolute input position a job may store.
    keep_from: u64,
}

impl Coding {
    /// The jobs in groups for the coding tasks.
    fn groups(&self, threads: usize) -> Vec<&[Job]> {
        if self.jobs.is_empty() {
            return Vec::new();
        }
        self.jobs
            .chunks(self.jobs.len().div_ceil(threads * 4))
            .collect()
    }

    /// Codes one group into pieces.
    fn code(&self, inp: &Input, group: &[Job]) -> Vec<Piece> {
        let mut bw = BitWriter::for_pieces();
        for j in group {
            let input = j.input.clone().map(|r| inp.slice(r));
            let tokens = match &j.tokens {
                JobTokens::In(i, range) => &self.tokens[*i][range.clone()],
                JobTokens::Gathered(v) => &v[..],
            };
            bw.write_block(tokens, false, input);
        }
        bw.into_pieces()
    }
}

/// A piece of the real token stream: tokens `from..to` of parser `runner` (`None`: the
/// open block carried over from the previous batch).
struct Segment {
    runner: Option<usize>,
    from: usize,
    to: usize,
}

/// The parallel encoder for levels 4..=9: the real parser, the open block, and the output.
pub(crate) struct Engine {
    params: Params,
    threads: usize,
    chunk: u64,
    /// The real stream's parser, paused at a loop top (`None` after the end).
    real: Option<Runner>,
    /// Tokens of the open block.
    carry: Vec<Token>,
    /// Absolute start of the open block, `None` if the window moved past it.
    block_start: Option<u64>,
    /// Absolute position where the open block's tokens start.
    carry_pos: u64,
    pub(crate) bw: BitWriter,
    /// Parsers to reuse (their tables are large).
    spare: Vec<Runner>,
    /// Token buffers to reuse.
    token_pool: Vec<Vec<Token>>,
    /// The previous batch's blocks, coded during the next batch's parse.
    pending: Option<Coding>,
}

impl Engine {
    pub(crate) fn new(params: Params, threads: usize, chunk: u64) -> Engine {
        debug_assert!(params.is_lazy() && threads >= 2);
        Engine {
            params,
            threads,
            chunk: (chunk / WINDOW).max(2) * WINDOW,
            real: Some(Runner::start(params)),
            carry: Vec::with_capacity(MAX_FLATE_BLOCK_TOKENS),
            block_start: Some(0),
            carry_pos: 0,
            bw: BitWriter::new(),
            spare: Vec::new(),
            token_pool: Vec::new(),
            pending: None,
        }
    }

    /// Bytes needed per batch beyond the real parser's position.
    pub(crate) fn batch_bytes(&self) -> u64 {
        self.chunk * self.chunks_per_batch() + 2 * WINDOW
    }

    /// Several chunks per thread, so that uneven chunks even out; capped because every
    /// chunk of a batch holds a parser (1 MiB of tables) and its tokens at once.
    fn chunks_per_batch(&self) -> u64 {
        (4 * self.threads as u64).min(64)
    }

    /// The first absolute position whose bytes the engine still needs.
    pub(crate) fn keep_from(&self) -> u64 {
        let real = self.real.as_ref().map_or(u64::MAX, |r| r.ws);
        real.min(self.pending.as_ref().map_or(u64::MAX, |c| c.keep_from))
    }

    /// Compresses what `inp` allows: full batches, or everything if `inp.last` (then the
    /// stream is ended with Go's final empty stored block).
    pub(crate) fn process(&mut self, inp: &Input) {
        let align = |x: u64| x / WINDOW * WINDOW;
        loop {
            let Some(real) = self.real.as_ref() else {
                return;
            };
            let p = real.pos();
            let avail = inp.end().saturating_sub(p);
            let chunks = self.chunks_per_batch();
            if avail >= self.batch_bytes() {
                let starts: Vec<u64> = (1..chunks).map(|k| align(p + k * self.chunk)).collect();
                self.batch(inp, &starts, Some(align(p + chunks * self.chunk)));
            } else if inp.last {
                // The final batch: split what is left evenly.
                let per = align(avail / chunks).max(2 * WINDOW);
                let starts: Vec<u64> = if avail >= 4 * WINDOW {
                    (1..chunks)
                        .map(|k| align(p + k * per))
                        .filter(|&c| c + 2 * WINDOW < inp.end())
                        .collect()
                } else {
                    Vec::new()
                };
                self.batch(inp, &starts, None);
                self.finish(inp);
                return;
            } else {
                return;
            }
        }
    }

    /// Runs the real parser to `end` (the end of input if `None`) with helpers starting at
    /// `starts` (increasing multiples of 32 KiB after the real parser), codes the previous
    /// batch's blocks meanwhile, and cuts this batch's blocks.
    fn batch(&mut self, inp: &Input, starts: &[u64], end: Option<u64>) {
        let Some(mut real) = self.real.take() else {
            return;
        };
        real.clear_tokens();
        let mut all = vec![real.pos()];
        all.extend(
            starts
                .iter()
                .copied()
                // A fresh parser needs the 32 KiB before its start, which the buffer holds
                // from the real parser's position on.
                .filter(|&c| c >= real.pos() + WINDOW),
        );
        let starts = all;
        let n = starts.len();
        let params = self.params;

        // Phase 1: every chunk at once.
        let real = Mutex::new(Some(real));
        let spare: Vec<Mutex<Option<Runner>>> = (0..n)
            .map(|i| Mutex::new(if i > 0 { self.spare.pop() } else { None }))
            .collect();
        type Parsed = Mutex<Option<(Runner, Vec<Checkpoint>)>>;
        let slots: Vec<Parsed> = (0..n).map(|_| Mutex::new(None)).collect();
        // The previous batch's blocks are coded by the same threads, after the parse tasks
        // (they fill in while the last chunks finish).
        let pending = self.pending.take();
        let groups = pending
            .as_ref()
            .map_or(Vec::new(), |c| c.groups(self.threads));
        let coded: Vec<Mutex<Vec<Piece>>> = groups.iter().map(|_| Mutex::new(Vec::new())).collect();
        run_tasks(self.threads, n + groups.len(), |i| {
            if i >= n {
                if let Some(c) = pending.as_ref() {
                    *lock(&coded[i - n]) = c.code(inp, groups[i - n]);
                }
                return;
            }
            let r = match i {
                0 => lock(&real).take(),
                _ => Some(Runner::fresh_at(
                    lock(&spare[i]).take(),
                    params,
                    inp,
                    starts[i],
                )),
            };
            if let Some(mut r) = r {
                let cps = parse_chunk(i, &mut r, inp, &starts, end);
                *lock(&slots[i]) = Some((r, cps));
            }
        });
        if pending.is_some() {
            self.join(inp, &groups, coded);
        }
        drop(groups);
        if let Some(c) = pending {
            for mut v in c.tokens {
                v.clear();
                self.token_pool.push(v);
            }
        }
        let mut runners = Vec::with_capacity(n);
        let mut cps = Vec::with_capacity(n);
        for slot in slots {
            let Some((r, c)) = slot.into_inner().unwrap_or_else(|e| e.into_inner()) else {
                unreachable!("every chunk task stores its parser");
            };
            runners.push(Mutex::new(r));
            cps.push(c);
        }

        // Phase 2: each parser follows the real stream into the next chunk until they meet.
        let exits: Vec<Mutex<Exit>> = (0..n).map(|_| Mutex::new(Exit::End)).collect();
        run_tasks(self.threads, n - 1, |i| {
            let exit = follow(i, &mut lock(&runners[i]), inp, &starts, end, &cps);
            *lock(&exits[i]) = exit;
        });
        let outs: Vec<(Runner, Exit)> = runners
            .into_iter()
            .zip(exits)
            .map(|(r, e)| {
                (
                    r.into_inner().unwrap_or_else(|e| e.into_inner()),
                    e.into_inner().unwrap_or_else(|e| e.into_inner()),
                )
            })
            .collect();
        self.merge(outs);
    }

    /// Follows the real stream through the workers' outputs and cuts blocks, to be coded
    /// with the next batch.
    fn merge(&mut self, mut outs: Vec<(Runner, Exit)>) {
        let carry = std::mem::take(&mut self.carry);
        let mut segs = Vec::new();
        if !carry.is_empty() {
            segs.push(Segment {
                runner: None,
                from: 0,
                to: carry.len(),
            });
        }
        // (token number in the stream of this batch, new window start) of every real slide.
        let mut slides = Vec::new();
        let mut count = carry.len();
        let mut cur = 0;
        let mut from = 0;
        let mut joined_at = 0;
        loop {
            let (r, exit) = &outs[cur];
            let (to, left_at) = match *exit {
                Exit::Splice { at, mine, .. } => (mine, at),
                Exit::End => (r.tokens.len(), u64::MAX),
            };
            for s in &r.slides {
                if (cur == 0 || s.at > joined_at) && s.at <= left_at {
                    slides.push((count + s.token - from, s.ws));
                }
            }
            segs.push(Segment {
                runner: Some(cur),
                from,
                to,
            });
            count += to - from;
            match *exit {
                Exit::Splice {
                    into, at, theirs, ..
                } => {
                    cur = into;
                    from = theirs;
                    joined_at = at;
                }
                Exit::End => break,
            }
        }

        let tokens_of = |seg: &Segment| -> &[Token] {
            match seg.runner {
                Some(i) => &outs[i].0.tokens[seg.from..seg.to],
                None => &carry[seg.from..seg.to],
            }
        };
        let carry_pos = self.carry_pos;
        let pos_of = |seg: &Segment, t: usize| -> u64 {
            match seg.runner {
                Some(i) => outs[i].0.pos_of(t),
                None => carry_pos + input_len(&carry[..t]),
            }
        };
        let mut next_carry_pos = carry_pos;

        // Cut blocks every 16384 tokens.
        let full = count / MAX_FLATE_BLOCK_TOKENS;
        let mut jobs = Vec::with_capacity(full);
        let mut start = self.block_start;
        let mut ev = 0;
        let mut seg_i = 0;
        // Stream token number where segs[seg_i] begins.
        let mut seg_at = 0;
        let mut next_carry = Vec::new();
        for b in 0..=full {
            let lo = b * MAX_FLATE_BLOCK_TOKENS;
            let hi = ((b + 1) * MAX_FLATE_BLOCK_TOKENS).min(count);
            // Gather the block's tokens (borrowed when they lie in one segment).
            while seg_i < segs.len() && seg_at + (segs[seg_i].to - segs[seg_i].from) <= lo {
                seg_at += segs[seg_i].to - segs[seg_i].from;
                seg_i += 1;
            }
            let mut gathered = Vec::new();
            let mut single = None;
            let (mut si, mut sa) = (seg_i, seg_at);
            let mut end_pos = next_carry_pos;
            while si < segs.len() && sa < hi {
                let seg = &segs[si];
                let len = seg.to - seg.from;
                let a = lo.max(sa) - sa + seg.from;
                let z = hi.min(sa + len) - sa + seg.from;
                if single.is_none() && gathered.is_empty() && hi <= sa + len {
                    single = Some((seg.runner, a..z));
                } else {
                    if let Some((runner, range)) = single.take() {
                        let first = Segment {
                            runner,
                            from: range.start,
                            to: range.end,
                        };
                        gathered.extend_from_slice(tokens_of(&first));
                    }
                    gathered.extend_from_slice(&tokens_of(seg)[a - seg.from..z - seg.from]);
                }
                end_pos = pos_of(seg, z);
                if hi <= sa + len {
                    break;
                }
                sa += len;
                si += 1;
            }
            if b == full {
                // The open block: carried to the next batch.
                next_carry = match single {
                    Some((runner, range)) => tokens_of(&Segment {
                        runner,
                        from: range.start,
                        to: range.end,
                    })
                    .to_vec(),
                    None => gathered,
                };
                break;
            }
            while ev < slides.len() && slides[ev].0 < hi {
                if start.is_some_and(|s| s < slides[ev].1) {
                    start = None;
                }
                ev += 1;
            }
            let tokens = match single {
                Some((Some(i), range)) => JobTokens::In(i, range),
                Some((None, range)) => JobTokens::Gathered(carry[range].to_vec()),
                None => JobTokens::Gathered(gathered),
            };
            jobs.push(Job {
                tokens,
                input: start.map(|s| s..end_pos),
            });
            start = Some(end_pos);
            next_carry_pos = end_pos;
        }
        self.carry_pos = next_carry_pos;
        for &(_, ws) in &slides[ev..] {
            if start.is_some_and(|s| s < ws) {
                start = None;
            }
        }
        self.block_start = start;
        let keep_from = jobs
            .iter()
            .find_map(|j| j.input.as_ref().map(|r| r.start))
            .unwrap_or(u64::MAX);
        let tokens = outs
            .iter_mut()
            .map(|(r, _)| {
                std::mem::replace(&mut r.tokens, self.token_pool.pop().unwrap_or_default())
            })
            .collect();
        self.pending = Some(Coding {
            tokens,
            jobs,
            keep_from,
        });
        self.carry = next_carry;
        self.real = Some(outs.swap_remove(cur).0);
        self.spare.extend(outs.into_iter().map(|(r, _)| r));
    }

    /// Appends coded groups in order.
    fn join(&mut self, inp: &Input, groups: &[&[Job]], coded: Vec<Mutex<Vec<Piece>>>) {
        for (group, pieces) in groups.iter().zip(coded) {
            let stored = |n: usize| match &group[n].input {
                Some(range) => inp.slice(range.clone()),
                None => &[],
            };
            for p in &pieces.into_inner().unwrap_or_else(|e| e.into_inner()) {
                self.bw.append_piece(p, stored);
            }
        }
    }

    /// Codes and appends the pending blocks now.
    fn code_pending(&mut self, inp: &Input) {
        let Some(c) = self.pending.take() else {
            return;
        };
        let groups = c.groups(self.threads);
        let coded: Vec<Mutex<Vec<Piece>>> = groups.iter().map(|_| Mutex::new(Vec::new())).collect();
        run_tasks(self.threads, groups.len(), |g| {
            *lock(&coded[g]) = c.code(inp, groups[g]);
        });
        self.join(inp, &groups, coded);
    }

    /// After the last batch: the final block, then Go's final empty stored block.
    fn finish(&mut self, inp: &Input) {
        self.code_pending(inp);
        if !self.carry.is_empty() {
            let end = self.carry_pos + self.carry.iter().map(|t| t.input_len() as u64).sum::<u64>();
            let input = self.block_start.map(|s| inp.slice(s..end));
            self.bw.write_block(&self.carry, false, input);
            self.carry.clear();
        }
        self.bw.write_stored_header(0, true);
        self.bw.align();
        self.real = None;
    }
}
