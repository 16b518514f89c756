//! Tar headers and their byte-exact encoding as Go's `archive/tar` writes them.
//!
//! BuildKit writes every layer (and the outer image tarball) with Go's `archive/tar` `Writer`,
//! and the layer digests kiln must reproduce depend on each header byte. The `tar` crate's
//! defaults differ from Go's (GNU long names, padding, checksum layout), so this module is a
//! small, independent re-implementation of Go's format choice (`Header.allowedFormats`) and
//! of its USTAR and PAX block layout. Byte-exact compatibility is the reason this is not
//! delegated to a crate.

use std::collections::BTreeMap;

use super::TarError;

/// PAX records, sorted by key as Go writes them.
pub type PaxRecords = BTreeMap<Vec<u8>, Vec<u8>>;

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// Tar formats as a bit set, mirroring Go's `tar.Format` (the reader narrows it down, the
/// writer honours it).
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug, Hash)]
pub struct Format(u8);

impl Format {
    /// No format recorded: the writer picks USTAR when possible, else PAX.
    pub const UNKNOWN: Format = Format(0);
    pub(crate) const V7: Format = Format(1);
    pub const USTAR: Format = Format(2);
    pub const PAX: Format = Format(4);
    pub const GNU: Format = Format(8);
    pub(crate) const STAR: Format = Format(16);

    pub fn has(self, f: Format) -> bool {
        self.0 & f.0 != 0
    }
    pub(crate) fn may_be(&mut self, f: Format) {
        self.0 |= f.0;
    }
    pub(crate) fn may_only_be(&mut self, f: Format) {
        self.0 &= f.0;
    }
    pub(crate) fn must_not_be(&mut self, f: Format) {
        self.0 &= !f.0;
    }
    pub(crate) fn union(self, f: Format) -> Format {
        Format(self.0 | f.0)
    }
}

/// A point in time with nanoseconds, as a tar header can carry it (PAX times have
/// sub-second precision; USTAR only whole seconds).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash, Default)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub const EPOCH: Timestamp = Timestamp { secs: 0, nanos: 0 };

    pub fn from_secs(secs: i64) -> Timestamp {
        Timestamp { secs, nanos: 0 }
    }

    /// Whole seconds, dropping the fraction (what containerd's ChangeWriter records).
    pub fn truncated(self) -> Timestamp {
        Timestamp::from_secs(self.secs)
    }

    /// Go's `Time.Round(time.Second)`: halves round up (the last second of i64, which a
    /// PAX header can name, stays itself rather than overflow).
    pub fn rounded(self) -> Timestamp {
        if self.nanos >= 500_000_000 {
            Timestamp::from_secs(self.secs.saturating_add(1))
        } else {
            self.truncated()
        }
    }

    /// BuildKit's rewrite-timestamp rule: times after `epoch` become `epoch`, older ones stay.
    pub fn clamped(self, epoch: Timestamp) -> Timestamp {
        if self > epoch {
            epoch
        } else {
            self
        }
    }
}

/// Typeflag values kiln uses by name.
pub mod typeflag {
    pub const REG: u8 = b'0';
    pub const REG_A: u8 = 0;
    pub const LINK: u8 = b'1';
    pub const SYMLINK: u8 = b'2';
    pub const CHAR: u8 = b'3';
    pub const BLOCK: u8 = b'4';
    pub const DIR: u8 = b'5';
    pub const FIFO: u8 = b'6';
    pub const CONT: u8 = b'7';
    pub const X_HEADER: u8 = b'x';
    pub const X_GLOBAL_HEADER: u8 = b'g';
    pub const GNU_SPARSE: u8 = b'S';
    pub const GNU_LONG_NAME: u8 = b'L';
    pub const GNU_LONG_LINK: u8 = b'K';
}

/// Types that carry no data even when a size is recorded (Go's `isHeaderOnlyType`).
pub fn is_header_only(flag: u8) -> bool {
    use typeflag::*;
    matches!(flag, LINK | SYMLINK | CHAR | BLOCK | DIR | FIFO)
}

/// One tar header, with the fields Go's `tar.Header` has. Names are raw bytes: tar does not
/// promise UTF-8. PAX records are kept sorted (a `BTreeMap`), which is also the order Go
/// writes them in.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Header {
    pub typeflag: u8,
    pub name: Vec<u8>,
    pub linkname: Vec<u8>,
    pub size: i64,
    pub mode: i64,
    pub uid: i64,
    pub gid: i64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    /// `None` is Go's zero `time.Time` (written as 0).
    pub mtime: Option<Timestamp>,
    pub atime: Option<Timestamp>,
    pub ctime: Option<Timestamp>,
    pub devmajor: i64,
    pub devminor: i64,
    /// All PAX records seen when reading (including `path`, `SCHILY.xattr.*`, ...), or extra
    /// records to write. Basic keys are only written when they agree with the fields.
    pub pax_records: BTreeMap<Vec<u8>, Vec<u8>>,
    pub format: Format,
}

/// The blocks of one encoded header, in the order (and with the write boundaries) Go's
/// writer produces them: extension headers (a PAX extended header, or GNU long name and
/// long link), each a block, its data (unpadded) and padding; then the main header block.
pub struct EncodedHeader {
    pub ext: Vec<([u8; BLOCK], Vec<u8>)>,
    /// `None` only for a global PAX header, which is complete without a main block.
    pub main: Option<[u8; BLOCK]>,
}

impl EncodedHeader {
    /// All bytes of the header, padding included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 * BLOCK);
        for (blk, data) in &self.ext {
            out.extend_from_slice(blk);
            out.extend_from_slice(data);
            out.resize(out.len() + block_padding(data.len() as u64), 0);
        }
        if let Some(main) = &self.main {
            out.extend_from_slice(main);
        }
        out
    }
}

/// Bytes of zero padding after `size` bytes of data.
pub fn block_padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

const NAME_SIZE: usize = 100;
const PREFIX_SIZE: usize = 155;
/// Go refuses PAX headers and GNU long names larger than this (`maxSpecialFileSize`).
pub const MAX_SPECIAL_FILE_SIZE: usize = 1 << 20;

const PAX_PATH: &[u8] = b"path";
const PAX_LINKPATH: &[u8] = b"linkpath";
const PAX_SIZE: &[u8] = b"size";
const PAX_UID: &[u8] = b"uid";
const PAX_GID: &[u8] = b"gid";
const PAX_UNAME: &[u8] = b"uname";
const PAX_GNAME: &[u8] = b"gname";
const PAX_MTIME: &[u8] = b"mtime";
const PAX_ATIME: &[u8] = b"atime";
const PAX_CTIME: &[u8] = b"ctime";

const PAX_GNU_SPARSE: &[u8] = b"GNU.sparse.";

fn is_basic_key(k: &[u8]) -> bool {
    [
        PAX_PATH,
        PAX_LINKPATH,
        PAX_SIZE,
        PAX_UID,
        PAX_GID,
        PAX_UNAME,
        PAX_GNAME,
        PAX_MTIME,
        PAX_ATIME,
        PAX_CTIME,
    ]
    .contains(&k)
}

pub(crate) fn is_ascii(s: &[u8]) -> bool {
    s.iter().all(|&b| b < 0x80)
}

/// Go's `toASCII`: every byte of a multi-byte or invalid UTF-8 sequence is >= 0x80, so
/// dropping runes >= 0x80 is dropping those bytes.
pub(crate) fn to_ascii(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|&b| b < 0x80).collect()
}

fn has_nul(s: &[u8]) -> bool {
    s.contains(&0)
}

fn fits_in_octal(n: usize, x: i64) -> bool {
    let oct_bits = (n as u32 - 1) * 3;
    x >= 0 && (n >= 22 || x < 1i64 << oct_bits)
}

fn fits_in_base256(n: usize, x: i64) -> bool {
    if n >= 9 {
        return true;
    }
    let bin_bits = (n as u32 - 1) * 8;
    x >= -(1i64 << bin_bits) && x < (1i64 << bin_bits)
}

/// Go's `splitUSTARPath`: returns (prefix, suffix) when a long ASCII name fits the USTAR
/// prefix/name fields split at a `/`.
pub(crate) fn split_ustar_path(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut length = name.len();
    if length <= NAME_SIZE || !is_ascii(name) {
        return None;
    } else if length > PREFIX_SIZE + 1 {
        length = PREFIX_SIZE + 1;
    } else if name[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].iter().rposition(|&b| b == b'/')?;
    let nlen = name.len() - i - 1;
    if i == 0 || nlen > NAME_SIZE || nlen == 0 || i > PREFIX_SIZE {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

/// Go's `formatPAXTime`.
pub(crate) fn format_pax_time(ts: Timestamp) -> Vec<u8> {
    let (mut secs, mut nsecs) = (ts.secs, ts.nanos as i64);
    if nsecs == 0 {
        return secs.to_string().into_bytes();
    }
    let mut sign = "";
    if secs < 0 {
        sign = "-";
        secs = -(secs + 1);
        nsecs = -(nsecs - 1_000_000_000);
    }
    let s = format!("{sign}{secs}.{nsecs:09}");
    s.trim_end_matches('0').as_bytes().to_vec()
}

/// Go's `formatPAXRecord`: `"<len> key=value\n"` where `<len>` counts the whole record.
pub(crate) fn format_pax_record(k: &[u8], v: &[u8]) -> Vec<u8> {
    let base = k.len() + v.len() + 3;
    let mut size = base + base.to_string().len();
    if (size).to_string().len() + base != size {
        size = base + size.to_string().len();
    }
    let mut rec = size.to_string().into_bytes();
    rec.push(b' ');
    rec.extend_from_slice(k);
    rec.push(b'=');
    rec.extend_from_slice(v);
    rec.push(b'\n');
    rec
}

fn valid_pax_record(k: &[u8], v: &[u8]) -> bool {
    if k.is_empty() || k.contains(&b'=') {
        return false;
    }
    if [PAX_PATH, PAX_LINKPATH, PAX_UNAME, PAX_GNAME].contains(&k) {
        !has_nul(v)
    } else {
        !has_nul(k)
    }
}

/// Go's `path.Clean` on bytes.
pub fn go_path_clean(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in p.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|l| *l != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(comp);
                }
            }
            _ => parts.push(comp),
        }
    }
    let mut out = Vec::with_capacity(p.len());
    if rooted {
        out.push(b'/');
    }
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// Go's `path.Join(dir, "PaxHeaders.0", file)` after `path.Split(name)`.
fn pax_header_name(real_name: &[u8]) -> Vec<u8> {
    let split = real_name
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(0, |i| i + 1);
    let (dir, file) = real_name.split_at(split);
    let mut joined = Vec::new();
    for elem in [dir, b"PaxHeaders.0".as_slice(), file] {
        if elem.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.push(b'/');
        }
        joined.extend_from_slice(elem);
    }
    go_path_clean(&joined)
}

/// The field writer of Go's `formatter`, errors ignored where Go ignores them.
struct Formatter {
    err: bool,
}

impl Formatter {
    fn string(&mut self, b: &mut [u8], s: &[u8]) {
        if s.len() > b.len() {
            self.err = true;
        }
        let n = s.len().min(b.len());
        b[..n].copy_from_slice(&s[..n]);
        if s.len() < b.len() {
            b[s.len()] = 0;
        }
        // Go replaces a trailing slash left by truncation with NUL, so buggy readers do not
        // take a regular file for a directory.
        if s.len() > b.len() && b[b.len() - 1] == b'/' {
            let mut n = b.len();
            while n > 0 && s[n - 1] == b'/' {
                n -= 1;
            }
            b[n] = 0;
        }
    }

    /// Go's `formatNumeric` (GNU): octal when it fits, else base-256 (two's complement,
    /// big-endian, top bit set), else octal 0 and an error.
    fn numeric(&mut self, b: &mut [u8], x: i64) {
        if fits_in_octal(b.len(), x) {
            self.octal(b, x);
        } else if fits_in_base256(b.len(), x) {
            let mut v = x;
            for c in b.iter_mut().rev() {
                *c = v as u8;
                v >>= 8;
            }
            b[0] |= 0x80;
        } else {
            self.octal(b, 0);
            self.err = true;
        }
    }

    fn octal(&mut self, b: &mut [u8], mut x: i64) {
        if !fits_in_octal(b.len(), x) {
            x = 0;
            self.err = true;
        }
        let digits = format!("{x:o}");
        let width = b.len() - 1;
        let s = if digits.len() < width {
            format!("{}{}", "0".repeat(width - digits.len()), digits)
        } else {
            digits
        };
        self.string(b, s.as_bytes());
    }
}

// Field offsets of the USTAR block.
pub(crate) const F_NAME: (usize, usize) = (0, 100);
pub(crate) const F_MODE: (usize, usize) = (100, 108);
pub(crate) const F_UID: (usize, usize) = (108, 116);
pub(crate) const F_GID: (usize, usize) = (116, 124);
pub(crate) const F_SIZE: (usize, usize) = (124, 136);
pub(crate) const F_MTIME: (usize, usize) = (136, 148);
pub(crate) const F_CHKSUM: (usize, usize) = (148, 156);
pub(crate) const F_TYPEFLAG: usize = 156;
pub(crate) const F_LINKNAME: (usize, usize) = (157, 257);
pub(crate) const F_MAGIC: (usize, usize) = (257, 263);
pub(crate) const F_VERSION: (usize, usize) = (263, 265);
pub(crate) const F_UNAME: (usize, usize) = (265, 297);
pub(crate) const F_GNAME: (usize, usize) = (297, 329);
pub(crate) const F_DEVMAJOR: (usize, usize) = (329, 337);
pub(crate) const F_DEVMINOR: (usize, usize) = (337, 345);
pub(crate) const F_PREFIX: (usize, usize) = (345, 500);

fn field(blk: &mut [u8; BLOCK], f: (usize, usize)) -> &mut [u8] {
    &mut blk[f.0..f.1]
}

/// Unsigned checksum of a block, the checksum field counted as spaces; and the signed
/// variant some old writers used (both accepted when reading, as Go does).
pub(crate) fn checksums(blk: &[u8; BLOCK]) -> (i64, i64) {
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &c) in blk.iter().enumerate() {
        let c = if (F_CHKSUM.0..F_CHKSUM.1).contains(&i) {
            b' '
        } else {
            c
        };
        unsigned += c as i64;
        signed += c as i8 as i64;
    }
    (unsigned, signed)
}

/// Sets the USTAR magic (also used for PAX) and the checksum, like Go's `block.setFormat`.
fn finish_block(blk: &mut [u8; BLOCK]) {
    set_format(blk, b"ustar\0", b"00");
}

/// Sets the GNU magic and version and the checksum (Go's `setFormat(FormatGNU)`).
fn finish_gnu_block(blk: &mut [u8; BLOCK]) {
    set_format(blk, b"ustar ", b" \0");
}

fn set_format(blk: &mut [u8; BLOCK], magic: &[u8; 6], version: &[u8; 2]) {
    field(blk, F_MAGIC).copy_from_slice(magic);
    field(blk, F_VERSION).copy_from_slice(version);
    let (chksum, _) = checksums(blk);
    let mut f = Formatter { err: false };
    f.octal(&mut blk[F_CHKSUM.0..F_CHKSUM.0 + 7], chksum);
    blk[F_CHKSUM.1 - 1] = b' ';
}

// GNU header fields after the device numbers.
const F_GNU_ATIME: (usize, usize) = (345, 357);
const F_GNU_CTIME: (usize, usize) = (357, 369);
/// The name of GNU long name and long link entries.
const GNU_LONG_LINK_NAME: &[u8] = b"././@LongLink";

/// How `template` writes strings and numbers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// USTAR fields as written: strings as they are, numbers octal.
    Ustar,
    /// The main block of a PAX header: strings made ASCII, numbers octal.
    PaxMain,
    /// GNU: strings as they are, numbers octal or base-256.
    Gnu,
}

/// Go's `templateV7Plus` with the string and number formatters of `style`.
fn template(h: &Header, name: &[u8], style: Style) -> [u8; BLOCK] {
    let mut blk = [0u8; BLOCK];
    let mut f = Formatter { err: false };
    let conv = |s: &[u8]| {
        if style == Style::PaxMain {
            to_ascii(s)
        } else {
            s.to_vec()
        }
    };
    let num = |f: &mut Formatter, b: &mut [u8], x: i64| {
        if style == Style::Gnu {
            f.numeric(b, x)
        } else {
            f.octal(b, x)
        }
    };
    blk[F_TYPEFLAG] = h.typeflag;
    f.string(field(&mut blk, F_NAME), &conv(name));
    f.string(field(&mut blk, F_LINKNAME), &conv(&h.linkname));
    num(&mut f, field(&mut blk, F_MODE), h.mode);
    num(&mut f, field(&mut blk, F_UID), h.uid);
    num(&mut f, field(&mut blk, F_GID), h.gid);
    num(&mut f, field(&mut blk, F_SIZE), h.size);
    num(
        &mut f,
        field(&mut blk, F_MTIME),
        h.mtime.unwrap_or(Timestamp::EPOCH).secs,
    );
    f.string(field(&mut blk, F_UNAME), &conv(&h.uname));
    f.string(field(&mut blk, F_GNAME), &conv(&h.gname));
    num(&mut f, field(&mut blk, F_DEVMAJOR), h.devmajor);
    num(&mut f, field(&mut blk, F_DEVMINOR), h.devminor);
    blk
}

impl Header {
    /// Go's `allowedFormats`: which formats can encode this header, and the PAX records it
    /// needs if written as PAX.
    fn allowed_formats(&self) -> Result<(Format, PaxRecords), TarError> {
        let mut format = Format::USTAR.union(Format::PAX).union(Format::GNU);
        let mut pax: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut prefer_pax = false;
        let mut why_no_ustar = String::new();
        let mut why_no_pax = String::new();
        let h = self;

        let mut verify_string = |format: &mut Format,
                                 pax: &mut BTreeMap<Vec<u8>, Vec<u8>>,
                                 s: &[u8],
                                 size: usize,
                                 name: &str,
                                 key: Option<&[u8]>| {
            let too_long = s.len() > size;
            let allow_long_gnu = key == Some(PAX_PATH) || key == Some(PAX_LINKPATH);
            if has_nul(s) || (too_long && !allow_long_gnu) {
                format.must_not_be(Format::GNU);
            }
            if !is_ascii(s) || too_long {
                let can_split = key == Some(PAX_PATH);
                if !can_split || split_ustar_path(s).is_none() {
                    why_no_ustar = format!("USTAR cannot encode {name}");
                    format.must_not_be(Format::USTAR);
                }
                match key {
                    None => {
                        why_no_pax = format!("PAX cannot encode {name}");
                        format.must_not_be(Format::PAX);
                    }
                    Some(k) => {
                        pax.insert(k.to_vec(), s.to_vec());
                    }
                }
            }
            if let Some(k) = key {
                if h.pax_records.get(k).is_some_and(|v| v == s) {
                    pax.insert(k.to_vec(), s.to_vec());
                }
            }
        };
        verify_string(
            &mut format,
            &mut pax,
            &h.name,
            NAME_SIZE,
            "Name",
            Some(PAX_PATH),
        );
        verify_string(
            &mut format,
            &mut pax,
            &h.linkname,
            NAME_SIZE,
            "Linkname",
            Some(PAX_LINKPATH),
        );
        verify_string(
            &mut format,
            &mut pax,
            &h.uname,
            32,
            "Uname",
            Some(PAX_UNAME),
        );
        verify_string(
            &mut format,
            &mut pax,
            &h.gname,
            32,
            "Gname",
            Some(PAX_GNAME),
        );

        let mut verify_numeric =
            |format: &mut Format, n: i64, size: usize, name: &str, key: Option<&[u8]>| {
                if !fits_in_base256(size, n) {
                    format.must_not_be(Format::GNU);
                }
                if !fits_in_octal(size, n) {
                    why_no_ustar = format!("USTAR cannot encode {name}={n}");
                    format.must_not_be(Format::USTAR);
                    match key {
                        None => {
                            why_no_pax = format!("PAX cannot encode {name}={n}");
                            format.must_not_be(Format::PAX);
                        }
                        Some(k) => {
                            pax.insert(k.to_vec(), n.to_string().into_bytes());
                        }
                    }
                }
                if let Some(k) = key {
                    if h.pax_records.get(k).map(|v| v.as_slice()) == Some(n.to_string().as_bytes())
                    {
                        pax.insert(k.to_vec(), n.to_string().into_bytes());
                    }
                }
            };
        verify_numeric(&mut format, h.mode, 8, "Mode", None);
        verify_numeric(&mut format, h.uid, 8, "Uid", Some(PAX_UID));
        verify_numeric(&mut format, h.gid, 8, "Gid", Some(PAX_GID));
        verify_numeric(&mut format, h.size, 12, "Size", Some(PAX_SIZE));
        verify_numeric(&mut format, h.devmajor, 8, "Devmajor", None);
        verify_numeric(&mut format, h.devminor, 8, "Devminor", None);

        let mut verify_time = |format: &mut Format, ts: Option<Timestamp>, key: &[u8]| {
            let Some(ts) = ts else { return };
            if !fits_in_base256(12, ts.secs) {
                format.must_not_be(Format::GNU);
            }
            let is_mtime = key == PAX_MTIME;
            let fits_octal = fits_in_octal(12, ts.secs);
            // USTAR holds only the modification time, and only when it fits in octal.
            if !is_mtime || !fits_octal {
                format.must_not_be(Format::USTAR);
            }
            let needs_nano = ts.nanos != 0;
            if !is_mtime || !fits_octal || needs_nano {
                prefer_pax = true;
                pax.insert(key.to_vec(), format_pax_time(ts));
            }
            if h.pax_records.get(key) == Some(&format_pax_time(ts)) {
                pax.insert(key.to_vec(), format_pax_time(ts));
            }
        };
        verify_time(&mut format, h.mtime, PAX_MTIME);
        verify_time(&mut format, h.atime, PAX_ATIME);
        verify_time(&mut format, h.ctime, PAX_CTIME);

        use typeflag::*;
        match h.typeflag {
            REG | CHAR | BLOCK | FIFO | GNU_SPARSE if h.name.ends_with(b"/") => {
                return Err(TarError::header(
                    &h.name,
                    "a regular file or device name may not end with a slash",
                ));
            }
            X_HEADER | GNU_LONG_NAME | GNU_LONG_LINK => {
                return Err(TarError::header(
                    &h.name,
                    "PAX and GNU meta headers cannot be written as entries",
                ));
            }
            X_GLOBAL_HEADER => format.may_only_be(Format::PAX),
            _ => {}
        }
        if !is_header_only(h.typeflag) && h.size < 0 {
            return Err(TarError::header(&h.name, "negative size"));
        }

        if !h.pax_records.is_empty() {
            for (k, v) in &h.pax_records {
                if pax.contains_key(k) {
                    continue;
                }
                if h.typeflag == X_GLOBAL_HEADER
                    || (!is_basic_key(k) && !k.starts_with(PAX_GNU_SPARSE))
                {
                    pax.insert(k.clone(), v.clone());
                }
            }
            format.may_only_be(Format::PAX);
        }
        for (k, v) in &pax {
            if !valid_pax_record(k, v) {
                return Err(TarError::header(
                    &h.name,
                    &format!("invalid PAX record {:?}", String::from_utf8_lossy(k)),
                ));
            }
        }

        if h.format != Format::UNKNOWN {
            let mut want = h.format;
            if want.has(Format::PAX) && !prefer_pax {
                want.may_be(Format::USTAR);
            }
            format.may_only_be(want);
        }
        if format == Format::UNKNOWN {
            let why = [why_no_ustar, why_no_pax]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(TarError::header(
                &h.name,
                &format!("cannot be encoded as USTAR or PAX ({why})"),
            ));
        }
        Ok((format, pax))
    }

    /// Encodes the header as Go's `tar.Writer.WriteHeader` does.
    pub fn encode(&self) -> Result<EncodedHeader, TarError> {
        let mut h = self.clone();
        if h.typeflag == typeflag::REG_A {
            h.typeflag = if h.name.ends_with(b"/") {
                typeflag::DIR
            } else {
                typeflag::REG
            };
        }
        if h.format == Format::UNKNOWN {
            h.mtime = h.mtime.map(Timestamp::rounded);
            h.atime = None;
            h.ctime = None;
        }
        let (allowed, pax) = h.allowed_formats()?;
        if allowed.has(Format::USTAR) {
            Ok(EncodedHeader {
                ext: Vec::new(),
                main: Some(h.ustar_block()),
            })
        } else if allowed.has(Format::PAX) {
            Ok(h.pax_blocks(pax))
        } else {
            // Only GNU is left: a header read from a GNU archive keeps its format (Go honours
            // `Header.Format`), as when BuildKit rewrites such a layer.
            Ok(h.gnu_blocks())
        }
    }

    /// Go's `writeGNUHeader`: GNU long name / long link entries for names over 100 bytes,
    /// then the main block with base-256 numbers where octal does not fit and the access
    /// and change times. (Go's GNU sparse writing is disabled; kiln refuses sparse input.)
    fn gnu_blocks(&self) -> EncodedHeader {
        let mut ext = Vec::new();
        for (value, flag) in [
            (&self.name, typeflag::GNU_LONG_NAME),
            (&self.linkname, typeflag::GNU_LONG_LINK),
        ] {
            if value.len() > NAME_SIZE {
                let mut data = value.clone();
                data.push(0);
                let mut blk = raw_file_block(GNU_LONG_LINK_NAME, data.len() as i64, flag);
                finish_gnu_block(&mut blk);
                ext.push((blk, data));
            }
        }
        let mut blk = template(self, &self.name, Style::Gnu);
        let mut f = Formatter { err: false };
        if let Some(t) = self.atime {
            f.numeric(field(&mut blk, F_GNU_ATIME), t.secs);
        }
        if let Some(t) = self.ctime {
            f.numeric(field(&mut blk, F_GNU_CTIME), t.secs);
        }
        finish_gnu_block(&mut blk);
        EncodedHeader {
            ext,
            main: Some(blk),
        }
    }

    fn ustar_block(&self) -> [u8; BLOCK] {
        let (prefix, name) = match split_ustar_path(&self.name) {
            Some((p, n)) => (p, n),
            None => (&[][..], &self.name[..]),
        };
        let mut blk = template(self, name, Style::Ustar);
        Formatter { err: false }.string(field(&mut blk, F_PREFIX), prefix);
        finish_block(&mut blk);
        blk
    }

    fn pax_blocks(&self, pax: PaxRecords) -> EncodedHeader {
        let is_global = self.typeflag == typeflag::X_GLOBAL_HEADER;
        let mut ext = None;
        if !pax.is_empty() || is_global {
            let data: Vec<u8> = pax
                .iter()
                .flat_map(|(k, v)| format_pax_record(k, v))
                .collect();
            let (name, flag) = if is_global {
                let n = if self.name.is_empty() {
                    b"GlobalHead.0.0".to_vec()
                } else {
                    self.name.clone()
                };
                (n, typeflag::X_GLOBAL_HEADER)
            } else {
                (pax_header_name(&self.name), typeflag::X_HEADER)
            };
            let mut blk = raw_file_block(&name, data.len() as i64, flag);
            finish_block(&mut blk);
            if is_global {
                return EncodedHeader {
                    ext: vec![(blk, data)],
                    main: None,
                };
            }
            ext = Some((blk, data));
        }
        let mut blk = template(self, &self.name, Style::PaxMain);
        finish_block(&mut blk);
        EncodedHeader {
            ext: ext.into_iter().collect(),
            main: Some(blk),
        }
    }
}

/// Go's `writeRawFile` header: best-effort ASCII name cut to 100 bytes without trailing
/// slashes; mode/uid/gid/mtime 0; devmajor/devminor left NUL.
fn raw_file_block(name: &[u8], size: i64, flag: u8) -> [u8; BLOCK] {
    let mut name = to_ascii(name);
    name.truncate(NAME_SIZE);
    while name.last() == Some(&b'/') {
        name.pop();
    }
    let mut blk = [0u8; BLOCK];
    let mut f = Formatter { err: false };
    blk[F_TYPEFLAG] = flag;
    f.string(field(&mut blk, F_NAME), &name);
    f.octal(field(&mut blk, F_MODE), 0);
    f.octal(field(&mut blk, F_UID), 0);
    f.octal(field(&mut blk, F_GID), 0);
    f.octal(field(&mut blk, F_SIZE), size);
    f.octal(field(&mut blk, F_MTIME), 0);
    blk
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(name: &str, flag: u8, mode: i64, size: i64, mtime: i64) -> Header {
        Header {
            typeflag: flag,
            name: name.as_bytes().to_vec(),
            mode,
            size,
            mtime: Some(Timestamp::from_secs(mtime)),
            ..Header::default()
        }
    }

    #[test]
    fn ustar_block_matches_go_layout() {
        let h = hdr("base/base.txt", typeflag::REG, 0o644, 19, 1445412480);
        let enc = h.encode().unwrap();
        assert!(enc.ext.is_empty());
        let b = enc.main.unwrap();
        assert_eq!(&b[0..13], b"base/base.txt");
        assert_eq!(&b[100..108], b"0000644\0");
        assert_eq!(&b[108..116], b"0000000\0");
        assert_eq!(&b[124..136], b"00000000023\0");
        assert_eq!(&b[136..148], b"12611637200\0");
        assert_eq!(b[156], b'0');
        assert_eq!(&b[257..265], b"ustar\x0000");
        assert_eq!(&b[329..345], b"0000000\x000000000\0");
        assert_eq!(b[154], 0);
        assert_eq!(b[155], b' ');
        let (sum, _) = checksums(&b);
        let stored = std::str::from_utf8(&b[148..154]).unwrap();
        assert_eq!(i64::from_str_radix(stored, 8).unwrap(), sum);
    }

    #[test]
    fn long_ascii_name_uses_prefix() {
        let name = format!(
            "app/longpath/d00-{}/d01-{}/",
            "p".repeat(55),
            "p".repeat(55)
        );
        let h = hdr(&name, typeflag::DIR, 0o755, 0, 1600000000);
        let enc = h.encode().unwrap();
        assert!(enc.ext.is_empty());
        let (p, n) = split_ustar_path(name.as_bytes()).unwrap();
        assert_eq!(&enc.main.unwrap()[345..345 + p.len()], p);
        assert_eq!(&enc.main.unwrap()[..n.len()], n);
    }

    #[test]
    fn utf8_name_gets_pax_path_and_ascii_main_name() {
        let name = "app/ünïcødé-файл-文件.txt";
        let h = hdr(name, typeflag::REG, 0o644, 11, 1600000000);
        let enc = h.encode().unwrap();
        let (blk, data) = enc.ext.into_iter().next().unwrap();
        assert_eq!(&blk[..29], b"app/PaxHeaders.0/ncd--.txt\0\0\0");
        assert_eq!(&blk[329..345], &[0u8; 16]);
        let rec = format!("{} path={}\n", 44, name);
        assert_eq!(data, rec.as_bytes());
        assert_eq!(&enc.main.unwrap()[..14], b"app/ncd--.txt\0");
    }

    #[test]
    fn pax_record_length_includes_itself() {
        assert_eq!(format_pax_record(b"path", b"a"), b"9 path=a\n");
        // 3 + 4 + 94 = 101 -> 104 with 3 digits
        let v = vec![b'x'; 94];
        let rec = format_pax_record(b"path", &v);
        assert_eq!(rec.len(), 104);
        assert!(rec.starts_with(b"104 path="));
        let v = vec![b'x'; 92]; // 99 + 2 digits = 101 -> needs 3 digits -> 102
        let rec = format_pax_record(b"path", &v);
        assert_eq!(rec.len(), 102);
        assert!(rec.starts_with(b"102 "));
    }

    #[test]
    fn pax_times_and_big_ids() {
        let mut h = hdr("f", typeflag::REG, 0o644, 0, 5);
        h.mtime = Some(Timestamp {
            secs: 5,
            nanos: 120_000_000,
        });
        h.format = Format::PAX;
        let enc = h.encode().unwrap();
        let (_, data) = enc.ext.into_iter().next().unwrap();
        assert_eq!(data, b"14 mtime=5.12\n");
        // Unknown format rounds the time instead.
        h.format = Format::UNKNOWN;
        assert!(h.encode().unwrap().ext.is_empty());
        let mut h = hdr("f", typeflag::REG, 0o644, 0, 5);
        h.uid = 1 << 21;
        let (_, data) = h.encode().unwrap().ext.into_iter().next().unwrap();
        assert_eq!(data, b"15 uid=2097152\n");
    }

    #[test]
    fn go_path_clean_cases() {
        assert_eq!(go_path_clean(b"a/b/../c/./d/"), b"a/c/d");
        assert_eq!(go_path_clean(b"PaxHeaders.0/."), b"PaxHeaders.0");
        assert_eq!(go_path_clean(b"/../a"), b"/a");
        assert_eq!(go_path_clean(b"../a"), b"../a");
        assert_eq!(pax_header_name(b"app/sub/"), b"app/sub/PaxHeaders.0");
        assert_eq!(pax_header_name(b"x"), b"PaxHeaders.0/x");
    }

    #[test]
    fn trailing_slash_on_regular_file_is_refused() {
        let h = hdr("dir/", typeflag::REG, 0o644, 0, 0);
        assert!(h.encode().is_err());
    }
}
