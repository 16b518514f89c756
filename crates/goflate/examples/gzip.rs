//! `gzip [-l LEVEL] [-j THREADS] [-c CHUNK_KIB] [-z flate2] < in > out`: compress stdin
//! like Go's compress/gzip (or with flate2's zlib-rs, for comparison), and report the
//! throughput on stderr. `-c` sets the parallel engine's chunk size.

use std::io::{Read, Write};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut level = goflate::Level::DEFAULT;
    let mut threads = 1;
    let mut use_flate2 = false;
    let mut chunk = goflate::DEFAULT_CHUNK_SIZE;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().ok_or("missing value")?;
        match a.as_str() {
            "-l" => level = goflate::Level::new(v.parse()?)?,
            "-j" => threads = v.parse()?,
            "-c" => chunk = v.parse::<usize>()? << 10,
            "-z" => use_flate2 = v == "flate2",
            _ => return Err(format!("unknown flag {a}").into()),
        }
    }
    let mut data = Vec::new();
    std::io::stdin().read_to_end(&mut data)?;
    let start = Instant::now();
    let out = if use_flate2 {
        let level = u32::try_from(if level == goflate::Level::DEFAULT {
            6
        } else {
            level.get().max(0)
        })?;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(&data)?;
        e.finish()?
    } else if threads > 1 {
        goflate::gzip_parallel_chunked(&data, level, threads, chunk)
    } else {
        goflate::gzip(&data, level)
    };
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{} -> {} bytes in {secs:.3}s, {:.1} MB/s",
        data.len(),
        out.len(),
        data.len() as f64 / secs / 1e6
    );
    std::io::stdout().write_all(&out)?;
    Ok(())
}
