//! Deterministic test inputs, byte for byte the same as testdata/goflate/gen/corpus.go
//! (change both together).

#![allow(dead_code)]

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// splitmix64.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: [&str; 32] = [
    "the",
    "layer",
    "image",
    "build",
    "kiln",
    "container",
    "digest",
    "sha256",
    "gzip",
    "deflate",
    "window",
    "hash",
    "chain",
    "token",
    "block",
    "huffman",
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "usr/lib",
    "/etc/passwd",
    "0755",
    "root",
    "{\"key\":",
    "\"value\"},",
    "= 42;",
    "return",
];

pub fn random(r: &mut Rng, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        out.extend_from_slice(&r.next().to_le_bytes());
    }
    out.truncate(n);
    out
}

pub fn text(r: &mut Rng, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 32);
    while out.len() < n {
        out.extend_from_slice(WORDS[r.below(WORDS.len() as u64) as usize].as_bytes());
        out.push(if r.below(10) == 0 { b'\n' } else { b' ' });
    }
    out.truncate(n);
    out
}

pub fn periodic(r: &mut Rng, n: usize, p: usize) -> Vec<u8> {
    let pat = random(r, p);
    (0..n).map(|i| pat[i % p]).collect()
}

pub fn mixed(r: &mut Rng, n: usize) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(n);
    while out.len() < n {
        let kind = r.below(5);
        let span = if r.below(4) == 0 { 65536 } else { 4096 };
        let l = (1 + r.below(span)) as usize;
        match kind {
            0 => out.extend(text(r, l)),
            1 => out.extend(random(r, l)),
            2 => out.resize(out.len() + l, 0),
            3 => {
                let p = (1 + r.below(64)) as usize;
                out.extend(periodic(r, l, p));
            }
            _ => {
                if out.is_empty() {
                    out.resize(l, 0);
                } else {
                    let start = r.below(out.len() as u64) as usize;
                    let end = (start + l).min(out.len());
                    out.extend_from_within(start..end);
                }
            }
        }
    }
    out.truncate(n);
    out
}

/// A tar-like stream of at least `n` bytes and kiln's write sizes for it.
pub fn tar(r: &mut Rng, n: usize) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut writes = Vec::new();
    let mut i = 0;
    while out.len() < n {
        let kind = r.below(4);
        let size = if r.below(8) == 0 {
            r.below(1 << 20)
        } else {
            r.below(16384)
        } as usize;
        let mut h = [0u8; 512];
        let mut put = |at: usize, s: &[u8]| h[at..at + s.len()].copy_from_slice(s);
        put(0, format!("dir{}/file{:06}.dat", i % 7, i).as_bytes());
        put(100, b"0000644\0");
        put(108, b"0000000\0");
        put(116, b"0000000\0");
        put(124, format!("{size:011o}\0").as_bytes());
        put(136, b"14524413200\0");
        put(148, b"        ");
        put(156, b"0");
        put(257, b"ustar\x0000");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        writes.push(512);
        let data = match kind {
            0 => text(r, size),
            1 => random(r, size),
            2 => vec![0; size],
            _ => mixed(r, size),
        };
        out.extend_from_slice(&data);
        let mut rest = size;
        while rest > 0 {
            writes.push(rest.min(32768));
            rest = rest.saturating_sub(32768);
        }
        let pad = (512 - size % 512) % 512;
        if pad > 0 {
            out.resize(out.len() + pad, 0);
            writes.push(pad);
        }
        i += 1;
    }
    out.resize(out.len() + 1024, 0);
    writes.extend([512, 512]);
    (out, writes)
}

fn num<T: std::str::FromStr>(s: &str, spec: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| panic!("bad number in spec {spec:?}"))
}

/// The input named by `spec` (see corpus.go), and kiln's writes for tar inputs.
pub fn input(spec: &str) -> (Vec<u8>, Option<Vec<usize>>) {
    let parts: Vec<&str> = spec.split(':').collect();
    if parts[0] == "bytes" {
        let hex = parts[1];
        let b = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        return (b, None);
    }
    let n: usize = num(parts[1], spec);
    let mut r = Rng::new(num(parts[2], spec));
    let data = match parts[0] {
        "random" => random(&mut r, n),
        "text" => text(&mut r, n),
        "zeros" => vec![0; n],
        "periodic" => periodic(&mut r, n, num(parts[3], spec)),
        "mixed" => mixed(&mut r, n),
        "tar" => {
            let (b, w) = tar(&mut r, n);
            return (b, Some(w));
        }
        "copies" => {
            let mut b = random(&mut r, n);
            for triple in parts[3].split('.') {
                let v: Vec<usize> = triple.split('-').map(|x| num(x, spec)).collect();
                let (src, dst, l) = (v[0], v[1], v[2]);
                b.copy_within(src..src + l, dst);
            }
            b
        }
        other => panic!("unknown input kind {other:?}"),
    };
    (data, None)
}

/// Write sizes for `n` bytes by split spec (see corpus.go).
pub fn splits(spec: &str, n: usize, tar_writes: Option<&[usize]>) -> Vec<usize> {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts[0] {
        "one" => return vec![n],
        "tar" => return tar_writes.expect("tar split needs a tar input").to_vec(),
        _ => {}
    }
    let k: u64 = num(parts[1], spec);
    let mut out = Vec::new();
    match parts[0] {
        "fixed" | "flush" => {
            let mut rest = n;
            while rest > 0 {
                let w = rest.min(k as usize);
                out.push(w);
                rest -= w;
            }
        }
        "first" => {
            out.push(n.min(k as usize));
            if n > k as usize {
                out.push(n - k as usize);
            }
        }
        "rand" => {
            let mut r = Rng::new(k);
            let mut rest = n;
            while rest > 0 {
                let w = if r.below(8) == 0 {
                    1 + r.below(131072)
                } else {
                    1 + r.below(2048)
                } as usize;
                let w = w.min(rest);
                out.push(w);
                rest -= w;
            }
        }
        other => panic!("unknown split {other:?}"),
    }
    out
}
