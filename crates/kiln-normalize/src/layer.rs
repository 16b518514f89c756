//! Normalizing one layer into kiln's canonical form.
//!
//! The layer is read once, with Go `archive/tar` semantics: canonical headers (compact,
//! about 190 bytes an entry with its name and index) and where each entry's data lies are
//! kept in memory, the data itself is spilled to a temporary file, so memory does not grow
//! with the size of the layer's data. The entries are then written again, sorted in
//! layer order, through kiln-layer's Go-exact [`LayerWriter`]:
//!
//! - names relative without `./`, directories with a trailing `/`, the root entry dropped;
//! - mtimes truncated to whole seconds and clamped to SOURCE_DATE_EPOCH (older ones are
//!   kept, as BuildKit's rewrite-timestamp keeps them); no atime/ctime;
//! - uid/gid kept, user and group names dropped, mode without file-type bits;
//! - PAX records reduced to extended attributes (`SCHILY.xattr.*`);
//! - whiteouts with mode 0, owner 0:0 and mtime 0, as BuildKit writes them;
//! - hard links: of the names of one inode, the first in layer order carries the data
//!   (and the inode's metadata), the others link to it, whatever order the input had.
//!
//! Refused, as bad input: names that are absolute or contain `..`, duplicate names (an
//! extractor would silently keep the last one; kiln will not guess), entries inside a
//! symlink or a non-directory of the same layer, symlinks whose relative target climbs out
//! of the root, hard links to anything not earlier in the layer or to a directory, device
//! nodes (unless allowed), data shorter than its header claims.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;

use kiln_image::section::FileSection;
use kiln_layer::order::cmp_paths;
use kiln_layer::tar::{typeflag, TarError, TarReader};
use kiln_layer::{Compression, LayerInfo, LayerWriter};

use crate::canon::Canon;
use crate::error::{show, Error, Result};
use crate::names;
use crate::scrub::{Action, Scrubber};
use crate::source::{read_layer, Expected, ReadDigests};

/// What to do with device nodes (character and block special files).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Devices {
    /// Refuse layers that contain them (the default: images have no business shipping
    /// device nodes; runtimes create `/dev`).
    Refuse,
    /// Keep them, normalized like any other entry.
    Keep,
}

/// How to normalize a layer.
pub struct LayerOptions<'a> {
    /// SOURCE_DATE_EPOCH, seconds.
    pub epoch: i64,
    pub scrub: &'a Scrubber,
    pub devices: Devices,
    pub compression: Compression,
}

/// One entry a scrub rule changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scrubbed {
    pub rule: &'static str,
    pub path: String,
    /// "removed", "emptied" or "rewritten".
    pub action: &'static str,
}

/// What normalizing a layer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub entries_read: u64,
    pub entries_written: u64,
    /// Entries whose mtime was later than the epoch.
    pub mtimes_clamped: u64,
    /// Hard link entries written.
    pub hardlinks: u64,
    pub scrubbed: Vec<Scrubbed>,
}

/// A normalized layer: what was read and what was written.
#[derive(Clone, Debug)]
pub struct NormalizedLayer {
    pub input: ReadDigests,
    pub output: LayerInfo,
    pub stats: LayerStats,
}

/// Reads the blob from `blob` (verifying it against `expected`), spills file data to
/// `spill` and writes the canonical layer to `out`.
pub fn normalize_layer<R: Read + Send, W: Write + Send>(
    blob: R,
    expected: &Expected,
    spill: File,
    opts: &LayerOptions<'_>,
    out: W,
) -> Result<(W, NormalizedLayer)> {
    let (index, input) = read_layer(blob, expected, |tar| LayerIndex::read(tar, spill, opts))?;
    let (w, output, stats) = index.write(opts, out)?;
    Ok((
        w,
        NormalizedLayer {
            input,
            output,
            stats,
        },
    ))
}

/// Where an entry's bytes are.
#[derive(Clone, Debug)]
enum Data {
    None,
    Spill { offset: u64, len: u64 },
    Inline(Vec<u8>),
}

struct Entry {
    /// Canonical name, without trailing slash.
    path: Box<[u8]>,
    /// Canonical header; the name (and the target of hard links) are set when writing.
    canon: Canon,
    data: Data,
    /// For hard links: the entry holding the inode's data (never itself a link).
    link: Option<usize>,
}

/// A layer read into memory (headers) and the spill file (data).
pub struct LayerIndex {
    entries: Vec<Entry>,
    /// Indexes of `entries` in layer order.
    order: Vec<usize>,
    spill: File,
    stats: LayerStats,
}

/// Bytes of entry data copied at a time.
const CHUNK: usize = 256 * 1024;

/// Largest file a scrub rule rewrites in memory.
const MAX_REWRITE: u64 = 16 << 20;

fn spill_err(e: io::Error) -> Error {
    Error::env(format!("cannot write the temporary spill file: {e}"))
}

impl LayerIndex {
    /// Reads a tar stream, checking every entry.
    pub fn read(tar: &mut dyn Read, spill: File, opts: &LayerOptions<'_>) -> Result<LayerIndex> {
        let mut tr = TarReader::new(BufReader::with_capacity(1 << 16, tar));
        let mut stats = LayerStats::default();
        let mut entries: Vec<Entry> = Vec::new();
        // Hard links (entry, cleaned target), resolved once every name is known.
        let mut links: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        let mut pos: u64 = 0;
        {
            let mut w = BufWriter::with_capacity(1 << 20, &spill);
            while let Some(h) = tr.next_header().map_err(|e| Error::input(e.to_string()))? {
                stats.entries_read += 1;
                if h.typeflag == typeflag::X_GLOBAL_HEADER {
                    // Archive-wide metadata (a comment, say); no file.
                    continue;
                }
                let bad = |m: String| Error::input(format!("entry {}: {m}", show(&h.name)));
                let path = match names::clean(&h.name) {
                    Err(p) => return Err(bad(p.to_string())),
                    Ok(Some(p)) => p,
                    Ok(None) => {
                        if h.typeflag != typeflag::DIR {
                            return Err(bad("names the root, but is not a directory".into()));
                        }
                        // BuildKit never writes the root; its metadata is the runtime's.
                        continue;
                    }
                };
                let mut link_target = None;
                let mut flag = h.typeflag;
                match flag {
                    typeflag::REG | typeflag::REG_A | typeflag::CONT => flag = typeflag::REG,
                    typeflag::DIR | typeflag::FIFO => {}
                    typeflag::SYMLINK => {
                        if names::symlink_escapes(&path, &h.linkname) {
                            return Err(bad(format!(
                                "symlink to {} leads out of the image root",
                                show(&h.linkname)
                            )));
                        }
                    }
                    typeflag::LINK => {
                        let target = match names::clean(&h.linkname) {
                            Ok(Some(t)) => t,
                            Ok(None) => return Err(bad("hard link to the root directory".into())),
                            Err(p) => {
                                return Err(bad(format!(
                                    "hard link target {} {p}",
                                    show(&h.linkname)
                                )))
                            }
                        };
                        link_target = Some(target);
                    }
                    typeflag::CHAR | typeflag::BLOCK => {
                        if opts.devices == Devices::Refuse {
                            return Err(bad(format!(
                                "is a {} device node ({}:{}); kiln refuses device nodes in layers \
                                 (runtimes create /dev; --allow-device-nodes keeps them)",
                                if flag == typeflag::CHAR {
                                    "character"
                                } else {
                                    "block"
                                },
                                h.devmajor,
                                h.devminor
                            )));
                        }
                    }
                    other => {
                        return Err(bad(format!(
                            "has the unsupported entry type {:?}",
                            char::from(other)
                        )))
                    }
                }
                let whiteout = names::is_whiteout(&path);
                if whiteout && (flag != typeflag::REG || h.size != 0) {
                    return Err(bad("is a whiteout but not an empty regular file".into()));
                }
                let data = if flag == typeflag::REG && h.size > 0 {
                    let len = h.size as u64;
                    copy_entry(&mut tr, &mut w, len, &mut buf).map_err(|e| match e {
                        CopyError::Short(got) => bad(format!(
                            "the header says {len} bytes of data, but the layer ends after {got}"
                        )),
                        CopyError::Read(e) => bad(format!("cannot read its data: {e}")),
                        CopyError::Write(e) => spill_err(e),
                    })?;
                    let d = Data::Spill { offset: pos, len };
                    pos += len;
                    d
                } else {
                    Data::None
                };
                let canon = Canon::new(&h, flag, opts.epoch, whiteout);
                if h.mtime.is_some_and(|t| t.secs > opts.epoch) {
                    stats.mtimes_clamped += 1;
                }
                if let Some(t) = link_target {
                    links.push((entries.len(), t));
                }
                entries.push(Entry {
                    path: path.into_boxed_slice(),
                    canon,
                    data,
                    link: None,
                });
            }
            w.flush().map_err(spill_err)?;
        }
        // Stable: equal names stay in input order, so a duplicate names its first entry first.
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by(|&a, &b| cmp_paths(&entries[a].path, &entries[b].path));
        let entry_err =
            |e: &Entry, m: String| Error::input(format!("entry {}: {m}", show(&e.path)));
        for w in order.windows(2) {
            let (a, b) = (&entries[w[0]], &entries[w[1]]);
            if a.path == b.path {
                return Err(entry_err(
                    b,
                    format!(
                        "appears twice in the layer (as entries {} and {}); kiln refuses \
                         duplicate entries rather than guess which one counts",
                        w[0] + 1,
                        w[1] + 1
                    ),
                ));
            }
        }
        // In input order, so that a link's target has its own link resolved already.
        for (i, target) in links {
            let found = order.binary_search_by(|&j| cmp_paths(&entries[j].path, &target));
            let t = match found {
                Ok(k) if order[k] < i => order[k],
                _ => {
                    return Err(entry_err(
                        &entries[i],
                        format!(
                            "hard link to {}, which is not earlier in this layer",
                            show(&target)
                        ),
                    ))
                }
            };
            let root = entries[t].link.unwrap_or(t);
            if entries[root].canon.typeflag == typeflag::DIR {
                return Err(entry_err(
                    &entries[i],
                    format!("hard link to the directory {}", show(&target)),
                ));
            }
            entries[i].link = Some(root);
        }
        // Whatever is written below must not go through a link or a file of this layer. What
        // lies below `a` comes right after `a` in layer order (`/` sorts below every other
        // byte), so each non-directory needs one look at its successor (looking up every
        // ancestor of every entry cost length x depth: hours for a single 1 MiB name of
        // 512 Ki components).
        for w in order.windows(2) {
            let (e, next) = (&entries[w[0]], &entries[w[1]]);
            if e.canon.typeflag == typeflag::DIR
                || next.path.get(e.path.len()) != Some(&b'/')
                || !next.path.starts_with(&e.path)
            {
                continue;
            }
            let what = if e.canon.typeflag == typeflag::SYMLINK {
                "a symlink in this layer (writing it would follow the link)"
            } else {
                "not a directory in this layer"
            };
            return Err(entry_err(
                next,
                format!("is inside {}, which is {what}", show(&e.path)),
            ));
        }
        Ok(LayerIndex {
            entries,
            order,
            spill,
            stats,
        })
    }

    /// Number of entries read (root and global headers excluded).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn read_data(&self, d: &Data) -> io::Result<Vec<u8>> {
        match d {
            Data::None => Ok(Vec::new()),
            Data::Inline(v) => Ok(v.clone()),
            Data::Spill { offset, len } => {
                let mut v = vec![0u8; *len as usize];
                self.spill.read_exact_at(&mut v, *offset)?;
                Ok(v)
            }
        }
    }

    /// Applies scrub rules, canonicalizes hard links and writes the sorted layer to `out`.
    pub fn write<W: Write + Send>(
        mut self,
        opts: &LayerOptions<'_>,
        out: W,
    ) -> Result<(W, LayerInfo, LayerStats)> {
        let n = self.entries.len();
        let mut removed = vec![false; n];
        for (i, gone) in removed.iter_mut().enumerate() {
            let e = &self.entries[i];
            let regular = e.canon.typeflag == typeflag::REG && e.link.is_none();
            let Some((rule, action)) = opts.scrub.decide(&e.path, regular) else {
                continue;
            };
            let what = match action {
                Action::Remove => {
                    *gone = true;
                    "removed"
                }
                Action::Empty => {
                    self.entries[i].data = Data::Inline(Vec::new());
                    self.entries[i].canon.size = 0;
                    "emptied"
                }
                Action::Rewrite(f) => {
                    if e.canon.size as u64 > MAX_REWRITE {
                        return Err(Error::input(format!(
                            "entry {} (scrub {rule}): is {} bytes, more than the {MAX_REWRITE} a \
                             rewritten file may have",
                            show(&e.path),
                            e.canon.size
                        )));
                    }
                    let old = self.read_data(&e.data).map_err(spill_err)?;
                    let new = f(&old, opts.epoch).map_err(|m| {
                        Error::input(format!("entry {} (scrub {rule}): {m}", show(&e.path)))
                    })?;
                    self.entries[i].canon.size = new.len() as i64;
                    self.entries[i].data = Data::Inline(new);
                    "rewritten"
                }
            };
            self.stats.scrubbed.push(Scrubbed {
                rule,
                path: String::from_utf8_lossy(&self.entries[i].path).into_owned(),
                action: what,
            });
        }

        // Hard link groups: root -> every name of the inode still in the layer.
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(r) = e.link {
                groups.entry(r).or_insert_with(|| vec![r]).push(i);
            }
        }
        // For each entry of a group: (root, leader).
        let mut role: HashMap<usize, (usize, usize)> = HashMap::new();
        for (root, members) in &groups {
            let kept: Vec<usize> = members.iter().copied().filter(|&m| !removed[m]).collect();
            let Some(&leader) = kept
                .iter()
                .min_by(|&&a, &&b| cmp_paths(&self.entries[a].path, &self.entries[b].path))
            else {
                continue;
            };
            for m in kept {
                role.insert(m, (*root, leader));
            }
        }

        let mut order = std::mem::take(&mut self.order);
        order.retain(|&i| !removed[i]);

        let (w, info) = kiln_layer::pipeline::write_layer(out, opts.compression, |lw| {
            self.emit(&order, &role, lw)
        })?;
        Ok((w, info, self.stats))
    }
    /// Writes the entries in `order` (hard links as `role` says) to `lw`.
    fn emit<S: Write>(
        &mut self,
        order: &[usize],
        role: &HashMap<usize, (usize, usize)>,
        lw: &mut LayerWriter<S>,
    ) -> Result<()> {
        let write_err = |path: &[u8], e: TarError| match e {
            TarError::Io(e) => Error::env(format!("cannot write the layer: {e}")),
            other => Error::input(format!("entry {}: {other}", show(path))),
        };
        for &i in order {
            let e = &self.entries[i];
            let mut name = e.path.to_vec();
            if e.canon.typeflag == typeflag::DIR {
                name.push(b'/');
            }
            let (h, data) = match role.get(&i) {
                None => (e.canon.header(name), &e.data),
                Some(&(root, leader)) if leader == i => {
                    let r = &self.entries[root];
                    (r.canon.header(name), &r.data)
                }
                Some(&(root, leader)) => {
                    let mut h = self.entries[root].canon.header(name);
                    h.typeflag = typeflag::LINK;
                    h.linkname = self.entries[leader].path.to_vec();
                    h.size = 0;
                    self.stats.hardlinks += 1;
                    (h, &Data::None)
                }
            };
            lw.write_header(&h).map_err(|err| write_err(&e.path, err))?;
            if h.typeflag == typeflag::REG {
                match data {
                    Data::None => {}
                    Data::Inline(v) => lw.write_data(v).map_err(|err| write_err(&e.path, err))?,
                    Data::Spill { offset, len } => lw
                        .copy_data(FileSection::new(&self.spill, *offset, *len))
                        .map_err(|err| match err {
                            TarError::Io(io) => {
                                Error::env(format!("cannot read back the spill file: {io}"))
                            }
                            other => write_err(&e.path, other),
                        })?,
                }
            }
            self.stats.entries_written += 1;
        }
        Ok(())
    }
}

enum CopyError {
    /// The stream ended after this many bytes.
    Short(u64),
    /// The stream could not be read (corrupt compression, say).
    Read(io::Error),
    Write(io::Error),
}

fn copy_entry<R: Read, W: Write>(
    r: &mut R,
    w: &mut W,
    len: u64,
    buf: &mut [u8],
) -> std::result::Result<(), CopyError> {
    let mut done = 0u64;
    while done < len {
        let want = ((len - done) as usize).min(buf.len());
        let n = match r.read(&mut buf[..want]) {
            Ok(0) => return Err(CopyError::Short(done)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(CopyError::Short(done))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
            Ok(n) => n,
        };
        w.write_all(&buf[..n]).map_err(CopyError::Write)?;
        done += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_layer::tar::{Format, Header, Timestamp};
    use kiln_testkit::tars::archive as tar;

    const EPOCH: i64 = 1_700_000_000;

    fn hdr(flag: u8, name: &str, size: usize, mtime: i64) -> Header {
        Header {
            typeflag: flag,
            name: name.as_bytes().to_vec(),
            size: size as i64,
            mode: 0o644,
            mtime: Some(Timestamp::from_secs(mtime)),
            ..Header::default()
        }
    }

    fn file(name: &str, data: &'static [u8], mtime: i64) -> (Header, &'static [u8]) {
        (hdr(typeflag::REG, name, data.len(), mtime), data)
    }

    fn dir(name: &str, mtime: i64) -> (Header, &'static [u8]) {
        let mut h = hdr(typeflag::DIR, name, 0, mtime);
        h.mode = 0o755;
        (h, b"")
    }

    fn link(flag: u8, name: &str, target: &str) -> (Header, &'static [u8]) {
        let mut h = hdr(flag, name, 0, 5);
        h.linkname = target.as_bytes().to_vec();
        (h, b"")
    }

    fn norm_with(
        input: &[u8],
        scrub: &Scrubber,
        devices: Devices,
    ) -> Result<(Vec<u8>, LayerStats)> {
        let opts = LayerOptions {
            epoch: EPOCH,
            scrub,
            devices,
            compression: Compression::Uncompressed,
        };
        let spill = tempfile::tempfile().unwrap();
        let (out, l) = normalize_layer(input, &Expected::default(), spill, &opts, Vec::new())?;
        assert_eq!(l.output.diff_id, kiln_digest::Digest::of(&out));
        Ok((out, l.stats))
    }

    fn norm(input: &[u8]) -> Result<Vec<u8>> {
        norm_with(input, &Scrubber::none(), Devices::Refuse).map(|(o, _)| o)
    }

    /// (name, type, mode, uid, mtime, linkname, data) of an entry.
    type Listed = (String, char, i64, i64, i64, String, Vec<u8>);

    fn list(t: &[u8]) -> Vec<Listed> {
        let mut r = TarReader::new(t);
        let mut out = Vec::new();
        while let Some(h) = r.next_header().unwrap() {
            let mut data = Vec::new();
            r.read_to_end(&mut data).unwrap();
            out.push((
                String::from_utf8_lossy(&h.name).into_owned(),
                h.typeflag as char,
                h.mode,
                h.uid,
                h.mtime.map_or(0, |t| t.secs),
                String::from_utf8_lossy(&h.linkname).into_owned(),
                data,
            ));
        }
        out
    }

    #[test]
    fn order_times_and_header_dialect_do_not_matter() {
        let mut fancy = hdr(typeflag::REG, "./etc/hostname", 5, EPOCH + 999);
        fancy.uname = b"root".to_vec();
        fancy.gname = b"root".to_vec();
        fancy.mode = 0o100644;
        fancy.atime = Some(Timestamp::from_secs(EPOCH + 5));
        fancy.format = Format::PAX;
        fancy.mtime = Some(Timestamp {
            secs: EPOCH + 999,
            nanos: 12345,
        });
        let a = tar(&[
            dir("./", 1),
            (fancy, b"host\n"),
            dir("etc/", EPOCH + 10),
            file("a-b", b"x", 100),
            dir("a", 50),
            file("a/b", b"y", EPOCH),
        ]);
        let b = tar(&[
            file("a/b", b"y", EPOCH),
            dir("a/", 50),
            file("a-b", b"x", 100),
            file("etc/hostname", b"host\n", EPOCH + 1),
            dir("etc", EPOCH + 20),
        ]);
        let na = norm(&a).unwrap();
        let nb = norm(&b).unwrap();
        assert_eq!(na, nb);
        let l = list(&na);
        let names: Vec<&str> = l.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["a/", "a/b", "a-b", "etc/", "etc/hostname"]);
        // Older times kept, newer ones clamped; mode without type bits.
        assert_eq!(l[0].4, 50);
        assert_eq!(l[2].4, 100);
        assert_eq!(l[4].4, EPOCH);
        assert_eq!(l[4].2, 0o644);
        // Plain USTAR, no PAX header: 5 entries, file data blocks, end blocks.
        assert_eq!(na.len(), 512 * (5 + 3) + 1024);
        // Idempotent.
        assert_eq!(norm(&na).unwrap(), na);
    }

    #[test]
    fn hard_links_are_canonical() {
        let a = tar(&[file("z", b"data", 7), link(typeflag::LINK, "a", "z")]);
        let b = tar(&[file("a", b"data", 7), link(typeflag::LINK, "z", "a")]);
        let na = norm(&a).unwrap();
        assert_eq!(na, norm(&b).unwrap());
        let l = list(&na);
        assert_eq!(
            (l[0].0.as_str(), l[0].1, l[0].6.as_slice()),
            ("a", '0', &b"data"[..])
        );
        assert_eq!((l[1].0.as_str(), l[1].1, l[1].5.as_str()), ("z", '1', "a"));
        assert_eq!(l[1].4, 7, "a link carries the inode's metadata");
        // A chain of links resolves to the file.
        let c = tar(&[
            file("m", b"data", 7),
            link(typeflag::LINK, "z", "m"),
            link(typeflag::LINK, "a", "z"),
        ]);
        let l = list(&norm(&c).unwrap());
        assert_eq!(
            l.iter()
                .map(|e| (e.0.as_str(), e.1, e.5.as_str()))
                .collect::<Vec<_>>(),
            [("a", '0', ""), ("m", '1', "a"), ("z", '1', "a")]
        );
    }

    #[test]
    fn whiteouts_and_xattrs() {
        let mut w = hdr(typeflag::REG, "d/.wh.gone", 0, EPOCH - 5);
        w.mode = 0o644;
        w.uid = 3;
        let mut x = hdr(typeflag::REG, "bin/ping", 1, 9);
        x.pax_records.insert(
            b"SCHILY.xattr.security.capability".to_vec(),
            b"\x01\x02".to_vec(),
        );
        x.pax_records
            .insert(b"comment".to_vec(), b"dropped".to_vec());
        let out = norm(&tar(&[(w, b""), (x, b"p")])).unwrap();
        let mut r = TarReader::new(&out[..]);
        let h = r.next_header().unwrap().unwrap();
        assert_eq!(h.name, b"bin/ping");
        assert_eq!(
            h.pax_records.keys().collect::<Vec<_>>(),
            [&b"SCHILY.xattr.security.capability".to_vec()]
        );
        let mut d = Vec::new();
        r.read_to_end(&mut d).unwrap();
        let h = r.next_header().unwrap().unwrap();
        assert_eq!(h.name, b"d/.wh.gone");
        assert_eq!((h.mode, h.uid, h.mtime.unwrap().secs), (0, 0, 0));
    }

    fn refused(entries: &[(Header, &[u8])], needle: &str) {
        let err = norm(&tar(entries)).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Input);
        assert!(err.message().contains(needle), "{err}");
    }

    #[test]
    fn hostile_entries_are_refused() {
        refused(&[file("/etc/passwd", b"x", 1)], "absolute path");
        refused(&[file("a/../../x", b"x", 1)], "\"..\"");
        refused(&[file("a", b"x", 1), file("./a", b"y", 1)], "appears twice");
        refused(
            &[link(typeflag::SYMLINK, "a/b", "../../etc")],
            "leads out of the image root",
        );
        refused(
            &[
                link(typeflag::SYMLINK, "etc", "/host/etc"),
                file("etc/passwd", b"x", 1),
            ],
            "which is a symlink in this layer",
        );
        refused(
            &[file("f", b"x", 1), file("f/g", b"x", 1)],
            "not a directory",
        );
        refused(&[link(typeflag::LINK, "a", "../../etc/shadow")], "\"..\"");
        refused(
            &[link(typeflag::LINK, "a", "b"), file("b", b"x", 1)],
            "not earlier in this layer",
        );
        refused(
            &[dir("d", 1), link(typeflag::LINK, "a", "d")],
            "hard link to the directory",
        );
        refused(
            &[link(typeflag::LINK, "a", "a")],
            "not earlier in this layer",
        );
        // "f-x" sorts between "f" and "f/g" by bytes, but not in layer order.
        refused(
            &[
                file("f-x", b"x", 1),
                file("f/g", b"x", 1),
                file("f", b"x", 1),
            ],
            "entry \"f/g\": is inside \"f\", which is not a directory",
        );
        refused(
            &[
                file("b", b"x", 1),
                file("a", b"x", 1),
                file("./b", b"y", 1),
                file("./a", b"y", 1),
            ],
            "entry \"a\": appears twice in the layer (as entries 2 and 4)",
        );
        let mut dev = hdr(typeflag::CHAR, "dev/null", 0, 1);
        dev.devmajor = 1;
        dev.devminor = 3;
        refused(&[(dev.clone(), b"")], "device node (1:3)");
        let kept = norm_with(&tar(&[(dev, b"")]), &Scrubber::none(), Devices::Keep).unwrap();
        assert_eq!(list(&kept.0)[0].1, '3');
        refused(&[(hdr(b'V', "vol", 0, 1), b"")], "unsupported entry type");
        refused(&[file("x/.wh.y", b"data", 1)], "whiteout");
    }

    #[test]
    fn a_header_claiming_more_data_than_there_is() {
        let h = hdr(typeflag::REG, "big", 0, 1);
        let mut block = Header { size: 1 << 40, ..h }.encode().unwrap().to_bytes();
        block.extend_from_slice(&[b'z'; 700]);
        let err = norm(&block).unwrap_err();
        assert!(
            err.message()
                .contains("says 1099511627776 bytes of data, but the layer ends after 700"),
            "{err}"
        );
    }

    #[test]
    fn scrub_rules_apply() {
        let scrub = Scrubber::parse("apt-logs,machine-id,shadow-dates").unwrap();
        let input = tar(&[
            dir("var/log/apt", 1),
            file("var/log/apt/history.log", b"Start-Date: today", 1),
            file("etc/machine-id", b"0123456789abcdef\n", 1),
            file("etc/shadow", b"root:*:19000:0:99999:7:::\n", 1),
            link(typeflag::LINK, "var/log/keep", "var/log/apt/history.log"),
        ]);
        let (out, stats) = norm_with(&input, &scrub, Devices::Refuse).unwrap();
        let l = list(&out);
        let names: Vec<(&str, char)> = l.iter().map(|e| (e.0.as_str(), e.1)).collect();
        assert_eq!(
            names,
            [
                ("etc/machine-id", '0'),
                ("etc/shadow", '0'),
                ("var/log/apt/", '5'),
                ("var/log/keep", '0'),
            ]
        );
        assert!(l[0].6.is_empty());
        assert_eq!(l[1].6, b"root:*:19675:0:99999:7:::\n");
        assert_eq!(
            l[3].6, b"Start-Date: today",
            "the surviving link now holds the data"
        );
        assert_eq!(stats.scrubbed.len(), 3);
        assert_eq!(stats.scrubbed[0].action, "removed");
    }
}
