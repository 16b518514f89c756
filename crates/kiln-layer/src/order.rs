//! The order of entries in a layer.
//!
//! BuildKit's differ walks directories depth-first with each directory's names sorted by
//! bytes, so a directory's contents come right after it: `a`, `a/b`, `a-b`, `a.txt`. That is
//! a comparison of full paths in which `/` sorts below every other byte.

use std::cmp::Ordering;

/// Compares two relative paths (no trailing slash) in layer order.
pub fn cmp_paths(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return match (*x, *y) {
                (b'/', _) => Ordering::Less,
                (_, b'/') => Ordering::Greater,
                _ => x.cmp(y),
            };
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_contents_follow_the_directory() {
        let mut v: Vec<&[u8]> = vec![
            b"a.txt",
            b"emptydir-new",
            b"a-b",
            b"emptydir/x",
            b"a/b",
            b"a",
            b"emptydir",
            "\u{fc}n".as_bytes(),
            b"z",
        ];
        v.sort_by(|a, b| cmp_paths(a, b));
        let expect: Vec<&[u8]> = vec![
            b"a",
            b"a/b",
            b"a-b",
            b"a.txt",
            b"emptydir",
            b"emptydir/x",
            b"emptydir-new",
            b"z",
            "\u{fc}n".as_bytes(),
        ];
        assert_eq!(v, expect);
    }
}
