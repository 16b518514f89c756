//! An entry's canonical header, held compactly.
//!
//! A layer is read whole before it is written sorted, so every entry's header stays in
//! memory until then: a layer of a million files keeps a million. A full tar [`Header`]
//! takes 248 bytes; the canonical form needs only the fields below (names are set when
//! writing, and most entries have no device numbers or extended attributes), in 64.

use std::collections::BTreeMap;

use kiln_layer::tar::{typeflag, Format, Header, Timestamp};

/// The canonical header of an entry, without its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Canon {
    pub(crate) typeflag: u8,
    /// Permission bits only (no file-type bits).
    mode: u16,
    uid: i64,
    gid: i64,
    /// Bytes of data: zero unless a regular file that carries its own.
    pub(crate) size: i64,
    /// Whole seconds, clamped to SOURCE_DATE_EPOCH.
    mtime: i64,
    /// A symlink's target; empty for every other type.
    linkname: Box<[u8]>,
    /// Device numbers and extended attributes, which few entries have.
    rare: Option<Box<Rare>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Rare {
    devmajor: i64,
    devminor: i64,
    /// `SCHILY.xattr.*` PAX records.
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Canon {
    /// The canonical form of `h`, an entry of type `flag` (`h`'s type with the regular-file
    /// variants folded into [`typeflag::REG`]):
    /// mtime truncated to whole seconds and clamped to `epoch`, no atime/ctime, uid/gid
    /// kept, user and group names dropped, mode without file-type bits, PAX records reduced
    /// to extended attributes. Whiteouts get mode 0, owner 0:0 and mtime 0, as BuildKit
    /// writes them.
    pub(crate) fn new(h: &Header, flag: u8, epoch: i64, whiteout: bool) -> Canon {
        if whiteout {
            return Canon {
                typeflag: typeflag::REG,
                mode: 0,
                uid: 0,
                gid: 0,
                size: 0,
                mtime: 0,
                linkname: Box::default(),
                rare: None,
            };
        }
        let mtime = h
            .mtime
            .map(|t| t.truncated().clamped(Timestamp::from_secs(epoch)))
            .unwrap_or(Timestamp::EPOCH);
        let device = flag == typeflag::CHAR || flag == typeflag::BLOCK;
        let rare = Rare {
            devmajor: if device { h.devmajor } else { 0 },
            devminor: if device { h.devminor } else { 0 },
            xattrs: h
                .pax_records
                .iter()
                .filter(|(k, _)| k.starts_with(b"SCHILY.xattr."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        Canon {
            typeflag: flag,
            mode: (h.mode & 0o7777) as u16,
            uid: h.uid,
            gid: h.gid,
            size: if flag == typeflag::REG { h.size } else { 0 },
            mtime: mtime.secs,
            linkname: if flag == typeflag::SYMLINK {
                h.linkname.clone().into_boxed_slice()
            } else {
                Box::default()
            },
            rare: (rare != Rare::default()).then(|| Box::new(rare)),
        }
    }

    /// The header to write, named `name`.
    pub(crate) fn header(&self, name: Vec<u8>) -> Header {
        let rare = self.rare.as_deref();
        Header {
            typeflag: self.typeflag,
            name,
            linkname: self.linkname.to_vec(),
            size: self.size,
            mode: i64::from(self.mode),
            uid: self.uid,
            gid: self.gid,
            uname: Vec::new(),
            gname: Vec::new(),
            mtime: Some(Timestamp::from_secs(self.mtime)),
            atime: None,
            ctime: None,
            devmajor: rare.map_or(0, |r| r.devmajor),
            devminor: rare.map_or(0, |r| r.devminor),
            pax_records: rare.map(|r| r.xattrs.clone()).unwrap_or_default(),
            // Let Go's rules pick USTAR where it can hold the header, PAX otherwise.
            format: Format::UNKNOWN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        let mut pax = BTreeMap::new();
        pax.insert(b"SCHILY.xattr.user.k".to_vec(), b"v".to_vec());
        pax.insert(b"comment".to_vec(), b"dropped".to_vec());
        Header {
            typeflag: typeflag::SYMLINK,
            name: b"./a/b".to_vec(),
            linkname: b"../c".to_vec(),
            size: 0,
            mode: 0o120777,
            uid: 1 << 40,
            gid: 7,
            uname: b"user".to_vec(),
            gname: b"group".to_vec(),
            mtime: Some(Timestamp {
                secs: 2_000_000_000,
                nanos: 5,
            }),
            atime: Some(Timestamp::from_secs(3)),
            ctime: Some(Timestamp::from_secs(4)),
            devmajor: 0,
            devminor: 0,
            pax_records: pax,
            format: Format::UNKNOWN,
        }
    }

    #[test]
    fn keeps_what_the_canonical_header_has_and_nothing_else() {
        let c = Canon::new(&header(), typeflag::SYMLINK, 1_700_000_000, false);
        let h = c.header(b"a/b".to_vec());
        let mut want = header();
        want.name = b"a/b".to_vec();
        want.mode = 0o777;
        want.uname.clear();
        want.gname.clear();
        want.mtime = Some(Timestamp::from_secs(1_700_000_000));
        want.atime = None;
        want.ctime = None;
        want.pax_records.remove(b"comment".as_slice());
        assert_eq!(h, want);
        // Older mtimes are kept (truncated to seconds).
        let mut old = header();
        old.mtime = Some(Timestamp { secs: 9, nanos: 1 });
        let c = Canon::new(&old, typeflag::SYMLINK, 1_700_000_000, false);
        assert_eq!(c.header(Vec::new()).mtime, Some(Timestamp::from_secs(9)));
    }

    #[test]
    fn devices_keep_their_numbers_and_other_types_drop_theirs() {
        let mut dev = header();
        dev.typeflag = typeflag::CHAR;
        dev.devmajor = 1;
        dev.devminor = 3;
        dev.pax_records.clear();
        let h = Canon::new(&dev, typeflag::CHAR, 0, false).header(Vec::new());
        assert_eq!((h.devmajor, h.devminor, h.linkname.len()), (1, 3, 0));
        dev.typeflag = typeflag::FIFO;
        let c = Canon::new(&dev, typeflag::FIFO, 0, false);
        assert_eq!(c.rare, None);
        assert_eq!((c.header(Vec::new()).devmajor, c.size), (0, 0));
    }

    #[test]
    fn whiteouts_are_written_as_buildkit_writes_them() {
        let h =
            Canon::new(&header(), typeflag::REG, 1_700_000_000, true).header(b"a/.wh.b".to_vec());
        assert_eq!(
            h,
            Header {
                typeflag: typeflag::REG,
                name: b"a/.wh.b".to_vec(),
                mtime: Some(Timestamp::EPOCH),
                ..Header::default()
            }
        );
    }

    #[test]
    fn is_small() {
        assert!(std::mem::size_of::<Canon>() <= 64);
    }
}
