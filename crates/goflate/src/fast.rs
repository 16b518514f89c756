//! The BestSpeed (level 1) matcher of Go 1.23's `deflatefast.go`: a Snappy-style single-probe
//! hash table over 64 KiB blocks, with matches reaching back into the previous block.
//!
//! Offsets are kept as `i32` with Go's rebasing rule so that long streams behave the same.

use crate::bitwriter::MAX_STORE_BLOCK_SIZE;
use crate::token::{Token, MAX_MATCH_LENGTH, MAX_MATCH_OFFSET};

const TABLE_BITS: u32 = 14;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
const TABLE_MASK: u32 = (TABLE_SIZE as u32) - 1;
const TABLE_SHIFT: u32 = 32 - TABLE_BITS;
/// `cur` is rebased before it can overflow `i32`.
const BUFFER_RESET: i32 = i32::MAX - (MAX_STORE_BLOCK_SIZE as i32) * 2;
const INPUT_MARGIN: usize = 16 - 1;
const MIN_NON_LITERAL_BLOCK_SIZE: usize = 1 + 1 + INPUT_MARGIN;
const MAX_OFFSET: i32 = MAX_MATCH_OFFSET as i32;

#[derive(Clone, Copy, Default)]
struct TableEntry {
    val: u32,
    offset: i32,
}

#[inline(always)]
fn load32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

#[inline(always)]
fn load64(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn hash(u: u32) -> u32 {
    u.wrapping_mul(0x1e35a7bd) >> TABLE_SHIFT
}

/// Go's `deflateFast`: the match table and the previous block.
pub(crate) struct DeflateFast {
    table: Box<[TableEntry]>,
    prev: Vec<u8>,
    cur: i32,
}

impl DeflateFast {
    pub(crate) fn new() -> DeflateFast {
        DeflateFast {
            table: vec![TableEntry::default(); TABLE_SIZE].into_boxed_slice(),
            prev: Vec::with_capacity(MAX_STORE_BLOCK_SIZE),
            cur: MAX_STORE_BLOCK_SIZE as i32,
        }
    }

    /// Appends the tokens of block `src` (at most 65535 bytes) to `dst`.
    pub(crate) fn encode(&mut self, dst: &mut Vec<Token>, src: &[u8]) {
        if self.cur >= BUFFER_RESET {
            self.shift_offsets();
        }
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            self.cur += MAX_STORE_BLOCK_SIZE as i32;
            self.prev.clear();
            dst.extend(src.iter().map(|&b| Token::literal(b)));
            return;
        }
        let s_limit = (src.len() - INPUT_MARGIN) as i32;
        let mut next_emit: i32 = 0;
        let mut s: i32 = 0;
        let mut cv = load32(src, 0);
        let mut next_hash = hash(cv);

        'outer: loop {
            // Skip faster the longer no match turns up (Snappy's heuristic).
            let mut skip: i32 = 32;
            let mut next_s = s;
            let mut candidate;
            loop {
                s = next_s;
                let between = skip >> 5;
                next_s = s + between;
                skip += between;
                if next_s > s_limit {
                    break 'outer;
                }
                let slot = (next_hash & TABLE_MASK) as usize;
                candidate = self.table[slot];
                let now = load32(src, next_s as usize);
                self.table[slot] = TableEntry {
                    offset: s + self.cur,
                    val: cv,
                };
                next_hash = hash(now);
                let offset = s - (candidate.offset - self.cur);
                if offset > MAX_OFFSET || cv != candidate.val {
                    cv = now;
                    continue;
                }
                break;
            }
            // A 4-byte match at s; src[next_emit..s] has no match.
            dst.extend(
                src[next_emit as usize..s as usize]
                    .iter()
                    .map(|&b| Token::literal(b)),
            );
            loop {
                s += 4;
                let t = candidate.offset - self.cur + 4;
                let l = self.match_len(s, t, src);
                dst.push(Token::back_ref((l + 4) as usize, (s - t) as usize));
                s += l;
                next_emit = s;
                if s >= s_limit {
                    break 'outer;
                }
                // Hash s-1 and s; if s matches, emit another copy right away.
                let mut x = load64(src, (s - 1) as usize);
                let prev_hash = hash(x as u32);
                self.table[(prev_hash & TABLE_MASK) as usize] = TableEntry {
                    offset: self.cur + s - 1,
                    val: x as u32,
                };
                x >>= 8;
                let curr_hash = hash(x as u32);
                let slot = (curr_hash & TABLE_MASK) as usize;
                candidate = self.table[slot];
                self.table[slot] = TableEntry {
                    offset: self.cur + s,
                    val: x as u32,
                };
                let offset = s - (candidate.offset - self.cur);
                if offset > MAX_OFFSET || x as u32 != candidate.val {
                    cv = (x >> 8) as u32;
                    next_hash = hash(cv);
                    s += 1;
                    break;
                }
            }
        }
        if (next_emit as usize) < src.len() {
            dst.extend(src[next_emit as usize..].iter().map(|&b| Token::literal(b)));
        }
        self.cur += src.len() as i32;
        self.prev.clear();
        self.prev.extend_from_slice(src);
    }

    /// Match length between `src[s..]` and `src[t..]` (before `src` when `t < 0`: in the
    /// previous block), given that the 4 bytes before both already match.
    fn match_len(&self, s: i32, t: i32, src: &[u8]) -> i32 {
        let s = s as usize;
        let s1 = (s + MAX_MATCH_LENGTH - 4).min(src.len());
        if t >= 0 {
            let t = t as usize;
            let a = &src[s..s1];
            let b = &src[t..t + a.len()];
            return a.iter().zip(b).take_while(|(x, y)| x == y).count() as i32;
        }
        // The match starts in the previous block.
        let tp = self.prev.len() as i32 + t;
        if tp < 0 {
            return 0;
        }
        let a = &src[s..s1];
        let b = &self.prev[tp as usize..];
        let len = a.len().min(b.len());
        let (a, b) = (&a[..len], &b[..len]);
        if let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) {
            return i as i32;
        }
        let n = len;
        if s + n == s1 {
            return n as i32;
        }
        // Continue into the current block.
        let a = &src[s + n..s1];
        let b = &src[..a.len()];
        (a.iter().zip(b).take_while(|(x, y)| x == y).count() + n) as i32
    }

    /// Forgets the history: no later match may reach before this point.
    pub(crate) fn reset(&mut self) {
        self.prev.clear();
        self.cur += MAX_OFFSET;
        if self.cur >= BUFFER_RESET {
            self.shift_offsets();
        }
    }

    /// Rebases all offsets so that `cur` restarts low (Go issues 18636, 34121).
    fn shift_offsets(&mut self) {
        if self.prev.is_empty() {
            self.table.fill(TableEntry::default());
            self.cur = MAX_OFFSET + 1;
            return;
        }
        let cur = self.cur;
        for e in self.table.iter_mut() {
            e.offset = (e.offset - cur + MAX_OFFSET + 1).max(0);
        }
        self.cur = MAX_OFFSET + 1;
    }
}
