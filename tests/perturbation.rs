//! Determinism by perturbation: the same Dockerfile and context, built under different
//! source mtimes (all later than SOURCE_DATE_EPOCH), reversed creation order, another
//! absolute context path, a 077 umask, other TZ/LANG, a context on tmpfs and another user,
//! give byte-identical tarballs.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;

const SDE: &str = "1600000000";

const DOCKERFILE: &str = r#"FROM scratch AS base
ARG VERSION=1.0
COPY --chmod=0640 conf/app.conf /etc/app.conf
FROM scratch
COPY . /app/
COPY --from=base /etc/app.conf /etc/
WORKDIR /app/work
ENV VERSION=2 LANG=C.UTF-8
LABEL org.opencontainers.image.version="2"
EXPOSE 8080
CMD ["/app/bin/run", "--serve"]
"#;

/// (path, content or None for a directory, mode)
const FILES: &[(&str, Option<&str>, u32)] = &[
    ("bin", None, 0o755),
    ("bin/run", Some("#!/bin/sh\necho run\n"), 0o755),
    ("conf", None, 0o750),
    ("conf/app.conf", Some("key=value\n"), 0o644),
    ("data", None, 0o755),
    ("data/a.txt", Some("a\n"), 0o644),
    ("data/b.txt", Some("bb\n"), 0o600),
    ("data/z-last", Some(""), 0o644),
    ("Dockerfile", Some(DOCKERFILE), 0o644),
    ("README", Some("readme\n"), 0o444),
];

/// Writes the context into `dir`, in `reverse` order if asked, with the given mtime.
fn make(dir: &Path, reverse: bool, mtime_base: i64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut files: Vec<_> = FILES.iter().collect();
    if reverse {
        files.reverse();
    }
    // Parents first even when reversed.
    for (p, content, _) in &files {
        let path = dir.join(p);
        if content.is_none() {
            std::fs::create_dir_all(&path).unwrap();
        }
    }
    for (p, content, _) in &files {
        if let Some(c) = content {
            std::fs::write(dir.join(p), c).unwrap();
        }
    }
    std::os::unix::fs::symlink("../bin/run", dir.join("data/link-to-run")).unwrap();
    std::fs::hard_link(dir.join("data/a.txt"), dir.join("data/a-hardlink")).unwrap();
    for (i, (p, _, mode)) in files.iter().enumerate() {
        std::fs::set_permissions(dir.join(p), std::fs::Permissions::from_mode(*mode)).unwrap();
        let t = mtime_base + i as i64 * 7;
        let r = Command::new("touch")
            .args(["-h", "-d", &format!("@{t}")])
            .arg(dir.join(p))
            .status()
            .unwrap();
        assert!(r.success());
    }
    let r = Command::new("touch")
        .args(["-h", "-d", &format!("@{}", mtime_base + 99)])
        .arg(dir.join("data/link-to-run"))
        .status()
        .unwrap();
    assert!(r.success());
    // Directories last: writing files changed their mtimes.
    for (p, content, _) in &files {
        if content.is_none() {
            let r = Command::new("touch")
                .args(["-d", &format!("@{}", mtime_base + 3)])
                .arg(dir.join(p))
                .status()
                .unwrap();
            assert!(r.success());
        }
    }
}

fn build(ctx: &Path, out: &Path, setup: impl FnOnce(&mut Command)) {
    let mut c = kiln();
    c.args(["build", "--progress", "quiet", "--sde", SDE, "-o"])
        .arg(out)
        .arg(ctx);
    setup(&mut c);
    run_ok(&mut c);
}

fn built_bytes(ctx: &Path, tmp: &Path, name: &str, setup: impl FnOnce(&mut Command)) -> Vec<u8> {
    let out = tmp.join(name);
    build(ctx, &out, setup);
    std::fs::read(out).unwrap()
}

#[test]
fn perturbations_do_not_change_a_single_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let base_ctx = tmp.path().join("ctx");
    // All mtimes later than SOURCE_DATE_EPOCH (1600000000).
    make(&base_ctx, false, 1_700_000_000);
    let reference = built_bytes(&base_ctx, tmp.path(), "ref.tar", |_| {});
    let a = run_ok(
        kiln()
            .args(["analyze", "--json"])
            .arg(tmp.path().join("ref.tar")),
    );
    let info: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(info["manifest"]["layers"].as_array().unwrap().len(), 3);
    assert_eq!(info["config"]["config"]["WorkingDir"], "/app/work");

    let mut variants: Vec<(&str, Vec<u8>)> = Vec::new();

    let ctx = tmp.path().join("other-mtimes");
    make(&ctx, false, 1_650_000_000);
    variants.push((
        "other mtimes",
        built_bytes(&ctx, tmp.path(), "m.tar", |_| {}),
    ));

    let ctx = tmp.path().join("reversed");
    make(&ctx, true, 1_700_000_000);
    variants.push((
        "reversed creation order",
        built_bytes(&ctx, tmp.path(), "r.tar", |_| {}),
    ));

    let ctx = tmp.path().join("a/much/deeper/absolute/path/ctx");
    make(&ctx, false, 1_700_000_000);
    variants.push((
        "another context path",
        built_bytes(&ctx, tmp.path(), "p.tar", |_| {}),
    ));

    // umask 077 for the kiln process itself.
    let out = tmp.path().join("u.tar");
    let status = Command::new("sh")
        .arg("-c")
        .arg("umask 077 && exec \"$0\" build --progress quiet --sde 1600000000 -o \"$1\" \"$2\"")
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .arg(&out)
        .arg(&base_ctx)
        .status()
        .unwrap();
    assert!(status.success());
    variants.push(("umask 077", std::fs::read(&out).unwrap()));
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o644,
        "the output file is world-readable whatever the umask"
    );

    variants.push((
        "TZ and LANG",
        built_bytes(&base_ctx, tmp.path(), "tz.tar", |c| {
            c.env("TZ", "Pacific/Kiritimati")
                .env("LANG", "tr_TR.UTF-8")
                .env("LC_ALL", "tr_TR.UTF-8");
        }),
    ));

    if Path::new("/dev/shm").is_dir() {
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        let ctx = shm.path().join("ctx");
        make(&ctx, false, 1_700_000_000);
        variants.push((
            "context on tmpfs",
            built_bytes(&ctx, tmp.path(), "shm.tar", |_| {}),
        ));
    } else {
        eprintln!("SKIPPED variant: no /dev/shm tmpfs");
    }

    if is_root() {
        // Another user: nobody, with a context and an output directory it can use.
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let ctx = dir.path().join("ctx");
        make(&ctx, false, 1_700_000_000);
        for (p, _, _) in FILES {
            let m = std::fs::metadata(ctx.join(p)).unwrap().permissions().mode();
            // Readable by others so that nobody can read it; modes are restored below.
            std::fs::set_permissions(ctx.join(p), std::fs::Permissions::from_mode(m | 0o005))
                .unwrap();
        }
        let out = dir.path().join("nobody.tar");
        let st = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_kiln"))
            .args(["build", "--progress", "quiet", "--sde", SDE, "-o"])
            .arg(&out)
            .arg(&ctx)
            .env("TMPDIR", dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "kiln as nobody failed");
        // Same layers except the modes we had to open up: compare against a root build of
        // the same opened-up context.
        let root_out = dir.path().join("root.tar");
        build(&ctx, &root_out, |_| {});
        variants.push(("another user (nobody)", std::fs::read(&out).unwrap()));
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(&root_out).unwrap(),
            "root and nobody give the same bytes"
        );
        variants.pop();
    }

    for (name, bytes) in &variants {
        assert!(
            bytes == &reference,
            "{name}: output differs: {}",
            first_difference(bytes, &reference)
        );
    }
    assert!(variants.len() >= 5);
}
