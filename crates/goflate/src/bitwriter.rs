//! Deflate block encoding (Go 1.23's `huffman_bit_writer.go`): picks stored, fixed or dynamic
//! Huffman coding per block with Go's size arithmetic and tie rules, and writes the bits.
//!
//! Output goes to an in-memory byte vector; callers drain it. Go's writer flushes every 240
//! bytes, which does not change the bytes, only when they are handed on.

use crate::huffman::{reverse_bits, HCode, HuffmanEncoder};
use crate::token::{
    offset_code, Token, LENGTH_BASE, LENGTH_CODES, LENGTH_EXTRA_BITS, OFFSET_BASE,
    OFFSET_EXTRA_BITS,
};
use std::sync::OnceLock;

/// Literal/length alphabet size (Go's `maxNumLit`).
pub(crate) const MAX_NUM_LIT: usize = 286;
const OFFSET_CODE_COUNT: usize = 30;
const END_BLOCK_MARKER: usize = 256;
const LENGTH_CODES_START: usize = 257;
const CODEGEN_CODE_COUNT: usize = 19;
/// End marker of the code-length sequence.
const BAD_CODE: u8 = 255;
/// Largest stored block.
pub(crate) const MAX_STORE_BLOCK_SIZE: usize = 65535;

/// The order in which code-length code lengths are sent (RFC 1951 3.2.7).
const CODEGEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

struct FixedCodes {
    literal: HuffmanEncoder,
    offset: HuffmanEncoder,
    /// Offset code used by Huffman-only blocks: one symbol, 1 bit.
    huff_offset: HuffmanEncoder,
}

fn fixed() -> &'static FixedCodes {
    static FIXED: OnceLock<FixedCodes> = OnceLock::new();
    FIXED.get_or_init(|| {
        let literal = (0..MAX_NUM_LIT as u16)
            .map(|ch| {
                let (bits, len) = match ch {
                    0..=143 => (ch + 48, 8),
                    144..=255 => (ch + 400 - 144, 9),
                    256..=279 => (ch - 256, 7),
                    _ => (ch + 192 - 280, 8),
                };
                HCode {
                    code: reverse_bits(bits, len),
                    len: len as u16,
                }
            })
            .collect();
        let offset = (0..OFFSET_CODE_COUNT as u16)
            .map(|ch| HCode {
                code: reverse_bits(ch, 5),
                len: 5,
            })
            .collect();
        let mut huff_offset = HuffmanEncoder::new(OFFSET_CODE_COUNT);
        let mut freq = [0i32; OFFSET_CODE_COUNT];
        freq[0] = 1;
        huff_offset.generate(&freq, 15);
        FixedCodes {
            literal: HuffmanEncoder::from_codes(literal),
            offset: HuffmanEncoder::from_codes(offset),
            huff_offset,
        }
    })
}

/// Which literal/offset codes a block is written with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Coding {
    Fixed,
    Dynamic,
}

/// A run of output made by a [`BitWriter`] in piece mode, joined later at its real bit
/// position (stored blocks must be byte-aligned, which depends on that position).
pub(crate) enum Piece {
    /// Bits written from bit 0 of the first byte: whole bytes, then `tail_bits` more bits.
    Bits {
        bytes: Vec<u8>,
        tail: u64,
        tail_bits: u32,
    },
    /// A stored block (not final) for the writer's `n`th `write_block` call (from 0); the
    /// joiner has the bytes.
    Stored(usize),
}

/// LSB-first bit output plus the scratch state of block encoding.
pub(crate) struct BitWriter {
    /// Finished bytes, to be drained by the owner.
    pub(crate) out: Vec<u8>,
    /// In piece mode, the finished pieces before `out`.
    pieces: Option<Vec<Piece>>,
    /// `write_block` calls so far (to name stored pieces).
    blocks: usize,
    bits: u64,
    nbits: u32,
    literal_freq: [i32; MAX_NUM_LIT],
    offset_freq: [i32; OFFSET_CODE_COUNT],
    codegen: Vec<u8>,
    codegen_freq: [i32; CODEGEN_CODE_COUNT],
    literal_encoding: HuffmanEncoder,
    offset_encoding: HuffmanEncoder,
    codegen_encoding: HuffmanEncoder,
}

impl Default for BitWriter {
    fn default() -> Self {
        BitWriter::new()
    }
}

impl BitWriter {
    pub(crate) fn new() -> BitWriter {
        BitWriter {
            out: Vec::new(),
            pieces: None,
            blocks: 0,
            bits: 0,
            nbits: 0,
            literal_freq: [0; MAX_NUM_LIT],
            offset_freq: [0; OFFSET_CODE_COUNT],
            codegen: vec![0; MAX_NUM_LIT + OFFSET_CODE_COUNT + 1],
            codegen_freq: [0; CODEGEN_CODE_COUNT],
            literal_encoding: HuffmanEncoder::new(MAX_NUM_LIT),
            offset_encoding: HuffmanEncoder::new(OFFSET_CODE_COUNT),
            codegen_encoding: HuffmanEncoder::new(CODEGEN_CODE_COUNT),
        }
    }

    /// A writer whose output is joined later: see [`Piece`].
    pub(crate) fn for_pieces() -> BitWriter {
        BitWriter {
            pieces: Some(Vec::new()),
            ..BitWriter::new()
        }
    }

    /// The pieces written (piece mode).
    pub(crate) fn into_pieces(mut self) -> Vec<Piece> {
        let mut pieces = self.pieces.take().unwrap_or_default();
        pieces.push(Piece::Bits {
            bytes: std::mem::take(&mut self.out),
            tail: self.bits,
            tail_bits: self.nbits,
        });
        pieces
    }

    /// Appends a piece made by a piece-mode writer; `stored(n)` gives the bytes of its
    /// `n`th block.
    pub(crate) fn append_piece<'a>(&mut self, piece: &Piece, stored: impl Fn(usize) -> &'a [u8]) {
        match piece {
            Piece::Bits {
                bytes,
                tail,
                tail_bits,
            } => self.append_bits(bytes, *tail, *tail_bits),
            Piece::Stored(n) => self.write_stored_block(stored(*n), false),
        }
    }

    /// Appends `nb` (<= 32) low bits of `b`; `b` must not have higher bits set.
    #[inline(always)]
    pub(crate) fn write_bits(&mut self, b: u32, nb: u32) {
        debug_assert!(nb <= 32 && (nb == 32 || b >> nb == 0));
        self.bits |= u64::from(b) << self.nbits;
        self.nbits += nb;
        if self.nbits >= 32 {
            self.out
                .extend_from_slice(&(self.bits as u32).to_le_bytes());
            self.bits >>= 32;
            self.nbits -= 32;
        }
    }

    #[inline(always)]
    fn write_code(&mut self, c: HCode) {
        self.write_bits(u32::from(c.code), u32::from(c.len));
    }

    /// Pads to a byte boundary with zero bits and moves everything into `out` (Go's `flush`).
    pub(crate) fn align(&mut self) {
        while self.nbits > 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits = self.nbits.saturating_sub(8);
        }
        self.bits = 0;
    }

    /// Appends a bit string made by another writer that started byte-aligned at bit 0.
    fn append_bits(&mut self, bytes: &[u8], tail: u64, tail_bits: u32) {
        if self.nbits == 0 {
            self.out.extend_from_slice(bytes);
        } else {
            let mut words = bytes.chunks_exact(4);
            for w in &mut words {
                self.write_bits(u32::from_le_bytes([w[0], w[1], w[2], w[3]]), 32);
            }
            for &b in words.remainder() {
                self.write_bits(u32::from(b), 8);
            }
        }
        let mut tail = tail;
        let mut n = tail_bits;
        while n > 0 {
            let take = n.min(16);
            self.write_bits((tail & ((1 << take) - 1)) as u32, take);
            tail >>= take;
            n -= take;
        }
    }

    /// The 3 header bits of a stored block, padding, and LEN/NLEN.
    pub(crate) fn write_stored_header(&mut self, length: usize, eof: bool) {
        self.write_bits(u32::from(eof), 3);
        self.align();
        self.write_bits(length as u32, 16);
        self.write_bits(u32::from(!(length as u16)), 16);
    }

    /// Raw bytes after a stored header (the writer is byte-aligned there).
    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) {
        debug_assert_eq!(self.nbits % 8, 0);
        self.align();
        self.out.extend_from_slice(bytes);
    }

    /// A stored block of `input`.
    pub(crate) fn write_stored_block(&mut self, input: &[u8], eof: bool) {
        if let Some(pieces) = self.pieces.as_mut() {
            debug_assert!(!eof);
            pieces.push(Piece::Bits {
                bytes: std::mem::take(&mut self.out),
                tail: self.bits,
                tail_bits: self.nbits,
            });
            pieces.push(Piece::Stored(self.blocks - 1));
            self.bits = 0;
            self.nbits = 0;
            return;
        }
        self.write_stored_header(input.len(), eof);
        self.write_bytes(input);
    }

    /// Go's `storedSize`: the bits of a stored block for `input`, if one can hold it.
    fn stored_size(input: Option<&[u8]>) -> Option<i64> {
        match input {
            Some(b) if b.len() <= MAX_STORE_BLOCK_SIZE => Some((b.len() as i64 + 5) * 8),
            _ => None,
        }
    }

    /// Go's `writeBlock`: the smallest of fixed, dynamic and (when `input`, the block's
    /// bytes, is known) stored coding; fixed wins ties with dynamic, stored must be strictly
    /// smaller.
    pub(crate) fn write_block(&mut self, tokens: &[Token], eof: bool, input: Option<&[u8]>) {
        self.blocks += 1;
        let (num_literals, num_offsets) = self.index_tokens(tokens);
        let stored_size = Self::stored_size(input);
        let mut extra_bits: i64 = 0;
        if stored_size.is_some() {
            // Extra bits cost the same for fixed and dynamic; they matter against stored.
            let lengths = &self.literal_freq
                [LENGTH_CODES_START + 8..num_literals.max(LENGTH_CODES_START + 8)];
            for (&f, &extra) in lengths.iter().zip(&LENGTH_EXTRA_BITS[8..]) {
                extra_bits += i64::from(f) * i64::from(extra);
            }
            let offsets = &self.offset_freq[4.min(num_offsets)..num_offsets];
            for (&f, &extra) in offsets.iter().zip(&OFFSET_EXTRA_BITS[4..]) {
                extra_bits += i64::from(f) * i64::from(extra);
            }
        }
        let fixed = fixed();
        let mut coding = Coding::Fixed;
        let mut size = 3
            + fixed.literal.bit_length(&self.literal_freq)
            + fixed.offset.bit_length(&self.offset_freq)
            + extra_bits;

        self.generate_codegen(num_literals, num_offsets, false);
        self.codegen_encoding.generate(&self.codegen_freq, 7);
        let (dynamic_size, num_codegens) = self.dynamic_size(false, extra_bits);
        if dynamic_size < size {
            size = dynamic_size;
            coding = Coding::Dynamic;
        }
        if let (Some(stored), Some(input)) = (stored_size, input) {
            if stored < size {
                self.write_stored_block(input, eof);
                return;
            }
        }
        match coding {
            Coding::Fixed => {
                self.write_bits(if eof { 3 } else { 2 }, 3);
                self.write_tokens(tokens, &fixed.literal.codes, &fixed.offset.codes);
            }
            Coding::Dynamic => {
                self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
                let lit = std::mem::take(&mut self.literal_encoding.codes);
                let off = std::mem::take(&mut self.offset_encoding.codes);
                self.write_tokens(tokens, &lit, &off);
                self.literal_encoding.codes = lit;
                self.offset_encoding.codes = off;
            }
        }
    }

    /// Go's `writeBlockDynamic` (BestSpeed): dynamic coding, or stored when that saves less
    /// than 1/16.
    pub(crate) fn write_block_dynamic(&mut self, tokens: &[Token], eof: bool, input: &[u8]) {
        let (num_literals, num_offsets) = self.index_tokens(tokens);
        self.generate_codegen(num_literals, num_offsets, false);
        self.codegen_encoding.generate(&self.codegen_freq, 7);
        let (size, num_codegens) = self.dynamic_size(false, 0);
        if let Some(stored) = Self::stored_size(Some(input)) {
            if stored < size + (size >> 4) {
                self.write_stored_block(input, eof);
                return;
            }
        }
        self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
        let lit = std::mem::take(&mut self.literal_encoding.codes);
        let off = std::mem::take(&mut self.offset_encoding.codes);
        self.write_tokens(tokens, &lit, &off);
        self.literal_encoding.codes = lit;
        self.offset_encoding.codes = off;
    }

    /// Go's `writeBlockHuff`: literals only, dynamic coding or stored.
    pub(crate) fn write_block_huff(&mut self, eof: bool, input: &[u8]) {
        self.literal_freq = [0; MAX_NUM_LIT];
        for &b in input {
            self.literal_freq[b as usize] += 1;
        }
        self.literal_freq[END_BLOCK_MARKER] = 1;
        const NUM_LITERALS: usize = END_BLOCK_MARKER + 1;
        // Go only sets offsetFreq[0]; the rest is stale but costs nothing with this code.
        self.offset_freq[0] = 1;
        self.literal_encoding.generate(&self.literal_freq, 15);
        self.generate_codegen(NUM_LITERALS, 1, true);
        self.codegen_encoding.generate(&self.codegen_freq, 7);
        let (size, num_codegens) = self.dynamic_size(true, 0);
        if let Some(stored) = Self::stored_size(Some(input)) {
            if stored < size + (size >> 4) {
                self.write_stored_block(input, eof);
                return;
            }
        }
        self.write_dynamic_header(NUM_LITERALS, 1, num_codegens, eof);
        let codes = &self.literal_encoding.codes;
        let mut bits = self.bits;
        let mut nbits = self.nbits;
        self.out.reserve(input.len() + 8);
        for &b in input {
            let c = codes[b as usize];
            bits |= u64::from(c.code) << nbits;
            nbits += u32::from(c.len);
            if nbits >= 32 {
                self.out.extend_from_slice(&(bits as u32).to_le_bytes());
                bits >>= 32;
                nbits -= 32;
            }
        }
        self.bits = bits;
        self.nbits = nbits;
        let eob = self.literal_encoding.codes[END_BLOCK_MARKER];
        self.write_code(eob);
    }

    /// Counts symbol frequencies (with one end-of-block) and builds the block's codes.
    fn index_tokens(&mut self, tokens: &[Token]) -> (usize, usize) {
        self.literal_freq = [0; MAX_NUM_LIT];
        self.offset_freq = [0; OFFSET_CODE_COUNT];
        for &t in tokens {
            if t.is_match() {
                self.literal_freq[LENGTH_CODES_START + LENGTH_CODES[t.xlength()] as usize] += 1;
                self.offset_freq[offset_code(t.xoffset())] += 1;
            } else {
                self.literal_freq[t.lit()] += 1;
            }
        }
        self.literal_freq[END_BLOCK_MARKER] += 1;
        let mut num_literals = MAX_NUM_LIT;
        while self.literal_freq[num_literals - 1] == 0 {
            num_literals -= 1;
        }
        let mut num_offsets = OFFSET_CODE_COUNT;
        while num_offsets > 0 && self.offset_freq[num_offsets - 1] == 0 {
            num_offsets -= 1;
        }
        if num_offsets == 0 {
            // No matches: one offset code keeps the dynamic header encodable.
            self.offset_freq[0] = 1;
            num_offsets = 1;
        }
        self.literal_encoding.generate(&self.literal_freq, 15);
        self.offset_encoding.generate(&self.offset_freq, 15);
        (num_literals, num_offsets)
    }

    /// The run-length coded code lengths (RFC 1951 3.2.7) into `codegen`, with their
    /// frequencies in `codegen_freq`. `huff_offset` selects the Huffman-only offset code.
    fn generate_codegen(&mut self, num_literals: usize, num_offsets: usize, huff_offset: bool) {
        self.codegen_freq = [0; CODEGEN_CODE_COUNT];
        let off_codes = if huff_offset {
            &fixed().huff_offset.codes
        } else {
            &self.offset_encoding.codes
        };
        let codegen = &mut self.codegen;
        for (dst, c) in codegen
            .iter_mut()
            .zip(&self.literal_encoding.codes[..num_literals])
        {
            *dst = c.len as u8;
        }
        for (dst, c) in codegen[num_literals..]
            .iter_mut()
            .zip(&off_codes[..num_offsets])
        {
            *dst = c.len as u8;
        }
        codegen[num_literals + num_offsets] = BAD_CODE;

        // The output never overtakes the input, so it is written over it in place.
        let freq = &mut self.codegen_freq;
        let mut size = codegen[0];
        let mut count: i32 = 1;
        let mut out = 0;
        let mut in_index = 1;
        while size != BAD_CODE {
            let next_size = codegen[in_index];
            in_index += 1;
            if next_size == size {
                count += 1;
                continue;
            }
            if size != 0 {
                codegen[out] = size;
                out += 1;
                freq[size as usize] += 1;
                count -= 1;
                while count >= 3 {
                    let n = count.min(6);
                    codegen[out] = 16;
                    codegen[out + 1] = (n - 3) as u8;
                    out += 2;
                    freq[16] += 1;
                    count -= n;
                }
            } else {
                while count >= 11 {
                    let n = count.min(138);
                    codegen[out] = 18;
                    codegen[out + 1] = (n - 11) as u8;
                    out += 2;
                    freq[18] += 1;
                    count -= n;
                }
                if count >= 3 {
                    codegen[out] = 17;
                    codegen[out + 1] = (count - 3) as u8;
                    out += 2;
                    freq[17] += 1;
                    count = 0;
                }
            }
            while count > 0 {
                codegen[out] = size;
                out += 1;
                freq[size as usize] += 1;
                count -= 1;
            }
            size = next_size;
            count = 1;
        }
        codegen[out] = BAD_CODE;
    }

    /// Bits of a dynamic block (header included) and the number of code-length codes sent.
    fn dynamic_size(&self, huff_offset: bool, extra_bits: i64) -> (i64, usize) {
        let mut num_codegens = self.codegen_freq.len();
        while num_codegens > 4 && self.codegen_freq[CODEGEN_ORDER[num_codegens - 1]] == 0 {
            num_codegens -= 1;
        }
        let header = 3
            + 5
            + 5
            + 4
            + 3 * num_codegens as i64
            + self.codegen_encoding.bit_length(&self.codegen_freq)
            + i64::from(self.codegen_freq[16]) * 2
            + i64::from(self.codegen_freq[17]) * 3
            + i64::from(self.codegen_freq[18]) * 7;
        let offsets = if huff_offset {
            fixed().huff_offset.bit_length(&self.offset_freq)
        } else {
            self.offset_encoding.bit_length(&self.offset_freq)
        };
        let size =
            header + self.literal_encoding.bit_length(&self.literal_freq) + offsets + extra_bits;
        (size, num_codegens)
    }

    fn write_dynamic_header(
        &mut self,
        num_literals: usize,
        num_offsets: usize,
        num_codegens: usize,
        eof: bool,
    ) {
        self.write_bits(if eof { 5 } else { 4 }, 3);
        self.write_bits((num_literals - 257) as u32, 5);
        self.write_bits((num_offsets - 1) as u32, 5);
        self.write_bits((num_codegens - 4) as u32, 4);
        for &sym in &CODEGEN_ORDER[..num_codegens] {
            let len = self.codegen_encoding.codes[sym].len;
            self.write_bits(u32::from(len), 3);
        }
        let mut i = 0;
        loop {
            let code_word = self.codegen[i];
            i += 1;
            if code_word == BAD_CODE {
                break;
            }
            let c = self.codegen_encoding.codes[code_word as usize];
            self.write_code(c);
            let extra = match code_word {
                16 => 2,
                17 => 3,
                18 => 7,
                _ => continue,
            };
            let v = self.codegen[i];
            i += 1;
            self.write_bits(u32::from(v), extra);
        }
    }

    /// The tokens and the end-of-block symbol with the given codes.
    fn write_tokens(&mut self, tokens: &[Token], lit: &[HCode], off: &[HCode]) {
        // A length symbol and its extra bits fit one write (<= 20 bits), and so do a
        // distance symbol and its extra bits (<= 28 bits).
        let mut len_codes = [(0u32, 0u32); 256];
        for (xlen, slot) in len_codes.iter_mut().enumerate() {
            let code = LENGTH_CODES[xlen] as usize;
            let c = lit[LENGTH_CODES_START + code];
            let extra = u32::from(LENGTH_EXTRA_BITS[code]);
            let value = (xlen as u32 - LENGTH_BASE[code]) << c.len | u32::from(c.code);
            *slot = (value, u32::from(c.len) + extra);
        }
        // Branch-free packing (the usual "is a word full" test mispredicts every few
        // tokens): whole bytes are flushed first, so fewer than 8 bits are pending; a token
        // adds at most 20 + 28 bits; then 8 bytes are stored and the whole ones kept.
        while self.nbits >= 8 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits -= 8;
        }
        const MAX_TOKEN_BYTES: usize = 6;
        let mut pos = self.out.len();
        self.out.resize(pos + tokens.len() * MAX_TOKEN_BYTES + 8, 0);
        let buf = &mut self.out[..];
        let mut bits = self.bits;
        let mut nbits = self.nbits;
        for &t in tokens {
            if t.is_match() {
                let (v, n) = len_codes[t.xlength()];
                bits |= u64::from(v) << nbits;
                nbits += n;
                let xoff = t.xoffset();
                let code = offset_code(xoff);
                let c = off[code];
                let extra = u32::from(OFFSET_EXTRA_BITS[code]);
                let v = (xoff as u32 - OFFSET_BASE[code]) << c.len | u32::from(c.code);
                bits |= u64::from(v) << nbits;
                nbits += u32::from(c.len) + extra;
            } else {
                let c = lit[t.lit()];
                bits |= u64::from(c.code) << nbits;
                nbits += u32::from(c.len);
            }
            if let Some(word) = buf.get_mut(pos..pos + 8) {
                word.copy_from_slice(&bits.to_le_bytes());
            }
            pos += (nbits / 8) as usize;
            bits >>= nbits & !7;
            nbits &= 7;
        }
        self.out.truncate(pos);
        self.bits = bits;
        self.nbits = nbits;
        self.write_code(lit[END_BLOCK_MARKER]);
    }
}
