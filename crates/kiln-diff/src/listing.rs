//! What a layer holds: every entry with the attributes a comparison looks at, and the
//! sha256 of each regular file's content. Reading verifies the blob against its digest.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};

use kiln_digest::{Digest, Hasher};
use kiln_layer::tar::{typeflag, TarReader, Timestamp};
use kiln_normalize::names;
use kiln_normalize::source::{read_layer, Expected, ReadDigests};
use kiln_normalize::{Error, Result};
use serde::Serialize;

/// Entry types as a comparison names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
    /// `.wh.<name>`: deletes `<name>` from lower layers.
    Whiteout,
    /// `.wh..wh..opq`: empties its directory of lower layers' entries.
    Opaque,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::Hardlink => "hardlink",
            Kind::Char => "char",
            Kind::Block => "block",
            Kind::Fifo => "fifo",
            Kind::Whiteout => "whiteout",
            Kind::Opaque => "opaque",
        }
    }
}

/// One entry of a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Canonical name (relative, no trailing slash).
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Permission bits with setuid/setgid/sticky.
    pub mode: i64,
    pub uid: i64,
    pub gid: i64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub mtime: Option<Timestamp>,
    pub size: u64,
    /// sha256 of a regular file's content.
    pub digest: Option<Digest>,
    /// Symlink target as written, or hard link target (canonical name).
    pub link: Vec<u8>,
    /// Extended attributes (`SCHILY.xattr.` records), by name.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub device: (i64, i64),
}

/// The entries of a layer in archive order, and the layer's digests.
#[derive(Clone, Debug)]
pub struct Listing {
    pub entries: Vec<Entry>,
    pub digests: ReadDigests,
}

const OPAQUE: &[u8] = b".wh..wh..opq";

/// Reads a layer blob into a listing.
pub fn scan<R: Read + Send>(blob: R, expected: &Expected) -> Result<Listing> {
    let (entries, digests) = read_layer(blob, expected, |tar| {
        let mut tr = TarReader::new(BufReader::with_capacity(1 << 16, tar));
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while let Some(h) = tr.next_header().map_err(|e| Error::input(e.to_string()))? {
            if h.typeflag == typeflag::X_GLOBAL_HEADER {
                continue;
            }
            let shown = String::from_utf8_lossy(&h.name).into_owned();
            let bad = |m: String| Error::input(format!("entry {shown:?}: {m}"));
            let Some(path) = names::clean(&h.name).map_err(|p| bad(p.to_string()))? else {
                continue;
            };
            let base = names::base_name(&path);
            let kind = match h.typeflag {
                _ if base == OPAQUE => Kind::Opaque,
                _ if names::is_whiteout(&path) => Kind::Whiteout,
                typeflag::REG | typeflag::REG_A | typeflag::CONT => Kind::File,
                typeflag::DIR => Kind::Dir,
                typeflag::SYMLINK => Kind::Symlink,
                typeflag::LINK => Kind::Hardlink,
                typeflag::CHAR => Kind::Char,
                typeflag::BLOCK => Kind::Block,
                typeflag::FIFO => Kind::Fifo,
                other => {
                    return Err(bad(format!(
                        "has the unsupported entry type {:?}",
                        char::from(other)
                    )))
                }
            };
            let mut digest = None;
            let mut size = 0;
            if kind == Kind::File {
                let mut hasher = Hasher::new();
                loop {
                    let n = tr
                        .read(&mut buf)
                        .map_err(|e| bad(format!("cannot read its data: {e}")))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
                let (d, n) = hasher.finish();
                digest = Some(d);
                size = n;
            }
            let link = match kind {
                Kind::Hardlink => names::clean(&h.linkname)
                    .map_err(|p| bad(format!("hard link target {p}")))?
                    .unwrap_or_default(),
                Kind::Symlink => h.linkname.clone(),
                _ => Vec::new(),
            };
            let xattrs = h
                .pax_records
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(b"SCHILY.xattr.")
                        .map(|n| (String::from_utf8_lossy(n).into_owned(), v.clone()))
                })
                .collect();
            let device = if matches!(kind, Kind::Char | Kind::Block) {
                (h.devmajor, h.devminor)
            } else {
                (0, 0)
            };
            out.push(Entry {
                path,
                kind,
                mode: h.mode & 0o7777,
                uid: h.uid,
                gid: h.gid,
                uname: h.uname.clone(),
                gname: h.gname.clone(),
                mtime: h.mtime,
                size,
                digest,
                link,
                xattrs,
                device,
            });
        }
        Ok(out)
    })?;
    Ok(Listing { entries, digests })
}
