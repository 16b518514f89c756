//! What a blob holds, from its first bytes (media types lie more often than magic numbers).

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobCompression {
    Gzip,
    Zstd,
    None,
}

impl BlobCompression {
    /// Bytes [`BlobCompression::sniff`] needs at most.
    pub const MAGIC_LEN: usize = 4;

    pub fn sniff(head: &[u8]) -> BlobCompression {
        if head.starts_with(&[0x1f, 0x8b]) {
            BlobCompression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            BlobCompression::Zstd
        } else {
            BlobCompression::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(
            BlobCompression::sniff(&[0x1f, 0x8b, 8]),
            BlobCompression::Gzip
        );
        assert_eq!(
            BlobCompression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            BlobCompression::Zstd
        );
        assert_eq!(BlobCompression::sniff(b"etc/"), BlobCompression::None);
        assert_eq!(BlobCompression::sniff(&[]), BlobCompression::None);
    }
}
