//! The hash-chain LZ77 parser of Go 1.23's `compressor.deflate` (levels 2 to 9).
//!
//! The parser works on a window slice whose index 0 is the current window start, like Go's
//! `d.window`; the owner moves the window (Go's `fillDeflate`) by calling [`Matcher::slide`].
//! Everything that decides tokens is copied from Go: the hash, the chain walk with its
//! cut-offs (distance, window start, chain length, "nice" length, 4-byte matches only within
//! 4096), lazy evaluation, and which positions get hashed.

use crate::token::{Token, MAX_MATCH_LENGTH, MIN_MATCH_LENGTH};

pub(crate) const WINDOW_SIZE: usize = 1 << 15;
/// Slots of `Matcher::hash_prev`: twice Go's, so that positions can be hashed up to
/// [`HASH_AHEAD`] bytes before the parser reaches them without reusing a slot that a chain
/// walk may still read (a walk from `pos` reads slots of positions `>= pos - WINDOW_SIZE`).
const PREV_SLOTS: usize = 2 * WINDOW_SIZE;
const PREV_MASK: usize = PREV_SLOTS - 1;
/// How far ahead of the parser (lazy levels) positions are hashed, in one tight loop:
/// separate from the branchy parse, the table updates of consecutive positions overlap (the
/// serial encoder takes 2.22 s instead of 2.35 s for a Debian layer, same bytes; ~6% slower
/// on random data, where chains are empty and the table is twice as large). Go hashes each
/// position when the parser reaches it; the chains a walk can see are the same, as every
/// walk starts from the link stored for its own position and goes backwards.
const HASH_AHEAD: usize = 1024;
const HASH_BITS: u32 = 17;
/// Chain links stored per position slot (see `Matcher::hash_prev`). With 2 the serial encoder
/// is 5-8% faster on layer tars (a Debian layer: 2.25 s instead of 2.41 s) and ~7% slower
/// on incompressible input (bigger table, hardly any chains to walk); 4 is no faster than 2.
const LINKS: usize = 2;
const HASH_SIZE: usize = 1 << HASH_BITS;
const HASH_MASK: u32 = (1 << HASH_BITS) - 1;
const MAX_HASH_OFFSET: isize = 1 << 24;
const HASH_MUL: u32 = 0x1e35a7bd;
/// The parser only runs while this much input is ahead of it (unless flushing).
pub(crate) const MIN_LOOKAHEAD: usize = MIN_MATCH_LENGTH + MAX_MATCH_LENGTH;
/// A fill moves the window once the parser has reached this window index.
pub(crate) const SLIDE_AT: usize = 2 * WINDOW_SIZE - MIN_LOOKAHEAD;

/// Tuning of one compression level (Go's `compressionLevel`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    good: usize,
    lazy: usize,
    nice: usize,
    chain: usize,
    /// Levels 2 and 3 skip hashing inside long matches and do not match lazily.
    fast_skip_hashing: Option<usize>,
}

impl Params {
    /// Parameters of levels 2..=9.
    pub(crate) fn for_level(level: u8) -> Params {
        let (good, lazy, nice, chain, skip) = match level {
            2 => (4, 0, 16, 8, Some(5)),
            3 => (4, 0, 32, 32, Some(6)),
            4 => (4, 4, 16, 16, None),
            5 => (8, 16, 32, 32, None),
            6 => (8, 16, 128, 128, None),
            7 => (8, 32, 128, 256, None),
            8 => (32, 128, 258, 1024, None),
            9 => (32, 258, 258, 4096, None),
            _ => unreachable!("level {level} has no hash-chain parameters"),
        };
        Params {
            good,
            lazy,
            nice,
            chain,
            fast_skip_hashing: skip,
        }
    }

    /// Whether every position is hashed and matching is lazy (levels 4..=9).
    pub(crate) fn is_lazy(&self) -> bool {
        self.fast_skip_hashing.is_none()
    }
}

/// Where the parser receives tokens.
pub(crate) trait Sink {
    /// A token; `end` is the window index just past the input it covers.
    fn push(&mut self, t: Token, end: usize, window: &[u8]);
    /// End of input reached while flushing: emit what is pending, ending at `end`.
    fn flush(&mut self, end: usize, window: &[u8]);
}

/// Why [`Matcher::deflate`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Fewer than [`MIN_LOOKAHEAD`] bytes ahead: the owner must fill (or flush).
    NeedInput,
    /// All input consumed while flushing.
    Drained,
    /// Reached the caller's `pause_at` loop top.
    Paused,
}

/// The parser state that decides all future tokens (apart from the window and the hash
/// chains, which equal those of any other parser once both have hashed the same window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LazyState {
    pub(crate) length: usize,
    /// Only meaningful when `length >= 4`; zero otherwise.
    pub(crate) offset: usize,
    pub(crate) byte_available: bool,
}

/// Hash chains plus the parse state of Go's `compressor` for levels 2..=9.
pub(crate) struct Matcher {
    params: Params,
    // Fixed-size so that masked indexing needs no bounds checks.
    hash_head: Box<[u32; HASH_SIZE]>,
    /// Per position (slot: the stored position modulo [`PREV_SLOTS`]): Go's `hashPrev` link
    /// and, not in Go, the next [`LINKS`]` - 1` links down the chain, side by side in one
    /// cache line, so that a chain walk needs one dependent load per `LINKS` links. The walk is latency bound and this shortens its
    /// critical path; the candidates and their order stay Go's.
    hash_prev: Box<[[u32; LINKS]; PREV_SLOTS]>,
    /// Window index below which every position is hashed or was passed unhashed (Go skips
    /// the last three positions before a flush).
    hashed: usize,
    hash_offset: isize,
    chain_head: isize,
    /// Next window index to process.
    pub(crate) index: usize,
    length: usize,
    offset: usize,
    byte_available: bool,
}

/// The zeroed `hash_prev` table on the heap.
fn zeroed_links() -> Box<[[u32; LINKS]; PREV_SLOTS]> {
    match vec![[0u32; LINKS]; PREV_SLOTS]
        .into_boxed_slice()
        .try_into()
    {
        Ok(table) => table,
        Err(_) => unreachable!("a vector of PREV_SLOTS elements converts to an array"),
    }
}

/// A zeroed table on the heap (a large array literal would pass through the stack).
fn zeroed_table<const N: usize>() -> Box<[u32; N]> {
    match vec![0u32; N].into_boxed_slice().try_into() {
        Ok(table) => table,
        Err(_) => unreachable!("a vector of N elements converts to [u32; N]"),
    }
}

#[inline(always)]
fn hash4(b: &[u8]) -> u32 {
    let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    v.wrapping_mul(HASH_MUL) >> (32 - HASH_BITS)
}

/// Number of equal leading bytes of `a` and `b`, at most `max` (both hold `max` bytes).
#[inline(always)]
fn match_len(a: &[u8], b: &[u8], max: usize) -> usize {
    let (a, b) = (&a[..max], &b[..max]);
    let mut n = 0;
    while n + 8 <= max {
        let x = u64::from_le_bytes(a[n..n + 8].try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(b[n..n + 8].try_into().unwrap_or([0; 8]));
        let d = x ^ y;
        if d != 0 {
            return n + (d.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < max && a[n] == b[n] {
        n += 1;
    }
    n
}

impl Matcher {
    pub(crate) fn new(params: Params) -> Matcher {
        Matcher {
            params,
            hash_head: zeroed_table(),
            hash_prev: zeroed_links(),
            hashed: 0,
            hash_offset: 1,
            chain_head: -1,
            index: 0,
            length: MIN_MATCH_LENGTH - 1,
            offset: 0,
            byte_available: false,
        }
    }

    /// Forgets everything, as `new` would, keeping the allocations.
    pub(crate) fn reset(&mut self) {
        self.hash_head.fill(0);
        self.hash_prev.fill([0; LINKS]);
        self.hashed = 0;
        self.hash_offset = 1;
        self.chain_head = -1;
        self.index = 0;
        self.length = MIN_MATCH_LENGTH - 1;
        self.offset = 0;
        self.byte_available = false;
    }

    /// The lazy-matching state, normalised for comparison.
    pub(crate) fn lazy_state(&self) -> LazyState {
        LazyState {
            length: self.length,
            offset: if self.length >= MIN_MATCH_LENGTH {
                self.offset
            } else {
                0
            },
            byte_available: self.byte_available,
        }
    }

    /// Starts parsing at window index `index` with positions `0..index` already hashed, as a
    /// fresh stream would after a preset dictionary (Go's `fillWindow` for the hashes).
    pub(crate) fn prime(&mut self, window: &[u8], index: usize) {
        for i in 0..index.min(window.len().saturating_sub(MIN_MATCH_LENGTH - 1)) {
            self.insert(window, i);
        }
        self.index = index;
        self.hashed = index;
    }

    #[inline(always)]
    fn insert(&mut self, window: &[u8], i: usize) -> isize {
        let h = (hash4(&window[i..i + MIN_MATCH_LENGTH]) & HASH_MASK) as usize;
        let head = self.hash_head[h];
        // The links below `head` are still `head`'s own whenever a walk can get past
        // `head`: a walk that reaches it stops there unless `head` lies within its window,
        // and then `head`'s slot has not been reused yet (the same holds, link by link, for
        // what `head`'s slot stores).
        let mut links = [0; LINKS];
        links[0] = head;
        if head != 0 {
            let below = self.hash_prev[head as usize & PREV_MASK];
            links[1..].copy_from_slice(&below[..LINKS - 1]);
        }
        let at = (i as isize + self.hash_offset) as u32;
        self.hash_prev[at as usize & PREV_MASK] = links;
        self.hash_head[h] = at;
        head as isize
    }

    /// Hashes the positions from `self.hashed` up to `to` (exclusive).
    #[inline(always)]
    fn hash_upto(&mut self, window: &[u8], to: usize) {
        for i in self.hashed..to {
            self.insert(window, i);
        }
        self.hashed = self.hashed.max(to);
    }

    /// Before returning: hashes what the parser passed and Go would have hashed by now
    /// (lazy levels; the others hash as Go does, when the parser gets there).
    #[inline(always)]
    fn settle_hashes<const LAZY: bool>(&mut self, window: &[u8], to: usize) {
        if LAZY {
            self.hash_upto(window, to);
        }
    }

    /// Moves the window down by [`WINDOW_SIZE`] (the owner moves the bytes).
    pub(crate) fn slide(&mut self) {
        self.index -= WINDOW_SIZE;
        self.hashed = self.hashed.saturating_sub(WINDOW_SIZE);
        self.hash_offset += WINDOW_SIZE as isize;
        if self.hash_offset > MAX_HASH_OFFSET {
            // Rebase the stored positions so they keep fitting in u32.
            // By whole table lengths, so that every position keeps its `hash_prev` slot.
            let delta = (self.hash_offset - 1) / PREV_SLOTS as isize * PREV_SLOTS as isize;
            self.hash_offset -= delta;
            self.chain_head -= delta;
            let rebase = |v: &mut u32| {
                *v = if *v as isize > delta {
                    (*v as isize - delta) as u32
                } else {
                    0
                };
            };
            self.hash_prev.iter_mut().flatten().for_each(rebase);
            self.hash_head.iter_mut().for_each(rebase);
        }
    }

    /// Go's `compressor.deflate`: parses `window` (window index 0 = window start) from
    /// `self.index` until the lookahead runs short, all input is consumed (`sync`), or a loop
    /// top at or after `pause_at` is reached.
    pub(crate) fn deflate<S: Sink>(
        &mut self,
        window: &[u8],
        sync: bool,
        pause_at: usize,
        sink: &mut S,
    ) -> Stop {
        if self.params.is_lazy() {
            self.run::<S, true>(window, sync, pause_at, sink)
        } else {
            self.run::<S, false>(window, sync, pause_at, sink)
        }
    }

    #[inline(always)]
    fn run<S: Sink, const LAZY: bool>(
        &mut self,
        win: &[u8],
        sync: bool,
        pause_at: usize,
        sink: &mut S,
    ) -> Stop {
        let window_end = win.len();
        if window_end - self.index < MIN_LOOKAHEAD && !sync {
            return Stop::NeedInput;
        }
        let max_insert_index = window_end.saturating_sub(MIN_MATCH_LENGTH - 1);
        let lazy_limit = self.params.lazy;
        let skip = self.params.fast_skip_hashing.unwrap_or(usize::MAX);
        // Positions passed before this call and not hashed stay unhashed, as in Go.
        if LAZY {
            self.hashed = self.hashed.max(self.index);
        }
        loop {
            let index = self.index;
            let lookahead = window_end - index;
            if lookahead < MIN_LOOKAHEAD {
                if !sync {
                    self.settle_hashes::<LAZY>(win, index.min(max_insert_index));
                    return Stop::NeedInput;
                }
                if lookahead == 0 {
                    if self.byte_available {
                        // The last byte is still pending.
                        sink.push(Token::literal(win[index - 1]), index, win);
                        self.byte_available = false;
                    }
                    sink.flush(index, win);
                    self.settle_hashes::<LAZY>(win, index.min(max_insert_index));
                    return Stop::Drained;
                }
            }
            if index >= pause_at {
                self.settle_hashes::<LAZY>(win, index.min(max_insert_index));
                return Stop::Paused;
            }
            if index < max_insert_index {
                if LAZY {
                    // Every position below `max_insert_index` gets hashed in order; the
                    // chain of `index` starts at the link stored when it was.
                    if index >= self.hashed {
                        self.hash_upto(win, (index + HASH_AHEAD).min(max_insert_index));
                    }
                    self.chain_head = self.hash_prev
                        [(index as isize + self.hash_offset) as usize & PREV_MASK][0]
                        as isize;
                } else {
                    self.chain_head = self.insert(win, index);
                }
            }
            let prev_length = self.length;
            let prev_offset = self.offset;
            self.length = MIN_MATCH_LENGTH - 1;
            self.offset = 0;
            let min_index = index.saturating_sub(WINDOW_SIZE) as isize;

            let head = self.chain_head - self.hash_offset;
            let try_match = if LAZY {
                lookahead > prev_length && prev_length < lazy_limit
            } else {
                lookahead > MIN_MATCH_LENGTH - 1
            };
            if head >= min_index && try_match {
                if let Some((l, o)) = self.find_match(win, index, head as usize, lookahead) {
                    self.length = l;
                    self.offset = o;
                }
            }
            let emit_match = if LAZY {
                prev_length >= MIN_MATCH_LENGTH && self.length <= prev_length
            } else {
                self.length >= MIN_MATCH_LENGTH
            };
            if emit_match {
                // Output the previous match (lazy) or this one.
                let t = if LAZY {
                    Token::back_ref(prev_length, prev_offset)
                } else {
                    Token::back_ref(self.length, self.offset)
                };
                if self.length <= skip {
                    // Hash every position the match covers (when lazy: at the next loop
                    // top, see `hash_upto`).
                    let new_index = if LAZY {
                        index + prev_length - 1
                    } else {
                        index + self.length
                    };
                    if !LAZY {
                        let stop = new_index.min(max_insert_index);
                        for i in index + 1..stop {
                            self.insert(win, i);
                        }
                    }
                    self.index = new_index;
                    if LAZY {
                        self.byte_available = false;
                        self.length = MIN_MATCH_LENGTH - 1;
                    }
                } else {
                    // Long match at levels 2-3: skip hashing.
                    self.index += self.length;
                }
                sink.push(t, self.index, win);
            } else {
                if !LAZY || self.byte_available {
                    let i = if LAZY { index - 1 } else { index };
                    sink.push(Token::literal(win[i]), i + 1, win);
                }
                self.index += 1;
                if LAZY {
                    self.byte_available = true;
                }
            }
        }
    }

    /// Go's `findMatch`: the longest match (better than 3 bytes) for `pos`, walking the
    /// hash chain from `head`.
    #[inline(always)]
    fn find_match(
        &self,
        win: &[u8],
        pos: usize,
        head: usize,
        lookahead: usize,
    ) -> Option<(usize, usize)> {
        let min_match_look = lookahead.min(MAX_MATCH_LENGTH);
        let win = &win[..pos + min_match_look];
        let nice = min_match_look.min(self.params.nice);
        // Go passes minMatchLength-1 as the previous length, so `good` never cuts the chain.
        let mut length = MIN_MATCH_LENGTH - 1;
        let mut tries = self.params.chain;
        if length >= self.params.good {
            tries >>= 2;
        }
        let mut found = None;
        let mut w_end = win[pos + length];
        let w_pos = &win[pos..];
        let min_index = pos as isize - WINDOW_SIZE as isize;
        // The chain does not depend on what matches, so it is followed a few links ahead
        // of the comparisons: the loads of the candidates then overlap. Links come
        // `LINKS` at a time (see `hash_prev`). The candidates and their order are Go's.
        const AHEAD: usize = 16;
        let mut cands = [0usize; AHEAD];
        let mut i = head as isize;
        let mut chain_done = false;
        let off = self.hash_offset;
        while !chain_done {
            let mut n = 0;
            'batch: loop {
                cands[n] = i as usize;
                n += 1;
                tries -= 1;
                if tries == 0 || i == min_index {
                    // At min_index, hash_prev already belongs to a newer position.
                    chain_done = true;
                    break;
                }
                let links = self.hash_prev[(i + off) as usize & PREV_MASK];
                for (l, &link) in links.iter().enumerate() {
                    let c = link as isize - off;
                    if c < min_index || c < 0 {
                        chain_done = true;
                        break 'batch;
                    }
                    if l == LINKS - 1 {
                        i = c;
                        break;
                    }
                    cands[n] = c as usize;
                    n += 1;
                    tries -= 1;
                    if tries == 0 || c == min_index {
                        chain_done = true;
                        break 'batch;
                    }
                }
                if n > AHEAD - LINKS {
                    break;
                }
            }
            for &c in &cands[..n] {
                if w_end == win[c + length] {
                    let m = match_len(&win[c..], w_pos, min_match_look);
                    if m > length && (m > MIN_MATCH_LENGTH || pos - c <= 4096) {
                        length = m;
                        found = Some((m, pos - c));
                        if m >= nice {
                            return found;
                        }
                        w_end = win[pos + m];
                    }
                }
            }
        }
        found
    }
}
