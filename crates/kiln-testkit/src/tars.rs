//! Tar archives for tests, written by kiln-layer's Go-exact writer.

use std::io::Read;

use kiln_layer::tar::{Header, TarReader, TarWriter};

/// An archive of `entries`: each header followed by its data, then the end marker.
pub fn archive(entries: &[(Header, &[u8])]) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for (h, d) in entries {
        w.write_header(h).expect("header");
        w.write_data(d).expect("data");
    }
    w.finish().expect("end of archive")
}

/// Reads `t` with kiln-layer's tar reader, every header and all data, until the end or the
/// first error (which must say something); returns how many headers it read. For tests and
/// fuzz targets that feed the reader hostile archives: it must neither panic nor hang.
pub fn drain(t: &[u8]) -> usize {
    let mut r = TarReader::new(t);
    let mut buf = [0u8; 4096];
    let mut n = 0;
    loop {
        match r.next_header() {
            Ok(Some(_)) => n += 1,
            Ok(None) => return n,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                return n;
            }
        }
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    return n;
                }
            }
        }
    }
}
