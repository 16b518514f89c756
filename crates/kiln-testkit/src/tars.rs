//! Tar archives for tests, written by kiln-layer's Go-exact writer.

use kiln_layer::tar::{Header, TarWriter};

/// An archive of `entries`: each header followed by its data, then the end marker.
pub fn archive(entries: &[(Header, &[u8])]) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for (h, d) in entries {
        w.write_header(h).expect("header");
        w.write_data(d).expect("data");
    }
    w.finish().expect("end of archive")
}
