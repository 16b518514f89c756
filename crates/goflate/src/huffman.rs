//! Length-limited Huffman code construction, exactly as Go 1.23's `huffman_code.go` does it.
//!
//! Several optimal length-limited codes usually exist for one histogram; the bytes only match
//! Go's if the same one is picked, so this follows Go's algorithm (a package-merge variant that
//! walks "levels", leaves ordered by frequency then symbol) step by step, and assigns canonical
//! codes in symbol order within each length like Go.

/// A code word (bit-reversed, ready for an LSB-first writer) and its length in bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HCode {
    pub(crate) code: u16,
    pub(crate) len: u16,
}

#[derive(Clone, Copy, Debug)]
struct LiteralNode {
    literal: u16,
    freq: i32,
}

/// Level bookkeeping of the length-limited construction (`levelInfo` in Go).
#[derive(Clone, Copy, Default)]
struct LevelInfo {
    level: i32,
    last_freq: i32,
    next_char_freq: i32,
    next_pair_freq: i32,
    needed: i32,
}

/// The deepest level `bit_counts` handles (Go's `maxBitsLimit`).
const MAX_BITS_LIMIT: usize = 16;

/// A Huffman code over `codes.len()` symbols.
#[derive(Clone, Debug)]
pub(crate) struct HuffmanEncoder {
    pub(crate) codes: Vec<HCode>,
    list: Vec<LiteralNode>,
}

impl HuffmanEncoder {
    pub(crate) fn new(size: usize) -> HuffmanEncoder {
        HuffmanEncoder {
            codes: vec![HCode::default(); size],
            list: Vec::with_capacity(size + 1),
        }
    }

    /// An encoder with fixed code words.
    pub(crate) fn from_codes(codes: Vec<HCode>) -> HuffmanEncoder {
        HuffmanEncoder {
            list: Vec::new(),
            codes,
        }
    }

    /// Total bits needed to code `freq` with this code.
    pub(crate) fn bit_length(&self, freq: &[i32]) -> i64 {
        freq.iter()
            .zip(&self.codes)
            .map(|(&f, c)| i64::from(f) * i64::from(c.len))
            .sum()
    }

    /// Rebuilds the code for `freq` with code lengths of at most `max_bits` (< 16).
    pub(crate) fn generate(&mut self, freq: &[i32], max_bits: i32) {
        self.list.clear();
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 {
                self.list.push(LiteralNode {
                    literal: i as u16,
                    freq: f,
                });
            } else {
                self.codes[i].len = 0;
            }
        }
        if self.list.len() <= 2 {
            // One or two symbols: one bit each, in symbol order.
            for (i, node) in self.list.iter().enumerate() {
                self.codes[node.literal as usize] = HCode {
                    code: i as u16,
                    len: 1,
                };
            }
            return;
        }
        // Go sorts by (freq, literal); that order is total, so any sort gives Go's result.
        self.list.sort_unstable_by_key(|n| (n.freq, n.literal));
        let (bit_count, max_bits) = bit_counts(&self.list, max_bits);
        self.assign_encoding_and_size(&bit_count[..=max_bits]);
    }

    /// Gives the most frequent symbols the shortest codes; within one length, codes go up
    /// in symbol order (RFC 1951 3.2.2).
    fn assign_encoding_and_size(&mut self, bit_count: &[i32]) {
        let mut code: u16 = 0;
        let mut end = self.list.len();
        for (n, &bits) in bit_count.iter().enumerate() {
            code <<= 1;
            if n == 0 || bits == 0 {
                continue;
            }
            let start = end - bits as usize;
            let chunk = &mut self.list[start..end];
            chunk.sort_unstable_by_key(|node| node.literal);
            for node in chunk.iter() {
                self.codes[node.literal as usize] = HCode {
                    code: reverse_bits(code, n as u32),
                    len: n as u16,
                };
                code = code.wrapping_add(1);
            }
            end = start;
        }
    }
}

/// How many symbols get each code length (index = length), for `list` sorted by increasing
/// frequency with at least 3 entries. Returns the counts and the effective maximum length.
fn bit_counts(list: &[LiteralNode], max_bits: i32) -> ([i32; MAX_BITS_LIMIT + 1], usize) {
    debug_assert!(list.len() >= 3 && (max_bits as usize) < MAX_BITS_LIMIT);
    let n = list.len() as i32;
    // Leaf frequencies with Go's sentinel (MaxInt32) after the last leaf.
    let freq_at = |i: i32| -> i32 { list.get(i as usize).map_or(i32::MAX, |node| node.freq) };
    // The tree can't be deeper than n - 1.
    let max_bits = max_bits.min(n - 1);

    // levels[0] is a bogus level so that level 1's "pair from below" is never chosen.
    let mut levels = [LevelInfo::default(); MAX_BITS_LIMIT + 1];
    // leaf_counts[i][j]: literals left of the level-j ancestor of the rightmost node at level i.
    let mut leaf_counts = [[0i32; MAX_BITS_LIMIT + 1]; MAX_BITS_LIMIT + 1];
    for level in 1..=max_bits {
        levels[level as usize] = LevelInfo {
            level,
            last_freq: freq_at(1),
            next_char_freq: freq_at(2),
            next_pair_freq: if level == 1 {
                i32::MAX
            } else {
                freq_at(0).wrapping_add(freq_at(1))
            },
            needed: 0,
        };
        leaf_counts[level as usize][level as usize] = 2;
    }
    // 2n - 2 items are needed at the top level and 2 are already there.
    levels[max_bits as usize].needed = 2 * n - 4;

    let mut level = max_bits as usize;
    loop {
        let l = levels[level];
        if l.next_pair_freq == i32::MAX && l.next_char_freq == i32::MAX {
            // Out of leaves and pairs: finish this level for good.
            levels[level].needed = 0;
            levels[level + 1].next_pair_freq = i32::MAX;
            level += 1;
            continue;
        }
        let prev_freq = l.last_freq;
        if l.next_char_freq < l.next_pair_freq {
            // The next item on this level is a leaf.
            let next = leaf_counts[level][level] + 1;
            levels[level].last_freq = l.next_char_freq;
            leaf_counts[level][level] = next;
            levels[level].next_char_freq = freq_at(next);
        } else {
            // The next item is a pair from the level below, which must make two more.
            levels[level].last_freq = l.next_pair_freq;
            let (below, this) = leaf_counts.split_at_mut(level);
            this[0][..level].copy_from_slice(&below[level - 1][..level]);
            levels[l.level as usize - 1].needed = 2;
        }
        levels[level].needed -= 1;
        if levels[level].needed == 0 {
            // This level is complete; its last two nodes form the next pair one level up.
            if l.level == max_bits {
                break;
            }
            levels[l.level as usize + 1].next_pair_freq =
                prev_freq.wrapping_add(levels[level].last_freq);
            level += 1;
        } else {
            // If we took from below, go down to replenish it.
            while levels[level - 1].needed > 0 {
                level -= 1;
            }
        }
    }
    debug_assert_eq!(leaf_counts[max_bits as usize][max_bits as usize], n);

    let mut bit_count = [0i32; MAX_BITS_LIMIT + 1];
    let counts = &leaf_counts[max_bits as usize];
    for (bits, level) in (1..=max_bits as usize).rev().enumerate() {
        bit_count[bits + 1] = counts[level] - counts[level - 1];
    }
    (bit_count, max_bits as usize)
}

/// The low `len` bits of `code`, reversed (deflate sends Huffman codes MSB first).
pub(crate) const fn reverse_bits(code: u16, len: u32) -> u16 {
    (code << (16 - len)).reverse_bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(freq: &[i32], max_bits: i32) -> Vec<u16> {
        let mut h = HuffmanEncoder::new(freq.len());
        h.generate(freq, max_bits);
        h.codes.iter().map(|c| c.len).collect()
    }

    #[test]
    fn small_alphabets() {
        assert_eq!(lengths(&[0, 5, 0], 15), vec![0, 1, 0]);
        assert_eq!(lengths(&[3, 0, 9], 15), vec![1, 0, 1]);
        assert_eq!(lengths(&[1, 1, 2], 15), vec![2, 2, 1]);
        assert_eq!(lengths(&[1, 2, 4, 8], 15), vec![3, 3, 2, 1]);
    }

    #[test]
    fn length_limit_holds_and_code_is_complete() {
        // Fibonacci frequencies would want lengths up to 24; the limit is 7 here.
        let mut freq = vec![1i32, 1];
        while freq.len() < 19 {
            let k = freq.len();
            freq.push(freq[k - 1] + freq[k - 2]);
        }
        let lens = lengths(&freq, 7);
        assert!(lens.iter().all(|&l| (1..=7).contains(&l)), "{lens:?}");
        let kraft: f64 = lens.iter().map(|&l| 0.5f64.powi(i32::from(l))).sum();
        assert!((kraft - 1.0).abs() < 1e-12, "kraft sum {kraft}");
    }

    #[test]
    fn canonical_codes_in_symbol_order() {
        let mut h = HuffmanEncoder::new(4);
        h.generate(&[8, 4, 2, 2], 15);
        let codes: Vec<(u16, u16)> = h.codes.iter().map(|c| (c.code, c.len)).collect();
        // Lengths 1,2,3,3 -> codes 0, 10, 110, 111 (stored bit-reversed).
        assert_eq!(codes, vec![(0, 1), (0b01, 2), (0b011, 3), (0b111, 3)]);
    }
}
