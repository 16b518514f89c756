//! LZ77 tokens and the RFC 1951 length/offset code tables.
//!
//! A token packs a literal or a `(length, offset)` pair into a `u32` the way Go's
//! `compress/flate` does (2 type bits, 8 bits of `length - 3`, 22 bits of `offset - 1`);
//! keeping Go's packing keeps token vectors compact (4 bytes each).

/// Shift of the `length - 3` field inside a match token.
const LENGTH_SHIFT: u32 = 22;
const OFFSET_MASK: u32 = (1 << LENGTH_SHIFT) - 1;
const MATCH_TYPE: u32 = 1 << 30;

/// The smallest match length RFC 1951 can express.
pub(crate) const BASE_MATCH_LENGTH: usize = 3;
/// The smallest match length Go's encoder emits.
pub(crate) const MIN_MATCH_LENGTH: usize = 4;
/// The largest match length.
pub(crate) const MAX_MATCH_LENGTH: usize = 258;
/// The largest match distance.
pub(crate) const MAX_MATCH_OFFSET: usize = 1 << 15;

/// A literal byte or a back-reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token(u32);

impl Token {
    /// A literal byte (or, with 256, the end-of-block symbol).
    #[inline(always)]
    pub(crate) fn literal(b: u8) -> Token {
        Token(u32::from(b))
    }

    /// A back-reference of `length` bytes (4..=258) at distance `offset` (1..=32768).
    #[inline(always)]
    pub(crate) fn back_ref(length: usize, offset: usize) -> Token {
        debug_assert!((BASE_MATCH_LENGTH..=MAX_MATCH_LENGTH).contains(&length));
        debug_assert!((1..=MAX_MATCH_OFFSET).contains(&offset));
        Token(
            MATCH_TYPE
                | ((length - BASE_MATCH_LENGTH) as u32) << LENGTH_SHIFT
                | (offset - 1) as u32,
        )
    }

    #[inline(always)]
    pub(crate) fn is_match(self) -> bool {
        self.0 >= MATCH_TYPE
    }

    /// The literal value of a literal token.
    #[inline(always)]
    pub(crate) fn lit(self) -> usize {
        self.0 as usize
    }

    /// `length - 3` of a match token (0..=255).
    #[inline(always)]
    pub(crate) fn xlength(self) -> usize {
        ((self.0 - MATCH_TYPE) >> LENGTH_SHIFT) as usize
    }

    /// `offset - 1` of a match token.
    #[inline(always)]
    pub(crate) fn xoffset(self) -> usize {
        (self.0 & OFFSET_MASK) as usize
    }

    /// How many input bytes the token stands for.
    #[inline(always)]
    pub(crate) fn input_len(self) -> usize {
        // Branch-free so that sums over token runs vectorize.
        let is_match = (self.0 >> 30) as usize & 1;
        1 + is_match * (((self.0 >> LENGTH_SHIFT) & 0xff) as usize + BASE_MATCH_LENGTH - 1)
    }
}

/// Extra bits of length codes 257..=285 (RFC 1951 3.2.5).
pub(crate) const LENGTH_EXTRA_BITS: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];

/// `length - 3` at the start of each length code.
pub(crate) const LENGTH_BASE: [u32; 29] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128,
    160, 192, 224, 255,
];

/// Extra bits of distance codes 0..=29.
pub(crate) const OFFSET_EXTRA_BITS: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// `offset - 1` at the start of each distance code.
pub(crate) const OFFSET_BASE: [u32; 30] = [
    0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0006, 0x0008, 0x000c, 0x0010, 0x0018, 0x0020, 0x0030,
    0x0040, 0x0060, 0x0080, 0x00c0, 0x0100, 0x0180, 0x0200, 0x0300, 0x0400, 0x0600, 0x0800, 0x0c00,
    0x1000, 0x1800, 0x2000, 0x3000, 0x4000, 0x6000,
];

/// Length code (0..=28, to add to 257) of each `length - 3`.
pub(crate) const LENGTH_CODES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut code = 0;
    while code < 29 {
        let mut x = LENGTH_BASE[code] as usize;
        let end = x + (1 << LENGTH_EXTRA_BITS[code]);
        while x < end && x < 256 {
            t[x] = code as u8;
            x += 1;
        }
        code += 1;
    }
    t
};

/// Distance code of each `offset - 1` below 256 (larger ones are looked up shifted).
const OFFSET_CODES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut code = 0;
    while code < 16 {
        let mut x = OFFSET_BASE[code] as usize;
        let end = x + (1 << OFFSET_EXTRA_BITS[code]);
        while x < end {
            t[x] = code as u8;
            x += 1;
        }
        code += 1;
    }
    t
};

/// Distance code (0..=29) of `offset - 1`.
#[inline(always)]
pub(crate) fn offset_code(xoffset: usize) -> usize {
    if xoffset < 256 {
        OFFSET_CODES[xoffset] as usize
    } else if xoffset >> 7 < 256 {
        OFFSET_CODES[xoffset >> 7] as usize + 14
    } else {
        OFFSET_CODES[xoffset >> 14] as usize + 28
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_rfc1951() {
        assert_eq!(LENGTH_CODES[0], 0);
        assert_eq!(LENGTH_CODES[8], 8);
        assert_eq!(LENGTH_CODES[9], 8);
        assert_eq!(LENGTH_CODES[254], 27);
        assert_eq!(LENGTH_CODES[255], 28);
        assert_eq!(offset_code(0), 0);
        assert_eq!(offset_code(4), 4);
        assert_eq!(offset_code(255), 15);
        assert_eq!(offset_code(256), 16);
        assert_eq!(offset_code(0x6000), 29);
        assert_eq!(offset_code(0x7fff), 29);
        // Every offset lies inside its code's range.
        for x in 0..(1 << 15) {
            let c = offset_code(x);
            let base = OFFSET_BASE[c] as usize;
            assert!(
                x >= base && x < base + (1 << OFFSET_EXTRA_BITS[c]),
                "offset {x}"
            );
        }
        let t = Token::back_ref(258, 32768);
        assert!(t.is_match());
        assert_eq!((t.xlength(), t.xoffset(), t.input_len()), (255, 32767, 258));
        assert!(!Token::literal(255).is_match());
    }
}
