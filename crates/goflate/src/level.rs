//! Compression levels, with Go's numbering.

use std::fmt;

/// A compression level as Go's `compress/flate` numbers them: -2 (Huffman only), -1
/// (default, = 6), 0 (stored), 1 (BestSpeed) to 9 (BestCompression).
///
/// `Level::DEFAULT` and `Level::new(6)` compress identically; they are kept apart only
/// because Go keeps them apart (neither sets the gzip XFL byte, so even that agrees).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Level(i8);

/// A level outside -2..=9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("goflate: invalid compression level {0}: want value in range [-2, 9]")]
pub struct InvalidLevel(pub i32);

impl Level {
    /// Huffman coding of literals only (Go's `HuffmanOnly`, -2).
    pub const HUFFMAN_ONLY: Level = Level(-2);
    /// Go's `DefaultCompression` (-1), which is level 6.
    pub const DEFAULT: Level = Level(-1);
    /// Stored blocks only (0).
    pub const NO_COMPRESSION: Level = Level(0);
    /// Go's `BestSpeed` (1).
    pub const BEST_SPEED: Level = Level(1);
    /// Go's `BestCompression` (9).
    pub const BEST_COMPRESSION: Level = Level(9);

    /// The level numbered `level` in Go's scheme.
    pub fn new(level: i32) -> Result<Level, InvalidLevel> {
        if (-2..=9).contains(&level) {
            Ok(Level(level as i8))
        } else {
            Err(InvalidLevel(level))
        }
    }

    /// Go's number for this level.
    pub fn get(self) -> i32 {
        i32::from(self.0)
    }

    /// The level that actually runs: `DEFAULT` becomes 6.
    pub(crate) fn effective(self) -> i32 {
        if self.0 == -1 {
            6
        } else {
            i32::from(self.0)
        }
    }

    /// The gzip header's XFL byte Go writes for this level.
    pub(crate) fn gzip_xfl(self) -> u8 {
        match self.0 {
            9 => 2,
            1 => 4,
            _ => 0,
        }
    }
}

impl Default for Level {
    fn default() -> Self {
        Level::DEFAULT
    }
}

impl TryFrom<i32> for Level {
    type Error = InvalidLevel;
    fn try_from(level: i32) -> Result<Level, InvalidLevel> {
        Level::new(level)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
