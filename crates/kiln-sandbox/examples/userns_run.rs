//! Runs one `RUN` on the busybox base as whoever starts it, re-executing into a user namespace
//! first when that is not root. Used by the unprivileged tests; also a minimal example of the
//! crate's intended use.
//!
//! `userns_run <work dir> <script> [user]` prints the mapping, the exit status, one line per
//! change and the owner of every added or modified path, as seen inside the namespace.

#[path = "../tests/common/mod.rs"]
mod common;

use std::os::unix::fs::MetadataExt;

use kiln_sandbox::{Rootfs, RunSpec};

fn main() {
    // First thing, while single-threaded.
    let mapping = match kiln_sandbox::userns::reexec_into_userns() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("userns_run: {e}");
            std::process::exit(2);
        }
    };
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(script)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: userns_run <work dir> <script> [user]");
        std::process::exit(2);
    };
    let dir = std::path::Path::new(dir);
    println!(
        "mapping userns={} single={} uid1000={}",
        mapping.in_user_namespace(),
        mapping.is_single_id(),
        mapping.maps_uid(1000)
    );
    let lower = dir.join("base");
    // With a single id, the base's files owned by uid 1000 cannot be created as such.
    common::unpack_busybox(&lower, !mapping.is_single_id());
    let (upper, work, scratch) = (dir.join("upper"), dir.join("work"), dir.join("scratch"));
    for d in [&upper, &work, &scratch] {
        std::fs::create_dir_all(d).expect("create dir");
    }
    let mut spec = RunSpec::new(
        Rootfs::Overlay {
            lowers: vec![lower.clone()],
            upper: upper.clone(),
            work,
        },
        common::sh(script),
        scratch,
    );
    spec.user = args.get(3).cloned().unwrap_or_default();
    let outcome = match kiln_sandbox::run(&spec, &mut |b: &[u8]| {
        use std::io::Write;
        let _ = std::io::stderr().write_all(b);
    }) {
        Ok(o) => o,
        Err(e) => {
            println!("error {e}");
            std::process::exit(1);
        }
    };
    println!("status {}", outcome.status);
    let changes = kiln_sandbox::changes(&[&lower], &upper).expect("changes");
    for c in &changes {
        println!("change {:?} {}", c.kind, c.path.display());
    }
    for c in &changes {
        if c.kind != kiln_sandbox::ChangeKind::Delete {
            let m = std::fs::symlink_metadata(upper.join(&c.path)).expect("stat");
            println!(
                "owner {} {} {} {:o}",
                c.path.display(),
                m.uid(),
                m.gid(),
                m.mode() & 0o7777
            );
        }
    }
}
