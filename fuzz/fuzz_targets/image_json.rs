//! Images whose JSON documents are fuzzed but whose blobs are found: the input is split at
//! 0xFF bytes (never in JSON text) into index.json, manifest.json and blobs 2..; in each
//! part `@N`, `%N` and `#N` become blob N's digest, hex and size (a blob may name only the
//! blobs after it), so references between documents verify. The first byte picks a tarball
//! or a layout directory (no index.json, no manifest.json when a part is a lone `-`).
#![no_main]

use kiln_digest::Digest;
use kiln_layer::tar::{typeflag, Header, TarWriter, Timestamp};
use libfuzzer_sys::fuzz_target;

fn substitute(part: &[u8], blobs: &[Option<(Digest, Vec<u8>)>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(part.len());
    let mut i = 0;
    while i < part.len() {
        let c = part[i];
        if matches!(c, b'@' | b'%' | b'#') && i + 1 < part.len() && part[i + 1].is_ascii_digit() {
            let n = (part[i + 1] - b'0') as usize;
            if let Some(Some((d, b))) = blobs.get(n) {
                match c {
                    b'@' => out.extend_from_slice(d.to_string().as_bytes()),
                    b'%' => out.extend_from_slice(d.hex().as_bytes()),
                    _ => out.extend_from_slice(b.len().to_string().as_bytes()),
                }
                i += 2;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let parts: Vec<&[u8]> = rest.split(|&b| b == 0xff).take(10).collect();
    let mut blobs: Vec<Option<(Digest, Vec<u8>)>> = vec![None; parts.len()];
    for i in (2..parts.len()).rev() {
        let b = substitute(parts[i], &blobs);
        blobs[i] = Some((Digest::of(&b), b));
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, name) in ["index.json", "manifest.json"].into_iter().enumerate() {
        if let Some(p) = parts.get(i) {
            if *p != b"-" {
                files.push((name.to_string(), substitute(p, &blobs)));
            }
        }
    }
    for (d, b) in blobs.into_iter().flatten() {
        files.push((format!("blobs/sha256/{}", d.hex()), b));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = if mode & 1 == 0 {
        let mut w = TarWriter::new(Vec::new());
        for (name, b) in &files {
            let h = Header {
                typeflag: typeflag::REG,
                name: name.as_bytes().to_vec(),
                size: b.len() as i64,
                mode: 0o644,
                mtime: Some(Timestamp::EPOCH),
                ..Header::default()
            };
            w.write_header(&h).unwrap();
            w.write_data(b).unwrap();
        }
        let p = dir.path().join("image.tar");
        std::fs::write(&p, w.finish().unwrap()).unwrap();
        p
    } else {
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        for (name, b) in &files {
            std::fs::write(dir.path().join(name), b).unwrap();
        }
        dir.path().to_path_buf()
    };
    kiln_fuzz::load_image(path.to_str().unwrap(), true);
});
