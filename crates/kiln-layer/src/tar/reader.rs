//! A streaming tar reader with Go's `archive/tar` semantics (format detection, PAX and GNU
//! long-name merging), hardened for hostile input: every length is bounded, every number is
//! validated, and errors say at which byte and entry the stream went wrong.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};

use super::header::*;
use super::writer::read_full;
use super::TarError;

/// Largest PAX extended header or GNU long name accepted (Go's limit).
pub const MAX_HEADER_SIZE: usize = MAX_SPECIAL_FILE_SIZE;

/// Reads tar entries from `R`. After [`TarReader::next_header`] returns an entry, the
/// reader yields that entry's data through [`Read`].
pub struct TarReader<R: Read> {
    r: R,
    offset: u64,
    remaining: u64,
    pad: u64,
    done: bool,
    entries: u64,
    /// Skips data by seeking instead of reading (see [`TarReader::seekable`]).
    seek: Option<fn(&mut R, u64) -> io::Result<()>>,
}

impl<R: Read + Seek> TarReader<R> {
    /// A reader that seeks over the data it skips: indexing a large archive then reads only
    /// its headers. A seek cannot notice the end of the input, so a truncated last entry
    /// shows only as a short read of its data or, if never read, as an end of archive
    /// reached early: callers that skip data must check `offset()` against the input's
    /// length.
    pub fn seekable(r: R) -> Self {
        let mut t = TarReader::new(r);
        t.seek = Some(|r, n| {
            let n = i64::try_from(n).map_err(|_| io::Error::other("seek too far"))?;
            r.seek(SeekFrom::Current(n)).map(drop)
        });
        t
    }
}

impl<R: Read> TarReader<R> {
    pub fn new(r: R) -> Self {
        TarReader {
            r,
            offset: 0,
            remaining: 0,
            pad: 0,
            done: false,
            entries: 0,
            seek: None,
        }
    }

    /// Bytes of the archive consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Data bytes of the current entry not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    pub fn into_inner(self) -> R {
        self.r
    }

    fn malformed(&self, message: impl Into<String>) -> TarError {
        TarError::Malformed {
            offset: self.offset,
            message: message.into(),
        }
    }

    fn skip(&mut self, mut n: u64) -> Result<(), TarError> {
        if let Some(seek) = self.seek {
            seek(&mut self.r, n)?;
            self.offset += n;
            return Ok(());
        }
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = read_full(&mut self.r, &mut buf[..want])?;
            self.offset += got as u64;
            if got < want {
                return Err(self.malformed("archive is truncated inside an entry"));
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// Reads one 512-byte block; `Ok(None)` at a clean end of input.
    fn read_block(&mut self) -> Result<Option<[u8; BLOCK]>, TarError> {
        let mut blk = [0u8; BLOCK];
        let got = read_full(&mut self.r, &mut blk)?;
        self.offset += got as u64;
        match got {
            0 => Ok(None),
            BLOCK => Ok(Some(blk)),
            _ => Err(self.malformed("archive ends inside a header block")),
        }
    }

    fn read_special(&mut self, size: i64) -> Result<Vec<u8>, TarError> {
        if size < 0 || size as u64 > MAX_HEADER_SIZE as u64 {
            return Err(self.malformed(format!(
                "extended header of {size} bytes exceeds the {MAX_HEADER_SIZE}-byte limit"
            )));
        }
        let mut buf = vec![0u8; size as usize];
        let got = read_full(&mut self.r, &mut buf)?;
        self.offset += got as u64;
        if got < buf.len() {
            return Err(self.malformed("archive is truncated inside an extended header"));
        }
        self.skip(block_padding(size as u64) as u64)?;
        Ok(buf)
    }

    /// Advances to the next entry, skipping any unread data of the current one. Returns
    /// `Ok(None)` at the end of the archive (two zero blocks, or end of input).
    pub fn next_header(&mut self) -> Result<Option<Header>, TarError> {
        if self.done {
            return Ok(None);
        }
        self.skip(self.remaining + self.pad)?;
        self.remaining = 0;
        self.pad = 0;

        let mut pax: Option<BTreeMap<Vec<u8>, Vec<u8>>> = None;
        let mut gnu_long_name: Option<Vec<u8>> = None;
        let mut gnu_long_link: Option<Vec<u8>> = None;
        let mut format = Format::USTAR.union(Format::PAX).union(Format::GNU);
        loop {
            let Some(mut hdr) = self.read_header()? else {
                self.done = true;
                return Ok(None);
            };
            format.may_only_be(hdr.format);
            match hdr.typeflag {
                typeflag::X_HEADER | typeflag::X_GLOBAL_HEADER => {
                    format.may_only_be(Format::PAX);
                    let data = self.read_special(hdr.size)?;
                    let records = self.parse_pax(&data)?;
                    if hdr.typeflag == typeflag::X_GLOBAL_HEADER {
                        self.merge_pax(&mut hdr, &records)?;
                        self.entries += 1;
                        return Ok(Some(Header {
                            typeflag: hdr.typeflag,
                            name: hdr.name,
                            pax_records: records,
                            format,
                            ..Header::default()
                        }));
                    }
                    pax = Some(records);
                }
                typeflag::GNU_LONG_NAME | typeflag::GNU_LONG_LINK => {
                    format.may_only_be(Format::GNU);
                    let data = self.read_special(hdr.size)?;
                    let s = c_string(&data).to_vec();
                    if hdr.typeflag == typeflag::GNU_LONG_NAME {
                        gnu_long_name = Some(s);
                    } else {
                        gnu_long_link = Some(s);
                    }
                }
                typeflag::GNU_SPARSE => {
                    return Err(TarError::Unsupported {
                        name: String::from_utf8_lossy(&hdr.name).into_owned(),
                        message: "GNU sparse files are not supported".into(),
                    });
                }
                _ => {
                    if let Some(records) = &pax {
                        if records.keys().any(|k| k.starts_with(b"GNU.sparse.")) {
                            return Err(TarError::Unsupported {
                                name: String::from_utf8_lossy(&hdr.name).into_owned(),
                                message: "PAX sparse files are not supported".into(),
                            });
                        }
                        self.merge_pax(&mut hdr, records)?;
                    }
                    if let Some(n) = gnu_long_name.take() {
                        hdr.name = n;
                    }
                    if let Some(l) = gnu_long_link.take() {
                        hdr.linkname = l;
                    }
                    if hdr.typeflag == typeflag::REG_A {
                        hdr.typeflag = if hdr.name.ends_with(b"/") {
                            typeflag::DIR
                        } else {
                            typeflag::REG
                        };
                    }
                    let nb = if is_header_only(hdr.typeflag) {
                        0
                    } else {
                        hdr.size
                    };
                    if nb < 0 {
                        return Err(TarError::header(&hdr.name, "negative size"));
                    }
                    self.remaining = nb as u64;
                    self.pad = block_padding(nb as u64) as u64;
                    if format.has(Format::USTAR) && format.has(Format::PAX) {
                        format.may_only_be(Format::USTAR);
                    }
                    hdr.format = format;
                    self.entries += 1;
                    return Ok(Some(hdr));
                }
            }
        }
    }

    /// Go's `readHeader`: one header block, end-of-archive detection and field parsing.
    fn read_header(&mut self) -> Result<Option<Header>, TarError> {
        let Some(blk) = self.read_block()? else {
            return Ok(None);
        };
        if blk == [0u8; BLOCK] {
            return match self.read_block()? {
                None => Ok(None),
                Some(b) if b == [0u8; BLOCK] => Ok(None),
                Some(_) => Err(self.malformed("a zero block is followed by data")),
            };
        }
        let format = get_format(&blk);
        if format == Format::UNKNOWN {
            return Err(self.malformed("invalid header (bad checksum)"));
        }
        let mut p = Parser { err: false };
        let mut h = Header {
            typeflag: blk[F_TYPEFLAG],
            name: c_string(&blk[F_NAME.0..F_NAME.1]).to_vec(),
            linkname: c_string(&blk[F_LINKNAME.0..F_LINKNAME.1]).to_vec(),
            size: p.numeric(&blk[F_SIZE.0..F_SIZE.1]),
            mode: p.numeric(&blk[F_MODE.0..F_MODE.1]),
            uid: p.numeric(&blk[F_UID.0..F_UID.1]),
            gid: p.numeric(&blk[F_GID.0..F_GID.1]),
            mtime: Some(Timestamp::from_secs(p.numeric(&blk[F_MTIME.0..F_MTIME.1]))),
            ..Header::default()
        };
        if format != Format::V7 {
            h.uname = c_string(&blk[F_UNAME.0..F_UNAME.1]).to_vec();
            h.gname = c_string(&blk[F_GNAME.0..F_GNAME.1]).to_vec();
            h.devmajor = p.numeric(&blk[F_DEVMAJOR.0..F_DEVMAJOR.1]);
            h.devminor = p.numeric(&blk[F_DEVMINOR.0..F_DEVMINOR.1]);
            let mut prefix: &[u8] = &[];
            if format.has(Format::USTAR.union(Format::PAX)) {
                h.format = format;
                prefix = c_string(&blk[F_PREFIX.0..F_PREFIX.1]);
                if !is_ascii(&blk) {
                    h.format = Format::UNKNOWN;
                }
                let nul = |f: (usize, usize)| blk[f.1 - 1] == 0;
                if !(nul(F_SIZE)
                    && nul(F_MODE)
                    && nul(F_UID)
                    && nul(F_GID)
                    && nul(F_MTIME)
                    && nul(F_DEVMAJOR)
                    && nul(F_DEVMINOR))
                {
                    h.format = Format::UNKNOWN;
                }
            } else if format.has(Format::STAR) {
                prefix = c_string(&blk[345..476]);
                h.atime = Some(Timestamp::from_secs(p.numeric(&blk[476..488])));
                h.ctime = Some(Timestamp::from_secs(p.numeric(&blk[488..500])));
            } else if format.has(Format::GNU) {
                h.format = format;
                let (a, c) = (&blk[345..357], &blk[357..369]);
                if a[0] != 0 {
                    h.atime = Some(Timestamp::from_secs(p.numeric(a)));
                }
                if c[0] != 0 {
                    h.ctime = Some(Timestamp::from_secs(p.numeric(c)));
                }
            }
            if !prefix.is_empty() {
                let mut n = prefix.to_vec();
                n.push(b'/');
                n.extend_from_slice(&h.name);
                h.name = n;
            }
        }
        if p.err {
            return Err(TarError::Malformed {
                offset: self.offset - BLOCK as u64,
                message: format!(
                    "entry {:?} has an invalid numeric field",
                    String::from_utf8_lossy(&h.name)
                ),
            });
        }
        Ok(Some(h))
    }

    /// Go's `parsePAX`, limited to the records Go keeps.
    fn parse_pax(&self, data: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, TarError> {
        let mut records = BTreeMap::new();
        let mut s = data;
        let mut sparse_map: Vec<u8> = Vec::new();
        while !s.is_empty() {
            let bad = || self.malformed("invalid PAX record");
            let sp = s.iter().position(|&b| b == b' ').ok_or_else(bad)?;
            let n: usize = std::str::from_utf8(&s[..sp])
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(bad)?;
            if n < 5 || s.len() < n || n <= sp + 1 {
                return Err(bad());
            }
            let (rec, nl, rest) = (&s[sp + 1..n - 1], s[n - 1], &s[n..]);
            if nl != b'\n' {
                return Err(bad());
            }
            let eq = rec.iter().position(|&b| b == b'=').ok_or_else(bad)?;
            let (k, v) = (&rec[..eq], &rec[eq + 1..]);
            if !valid_record(k, v) {
                return Err(bad());
            }
            if k == b"GNU.sparse.offset" || k == b"GNU.sparse.numbytes" {
                sparse_map.extend_from_slice(v);
                sparse_map.push(b',');
            } else {
                records.insert(k.to_vec(), v.to_vec());
            }
            s = rest;
        }
        if !sparse_map.is_empty() {
            sparse_map.pop();
            records.insert(b"GNU.sparse.map".to_vec(), sparse_map);
        }
        Ok(records)
    }

    /// Go's `mergePAX`: PAX values override the block's fields.
    fn merge_pax(
        &self,
        h: &mut Header,
        records: &BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(), TarError> {
        for (k, v) in records {
            let bad = || {
                TarError::header(
                    &h.name,
                    &format!(
                        "invalid PAX value {:?} for {:?}",
                        String::from_utf8_lossy(v),
                        String::from_utf8_lossy(k)
                    ),
                )
            };
            let int = || -> Option<i64> { std::str::from_utf8(v).ok()?.parse().ok() };
            match k.as_slice() {
                b"path" => h.name = v.clone(),
                b"linkpath" => h.linkname = v.clone(),
                b"uname" => h.uname = v.clone(),
                b"gname" => h.gname = v.clone(),
                b"uid" => h.uid = int().ok_or_else(bad)?,
                b"gid" => h.gid = int().ok_or_else(bad)?,
                b"size" => h.size = int().ok_or_else(bad)?,
                b"mtime" => h.mtime = Some(parse_pax_time(v).ok_or_else(bad)?),
                b"atime" => h.atime = Some(parse_pax_time(v).ok_or_else(bad)?),
                b"ctime" => h.ctime = Some(parse_pax_time(v).ok_or_else(bad)?),
                _ => {}
            }
        }
        h.pax_records = records.clone();
        Ok(())
    }
}

impl<R: Read> Read for TarReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = (self.remaining as usize).min(buf.len());
        let n = self.r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "tar archive is truncated: entry data ends {} bytes early",
                    self.remaining
                ),
            ));
        }
        self.offset += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn valid_record(k: &[u8], v: &[u8]) -> bool {
    if k.is_empty() || k.contains(&b'=') {
        return false;
    }
    match k {
        b"path" | b"linkpath" | b"uname" | b"gname" => !v.contains(&0),
        _ => !k.contains(&0),
    }
}

/// Bytes up to the first NUL.
fn c_string(b: &[u8]) -> &[u8] {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..n]
}

/// Go's `block.getFormat`.
fn get_format(blk: &[u8; BLOCK]) -> Format {
    let mut p = Parser { err: false };
    let value = p.octal(&blk[F_CHKSUM.0..F_CHKSUM.1]);
    let (c1, c2) = checksums(blk);
    if p.err || (value != c1 && value != c2) {
        return Format::UNKNOWN;
    }
    let magic = &blk[F_MAGIC.0..F_MAGIC.1];
    let version = &blk[F_VERSION.0..F_VERSION.1];
    let trailer = &blk[508..512];
    if magic == b"ustar\0" && trailer == b"tar\0" {
        Format::STAR
    } else if magic == b"ustar\0" {
        Format::USTAR.union(Format::PAX)
    } else if magic == b"ustar " && version == b" \0" {
        Format::GNU
    } else {
        Format::V7
    }
}

/// Go's `parsePAXTime`.
fn parse_pax_time(v: &[u8]) -> Option<Timestamp> {
    let s = std::str::from_utf8(v).ok()?;
    let (ss, sn) = match s.find('.') {
        None => (s, ""),
        Some(i) => (&s[..i], &s[i + 1..]),
    };
    let secs: i64 = ss.parse().ok()?;
    if sn.is_empty() {
        return Some(Timestamp::from_secs(secs));
    }
    if !sn.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits = sn.as_bytes().to_vec();
    digits.resize(9, b'0');
    let nanos: u32 = std::str::from_utf8(&digits[..9]).ok()?.parse().ok()?;
    if ss.starts_with('-') && nanos != 0 {
        // -1.5 means one and a half seconds before the epoch (and there is no second
        // before i64::MIN: an error, not an overflow).
        Some(Timestamp {
            secs: secs.checked_sub(1)?,
            nanos: 1_000_000_000 - nanos,
        })
    } else {
        Some(Timestamp { secs, nanos })
    }
}

struct Parser {
    err: bool,
}

impl Parser {
    /// Go's `parseNumeric`: base-256 when the high bit is set, else octal.
    fn numeric(&mut self, b: &[u8]) -> i64 {
        if !b.is_empty() && b[0] & 0x80 != 0 {
            let inv: u8 = if b[0] & 0x40 != 0 { 0xff } else { 0 };
            let mut x: u64 = 0;
            for (i, &c) in b.iter().enumerate() {
                let mut c = c ^ inv;
                if i == 0 {
                    c &= 0x7f;
                }
                if x >> 56 > 0 {
                    self.err = true;
                    return 0;
                }
                x = x << 8 | c as u64;
            }
            if x >> 63 > 0 {
                self.err = true;
                return 0;
            }
            return if inv == 0xff { !(x as i64) } else { x as i64 };
        }
        self.octal(b)
    }

    fn octal(&mut self, b: &[u8]) -> i64 {
        let trimmed = trim(b);
        if trimmed.is_empty() {
            return 0;
        }
        let s = c_string(trimmed);
        if !s.iter().all(|c| (b'0'..=b'7').contains(c)) {
            self.err = true;
            return 0;
        }
        match std::str::from_utf8(s)
            .ok()
            .and_then(|t| u64::from_str_radix(t, 8).ok())
        {
            Some(x) if x <= i64::MAX as u64 => x as i64,
            _ => {
                self.err = true;
                0
            }
        }
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let is_pad = |c: &u8| *c == b' ' || *c == 0;
    let start = b.iter().position(|c| !is_pad(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_pad(c)).map_or(start, |i| i + 1);
    &b[start..end]
}
