//! Mutated layer tars and image tarballs never panic, hang or allocate without bound: the tar
//! reader, BuildKit's rewrite-timestamp conversion, `normalize_layer` and the image loader
//! return, and every error says something. Deterministic (a fixed-seed xorshift from
//! kiln-testkit). Inputs that once failed are kept in testdata/fuzz-regressions; the
//! coverage-guided targets these complement are in fuzz/.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_digest::Digest;
use kiln_image::import::{load, ImageSource, PlatformIndex};
use kiln_layer::rewrite::rewrite_tar;
use kiln_layer::tar::{typeflag, Format, Header, TarWriter, Timestamp};
use kiln_layer::Compression;
use kiln_normalize::{normalize_layer, Devices, Expected, LayerOptions, Scrubber};
use kiln_testkit::rng::Rng;
use kiln_testkit::tars;
use kiln_testkit::tars::archive as tar;

const BLOCK: usize = 512;
const EPOCH: i64 = 1_700_000_000;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

// ---------------------------------------------------------------------------------------
// Seeds

fn hdr(flag: u8, name: &str, size: usize) -> Header {
    Header {
        typeflag: flag,
        name: name.as_bytes().to_vec(),
        size: size as i64,
        mode: 0o644,
        mtime: Some(Timestamp::from_secs(1_600_000_000)),
        ..Header::default()
    }
}

fn link(flag: u8, name: &str, target: &str) -> Header {
    let mut h = hdr(flag, name, 0);
    h.linkname = target.as_bytes().to_vec();
    h
}

/// Small valid layers in each dialect the reader knows, plus the tars in testdata.
fn seeds() -> Vec<Vec<u8>> {
    let long = format!("d/{}/file", "x".repeat(150));
    let mut dev = hdr(typeflag::CHAR, "dev/null", 0);
    (dev.devmajor, dev.devminor) = (1, 3);
    let mut dir = hdr(typeflag::DIR, "d/", 0);
    dir.mode = 0o755;
    let ustar = tar(&[
        (dir.clone(), b""),
        (hdr(typeflag::REG, "d/f", 5), b"hello"),
        (link(typeflag::SYMLINK, "d/s", "f"), b""),
        (link(typeflag::LINK, "d/h", "d/f"), b""),
        (hdr(typeflag::FIFO, "p", 0), b""),
        (hdr(typeflag::REG, "a/.wh.b", 0), b""),
        (
            hdr(typeflag::REG, "etc/shadow", 26),
            b"root:*:19000:0:99999:7:::\n",
        ),
        (hdr(typeflag::REG, "etc/machine-id", 5), b"0123\n"),
        (dev.clone(), b""),
    ]);

    let mut x = hdr(typeflag::REG, &long, 3);
    x.uid = 1 << 22;
    x.mtime = Some(Timestamp {
        secs: 1_600_000_000,
        nanos: 5,
    });
    x.pax_records
        .insert(b"SCHILY.xattr.user.a".to_vec(), b"b".to_vec());
    x.pax_records.insert(b"comment".to_vec(), b"c".to_vec());
    x.format = Format::PAX;
    let global = Header {
        typeflag: typeflag::X_GLOBAL_HEADER,
        pax_records: [(b"comment".to_vec(), b"global".to_vec())].into(),
        ..Header::default()
    };
    let pax = tar(&[
        (global, b""),
        (dir.clone(), b""),
        (x, b"abc"),
        (link(typeflag::SYMLINK, "d/l", &"y".repeat(120)), b""),
        (link(typeflag::LINK, "d/h", &long), b""),
    ]);

    let mut g = hdr(typeflag::REG, &long, 4);
    g.uid = 1 << 40;
    g.gid = -7;
    g.atime = Some(Timestamp::from_secs(-5));
    g.ctime = Some(Timestamp::from_secs(1 << 40));
    g.format = Format::GNU;
    let mut gl = link(typeflag::SYMLINK, "d/gl", &"z".repeat(130));
    gl.format = Format::GNU;
    let mut gd = dir;
    gd.format = Format::GNU;
    let gnu = tar(&[(gd, b""), (g, b"gnu!"), (gl, b"")]);

    let mut out = vec![ustar, pax, gnu];
    for dir in ["tar-gnu", "malicious"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(testdata().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "tar"))
            .collect();
        files.sort();
        out.extend(files.iter().map(|p| std::fs::read(p).unwrap()));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Mutations

/// Gives a block the checksum of its bytes (Go accepts the unsigned sum).
fn fix_checksum(blk: &mut [u8]) {
    blk[148..156].fill(b' ');
    let sum: u32 = blk.iter().map(|&b| u32::from(b)).sum();
    blk[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn checksum_ok(blk: &[u8]) -> bool {
    let mut b = blk.to_vec();
    fix_checksum(&mut b);
    b[148..156] == blk[148..156] && blk.iter().any(|&c| c != 0)
}

/// Offsets of the blocks that look like headers.
fn headers(t: &[u8]) -> Vec<usize> {
    (0..t.len() / BLOCK)
        .map(|i| i * BLOCK)
        .filter(|&o| checksum_ok(&t[o..o + BLOCK]))
        .collect()
}

/// Header fields (offset, length) worth rewriting.
const FIELDS: &[(usize, usize)] = &[
    (0, 100),   // name
    (100, 8),   // mode
    (108, 8),   // uid
    (116, 8),   // gid
    (124, 12),  // size
    (136, 12),  // mtime
    (156, 1),   // typeflag
    (157, 100), // linkname
    (257, 8),   // magic + version
    (329, 8),   // devmajor
    (337, 8),   // devminor
    (345, 155), // prefix (GNU: atime, ctime)
];

fn numeric_values(len: usize) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        vec![],
        b"0".to_vec(),
        b"7".repeat(len),
        b"7".repeat(len - 1),
        b"8".to_vec(),
        b" 1 2 ".to_vec(),
        b"-1".to_vec(),
        vec![b' '; len],
        vec![0xff; len],
        vec![0x80; len],
    ];
    // Base-256: the largest and smallest values, and one just too large.
    let mut big = vec![0xff; len];
    big[0] = 0xbf;
    v.push(big);
    let mut over = vec![0u8; len];
    over[0] = 0x80;
    over[1] = 0x80;
    v.push(over);
    let mut neg = vec![0u8; len];
    neg[0] = 0xff;
    neg[len - 1] = 0x01;
    v.push(neg);
    v.push(b"77777777777".to_vec());
    v.push(b"1000".to_vec());
    v
}

fn string_values() -> Vec<Vec<u8>> {
    vec![
        vec![],
        b"/".to_vec(),
        b"/etc/passwd".to_vec(),
        b"..".to_vec(),
        b"../../x".to_vec(),
        b"./".to_vec(),
        b"a/../../b".to_vec(),
        b"d".to_vec(),
        b"d/f".to_vec(),
        b"d/f/g".to_vec(),
        b".wh..wh..opq".to_vec(),
        "\u{fc}n\u{ef}".as_bytes().to_vec(),
        vec![b'a'; 100],
        b"ustar\x0000".to_vec(),
        b"ustar  \0".to_vec(),
        b"././@LongLink".to_vec(),
    ]
}

const TYPEFLAGS: &[u8] = b"0123456789xgLKSVAMNDI\0";

/// PAX records, valid and not, and ones that are valid syntax with hostile values.
const PAX_RECORDS: &[&[u8]] = &[
    b"path=a/b",
    b"path=/etc/passwd",
    b"path=../x",
    b"linkpath=../../../etc",
    b"size=-1",
    b"size=9223372036854775807",
    b"size=99999999999999999999",
    b"size=12",
    b"size=",
    b"uid=-5",
    b"gid=x",
    b"mtime=-9223372036854775808.5",
    b"mtime=9223372036854775807.9",
    b"mtime=1.",
    b"mtime=.5",
    b"mtime=1.1234567891234",
    b"mtime=-0.1",
    b"atime=1e9",
    b"ctime=",
    b"GNU.sparse.map=0,1",
    b"GNU.sparse.offset=0",
    b"GNU.sparse.numbytes=1",
    b"GNU.sparse.major=1",
    b"SCHILY.xattr.user.x=\x00\xff",
    b"SCHILY.xattr.=",
    b"uname=\xff",
    b"comment=x",
    b"=x",
    b"novalue",
];

/// One PAX record, its length prefix correct unless `skew` says otherwise.
fn pax_record(kv: &[u8], skew: i64) -> Vec<u8> {
    let base = kv.len() + 2;
    let mut n = base + 1;
    while n.to_string().len() + base != n {
        n += 1;
    }
    let n = (n as i64 + skew).max(0);
    let mut r = format!("{n} ").into_bytes();
    r.extend_from_slice(kv);
    r.push(b'\n');
    r
}

/// A raw extension header (PAX `x`/`g` or GNU `L`/`K`) with `data`, then a file entry.
fn raw_extension(flag: u8, data: &[u8], file: &Header, file_data: &[u8]) -> Vec<u8> {
    let mut blk = [0u8; BLOCK];
    blk[..14].copy_from_slice(b"PaxHeaders.0/f");
    blk[100..108].copy_from_slice(b"0000644\0");
    blk[108..116].copy_from_slice(b"0000000\0");
    blk[116..124].copy_from_slice(b"0000000\0");
    blk[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    blk[136..148].copy_from_slice(b"00000000000\0");
    blk[156] = flag;
    blk[257..265].copy_from_slice(b"ustar\x0000");
    fix_checksum(&mut blk);
    let mut out = blk.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(BLOCK), 0);
    out.extend_from_slice(&tar(&[(file.clone(), file_data)]));
    out
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut t = rng.pick(seeds).clone();
    let hs = headers(&t);
    match rng.below(8) {
        // Random bytes anywhere: most die at the checksum.
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(t.len());
                t[i] ^= 1 << rng.below(8);
            }
        }
        // Random bytes in a header, checksum fixed so the fields get parsed.
        1 if !hs.is_empty() => {
            let o = *rng.pick(&hs);
            for _ in 0..1 + rng.below(4) {
                let i = o + rng.below(BLOCK);
                t[i] = rng.next_u64() as u8;
            }
            fix_checksum(&mut t[o..o + BLOCK]);
        }
        // One field rewritten with an interesting value, checksum fixed.
        2 | 3 if !hs.is_empty() => {
            let o = *rng.pick(&hs);
            let (f, len) = *rng.pick(FIELDS);
            let v = match f {
                156 => vec![*rng.pick(TYPEFLAGS)],
                0 | 157 | 257 | 345 => rng.pick(&string_values()).clone(),
                _ => rng.pick(&numeric_values(len)).clone(),
            };
            let field = &mut t[o + f..o + f + len];
            field.fill(0);
            let n = v.len().min(len);
            field[..n].copy_from_slice(&v[..n]);
            fix_checksum(&mut t[o..o + BLOCK]);
        }
        // Truncated: at a block boundary, inside a header, or anywhere.
        4 => {
            let cut = match rng.below(3) {
                0 => rng.below(t.len() / BLOCK + 1) * BLOCK,
                1 if !hs.is_empty() => *rng.pick(&hs) + rng.below(BLOCK),
                _ => rng.below(t.len() + 1),
            };
            t.truncate(cut.min(t.len()));
        }
        // Blocks copied over others, zero blocks inserted, headers duplicated.
        5 => {
            let blocks = t.len() / BLOCK;
            if blocks > 1 {
                let (a, b) = (rng.below(blocks) * BLOCK, rng.below(blocks) * BLOCK);
                let src = t[a..a + BLOCK].to_vec();
                if rng.below(2) == 0 {
                    t[b..b + BLOCK].copy_from_slice(&src);
                } else {
                    let at = if rng.below(2) == 0 {
                        vec![0u8; BLOCK]
                    } else {
                        src
                    };
                    t.splice(b..b, at);
                }
            }
        }
        // A fresh PAX or GNU extension header before a file.
        _ => {
            let flag = *rng.pick(b"xxxgLK");
            let mut data = Vec::new();
            if flag == typeflag::GNU_LONG_NAME || flag == typeflag::GNU_LONG_LINK {
                let v = string_values();
                let s: &Vec<u8> = rng.pick(&v);
                data.extend_from_slice(s);
                if rng.below(2) == 0 {
                    data.push(0);
                }
            } else {
                for _ in 0..1 + rng.below(4) {
                    let skew = match rng.below(6) {
                        0 => -1,
                        1 => 1,
                        2 => -100,
                        _ => 0,
                    };
                    let kv = *rng.pick(PAX_RECORDS);
                    data.extend(pax_record(kv, skew));
                }
            }
            let names = ["f", "d/", "a/.wh.x", "etc/shadow"];
            let name = *rng.pick(&names);
            let flag2 = if name.ends_with('/') {
                typeflag::DIR
            } else {
                typeflag::REG
            };
            let size = if flag2 == typeflag::REG { 12 } else { 0 };
            let file = hdr(flag2, name, size);
            t = raw_extension(flag, &data, &file, &b"root:*:1:0::\n"[..size]);
            if rng.below(3) == 0 {
                let cut = rng.below(t.len());
                t.truncate(cut);
            }
        }
    }
    t
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

// ---------------------------------------------------------------------------------------
// What runs on each input

fn rewrite(t: &[u8], epoch: Option<Timestamp>) {
    let mut w = TarWriter::new(Vec::new());
    if let Err(e) = rewrite_tar(t, epoch, &mut w) {
        assert!(!e.to_string().is_empty());
    }
}

/// Normalizes `t`; `Err` carries the message (checked non-empty).
fn normalize(t: &[u8], variant: usize) -> Result<Vec<u8>, String> {
    let scrub = if variant & 1 != 0 {
        Scrubber::parse("all").unwrap()
    } else {
        Scrubber::none()
    };
    let opts = LayerOptions {
        epoch: EPOCH,
        scrub: &scrub,
        devices: if variant & 2 != 0 {
            Devices::Keep
        } else {
            Devices::Refuse
        },
        compression: Compression::Uncompressed,
    };
    let spill = tempfile::tempfile().unwrap();
    match normalize_layer(t, &Expected::default(), spill, &opts, Vec::new()) {
        Ok((out, _)) => Ok(out),
        Err(e) => {
            assert!(!e.message().is_empty(), "an error without a message");
            Err(e.message().to_string())
        }
    }
}

fn check(t: &[u8], variant: usize) {
    tars::drain(t);
    rewrite(t, None);
    rewrite(t, Some(Timestamp::from_secs(EPOCH)));
    if let Ok(out) = normalize(t, variant) {
        // What kiln writes, it reads back to the same bytes.
        assert_eq!(normalize(&out, variant).as_ref(), Ok(&out));
    }
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn seeds_are_valid_layers() {
    let s = seeds();
    for t in &s[..3] {
        assert!(tars::drain(t) >= 3);
        normalize(t, 2).unwrap();
    }
    assert!(s.len() > 5, "testdata tars not found");
}

#[test]
fn mutated_tars_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x6b69_6c6e_2d66_757a);
    let (mut ok, mut err) = (0, 0);
    for i in 0..6000 {
        let t = mutate(&mut rng, &seeds);
        // Through read_layer's gzip and zstd sniffing, sometimes cut short or damaged.
        let t = match i % 16 {
            0 => gzip(&t),
            8 => ruzstd::encoding::compress_to_vec(
                &t[..],
                ruzstd::encoding::CompressionLevel::Fastest,
            ),
            _ => t,
        };
        let mut t = t;
        if i % 16 == 0 || i % 16 == 8 {
            match i % 64 {
                0 | 8 => t.truncate(t.len() * 2 / 3),
                16 | 24 => {
                    let at = 4 + rng.below(t.len() - 4);
                    t[at] ^= 1 << rng.below(8);
                }
                _ => {}
            }
        }
        tars::drain(&t);
        rewrite(&t, Some(Timestamp::from_secs(EPOCH)));
        match normalize(&t, i) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    // The mutations reach past the checksum: some inputs still normalize, most do not.
    eprintln!("{ok} mutated layers normalized, {err} refused");
    assert!(ok > 500 && err > 1500, "ok {ok}, err {err}");
}

/// Minimized inputs that once panicked (see the README beside them).
#[test]
fn fuzz_regressions() {
    let dir = testdata().join("fuzz-regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    files.sort();
    for p in &files {
        let t = std::fs::read(p).unwrap();
        for variant in 0..4 {
            check(&t, variant);
        }
    }
}

fn pax_file(records: &[&[u8]], name: &str, data: &[u8]) -> Vec<u8> {
    let recs: Vec<u8> = records.iter().flat_map(|r| pax_record(r, 0)).collect();
    raw_extension(
        typeflag::X_HEADER,
        &recs,
        &hdr(typeflag::REG, name, data.len()),
        data,
    )
}

#[test]
fn extreme_pax_times_are_errors_or_saturate() {
    // One second before i64::MIN seconds does not exist.
    let t = pax_file(&[b"mtime=-9223372036854775808.5"], "f", b"");
    let err = normalize(&t, 0).unwrap_err();
    assert!(err.contains("invalid PAX value"), "{err}");
    check(&t, 0);
    // The last second rounds to itself when a header without a format is written again.
    let mut t = pax_file(&[b"mtime=9223372036854775807.9"], "f", b"");
    // A non-ASCII main block makes the format unknown (Go's reader does the same).
    t[BLOCK + 99] = 0xff;
    fix_checksum(&mut t[BLOCK..2 * BLOCK]);
    check(&t, 0);
}

#[test]
fn a_long_deep_name_is_handled_in_linear_time() {
    // A 1 MiB PAX path of 512 Ki components: checking each ancestor of each entry cost
    // O(length x depth) (hours); the check is now by range over the sorted names.
    let deep = "a/".repeat((1 << 19) - 8) + "f";
    let rec = format!("path={deep}");
    let t = pax_file(&[rec.as_bytes()], "f", b"x");
    let start = Instant::now();
    normalize(&t, 0).unwrap();
    let mut entries = vec![(hdr(typeflag::REG, "a/a", 1), &b"x"[..])];
    let mut h = hdr(typeflag::REG, "a/a", 1);
    h.name = deep.clone().into_bytes();
    entries.push((h, b"x"));
    let err = normalize(&tar(&entries), 0).unwrap_err();
    assert!(
        err.contains("is inside \"a/a\", which is not a directory"),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// Image tarballs

/// Writes a tarball with these members.
fn image_tar(dir: &Path, members: &[(String, Vec<u8>)]) -> PathBuf {
    let entries: Vec<(Header, &[u8])> = members
        .iter()
        .map(|(n, b)| (hdr(typeflag::REG, n, b.len()), &b[..]))
        .collect();
    let p = dir.join("image.tar");
    std::fs::write(&p, tar(&entries)).unwrap();
    p
}

fn blob(b: Vec<u8>) -> (Digest, (String, Vec<u8>)) {
    let d = Digest::of(&b);
    (d, (format!("blobs/sha256/{}", d.hex()), b))
}

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn index_of(d: Digest, size: usize) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{INDEX}","digest":"{d}","size":{size}}}]}}"#
    )
    .into_bytes()
}

#[test]
fn deeply_nested_indexes_are_refused_not_a_stack_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let mut members = Vec::new();
    let (mut d, mut size) = (Digest::of(b"none"), 4);
    for _ in 0..20_000 {
        let (nd, m) = blob(index_of(d, size));
        size = m.1.len();
        d = nd;
        members.push(m);
    }
    members.push(("index.json".into(), index_of(d, size)));
    let p = image_tar(dir.path(), &members);
    let source = ImageSource::open(p.to_str().unwrap()).unwrap();
    let err = load(&source, None, None).unwrap_err().to_string();
    assert!(err.contains("nested"), "{err}");
    assert!(PlatformIndex::read(&source).is_err());
}

#[test]
fn a_docker_save_manifest_naming_one_config_many_times_is_read_once() {
    // 400k records naming a 4 MiB config: each used to read and parse it again (TBs).
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"comment":"{}"}}"#,
        "x".repeat(4 << 20)
    );
    let mut mj = b"[".to_vec();
    for i in 0..400_000 {
        if i > 0 {
            mj.push(b',');
        }
        mj.extend_from_slice(br#"{"Config":"c.json","Layers":["l.tar"]}"#);
    }
    mj.push(b']');
    let members = vec![
        ("manifest.json".to_string(), mj),
        ("c.json".to_string(), config.into_bytes()),
        (
            "l.tar".to_string(),
            tar(&[(hdr(typeflag::REG, "f", 1), b"x")]),
        ),
    ];
    let p = image_tar(dir.path(), &members);
    let start = Instant::now();
    let source = ImageSource::open(p.to_str().unwrap()).unwrap();
    let err = load(&source, None, None).unwrap_err().to_string();
    assert!(err.contains("several images"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}
