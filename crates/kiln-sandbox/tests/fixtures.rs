//! The change sets of BuildKit v0.19.0's RUN layers (fixtures busybox-run, busybox-empty-layers,
//! busybox-run-args, busybox-copy-run, busybox-chown-names) reproduced on the busybox base.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::*;
use kiln_sandbox::{ExitStatus, Mount};

/// busybox-run: `RUN echo hello > /hello && mkdir -p /a/b && touch /a/b/c`, then (as in
/// busybox-empty-layers) a `RUN true` on top changes nothing.
#[test]
fn busybox_run_layer_then_empty_layer() {
    require_root();
    let base = Base::new();
    let lowers = vec![base.lower.clone()];
    let (o, _, ch, upper) = overlay_run(
        &base,
        &lowers,
        "l1",
        "echo hello > /hello && mkdir -p /a/b && touch /a/b/c",
        |_| {},
    );
    assert_eq!(o.status, ExitStatus::Code(0));
    assert_eq!(
        summary(&ch),
        ["A a", "A a/b", "A a/b/c", "A dev", "A hello", "A proc", "A sys"]
    );
    assert_eq!(fs::read(upper.join("hello")).unwrap(), b"hello\n");
    for d in ["dev", "proc", "sys", "a", "a/b"] {
        let m = fs::metadata(upper.join(d)).unwrap();
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o755, 0, 0), "{d}");
    }
    for d in ["dev", "proc", "sys"] {
        assert!(
            fs::read_dir(upper.join(d)).unwrap().next().is_none(),
            "{d}/ is left empty"
        );
    }
    let m = fs::metadata(upper.join("a/b/c")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.len()), (0o644, 0));
    // No mount stub and no mount point of the sandbox is left behind.
    assert!(!upper.join("etc/hosts").exists() && !upper.join("etc/resolv.conf").exists());

    let lowers2 = vec![upper.clone(), base.lower.clone()];
    let (o, _, ch, _) = overlay_run(&base, &lowers2, "l2", "true", |_| {});
    assert!(o.status.success());
    assert_eq!(summary(&ch), Vec::<String>::new());
    // The merged view: where the layer writer stats parents.
    let loc = kiln_sandbox::locate(&upper, &[&base.lower], Path::new("a/b")).unwrap();
    assert_eq!(loc, Some(upper.join("a/b")));
    let loc = kiln_sandbox::locate(&upper, &[&base.lower], Path::new("etc/motd")).unwrap();
    assert_eq!(loc, Some(base.lower.join("etc/motd")));
    assert_eq!(
        kiln_sandbox::locate(&upper, &[&base.lower], Path::new("nope/x")).unwrap(),
        None
    );
}

/// A stack on which dev/, proc/ and sys/ already exist (like every RUN after the first).
fn prepared(base: &Base) -> Vec<PathBuf> {
    let (o, _, ch, upper) = overlay_run(
        base,
        std::slice::from_ref(&base.lower),
        "prep",
        "true",
        |_| {},
    );
    assert!(o.status.success());
    assert_eq!(summary(&ch), ["A dev", "A proc", "A sys"]);
    vec![upper, base.lower.clone()]
}

#[test]
fn deleting_a_base_file_is_one_delete() {
    require_root();
    let base = Base::new();
    let lowers = prepared(&base);
    let (o, _, ch, upper) = overlay_run(&base, &lowers, "rm", "rm /etc/motd", |_| {});
    assert!(o.status.success());
    assert_eq!(summary(&ch), ["D etc/motd"]);
    assert!(kiln_sandbox::is_whiteout(
        &fs::symlink_metadata(upper.join("etc/motd")).unwrap()
    ));
    // Deleting something created and removed in the same RUN leaves nothing.
    let (_, _, ch, _) = overlay_run(&base, &lowers, "tmp", "echo x > /t && rm /t", |_| {});
    assert_eq!(summary(&ch), Vec::<String>::new());
}

#[test]
fn recreated_directory_gives_per_child_deletes_never_an_opaque_marker() {
    require_root();
    let base = Base::new();
    let lowers = prepared(&base);
    let (_, _, ch, l1) = overlay_run(
        &base,
        &lowers,
        "mk",
        "mkdir -p /d/sub && echo 1 > /d/g && touch /d/sub/s /d/keep",
        |_| {},
    );
    assert_eq!(
        summary(&ch),
        ["A d", "A d/g", "A d/keep", "A d/sub", "A d/sub/s"]
    );
    let mut stack = vec![l1];
    stack.extend(lowers);
    let (o, _, ch, upper) = overlay_run(
        &base,
        &stack,
        "opq",
        "rm -r /d && mkdir /d && echo n > /d/new",
        |_| {},
    );
    assert!(o.status.success());
    assert!(
        kiln_sandbox::is_opaque(&upper.join("d")).unwrap(),
        "overlayfs marked d opaque"
    );
    // d itself is unchanged (same mode and owner; directory mtimes do not count).
    assert_eq!(summary(&ch), ["D d/g", "D d/keep", "A d/new", "D d/sub"]);
    assert!(ch
        .iter()
        .all(|c| !c.path.to_string_lossy().contains(".wh.")));

    // The same on the home directory of the base image (a dir with an owner of its own).
    let (_, _, ch, _) = overlay_run(
        &base,
        &stack,
        "home",
        "rm -r /home/app && mkdir /home/app && touch /home/app/x",
        |_| {},
    );
    // Recreated as root: owner differs from the base's 1000:1000, so the dir is a modify.
    assert_eq!(summary(&ch), ["M home/app", "A home/app/x"]);
}

/// busybox-copy-run: a chmod of an existing file is a modify.
#[test]
fn chmod_is_a_modify_and_touch_too() {
    require_root();
    let base = Base::new();
    let lowers = prepared(&base);
    let (_, _, ch, upper) = overlay_run(
        &base,
        &lowers,
        "chmod",
        "chmod 0700 /etc/motd && /bin/busybox cat /etc/motd > /out.txt",
        |_| {},
    );
    assert_eq!(summary(&ch), ["M etc/motd", "A out.txt"]);
    assert_eq!(
        fs::metadata(upper.join("etc/motd")).unwrap().mode() & 0o7777,
        0o700
    );
    // Same mode again: copied up but identical, so not recorded.
    let (_, _, ch, _) = overlay_run(&base, &lowers, "chmod-same", "chmod 0644 /etc/motd", |_| {});
    assert_eq!(summary(&ch), Vec::<String>::new());
    let (_, _, ch, _) = overlay_run(&base, &lowers, "touch", "touch /etc/passwd", |_| {});
    assert_eq!(summary(&ch), ["M etc/passwd"]);
}

/// busybox-run-args: tmpfs mount targets, /etc/hosts and /etc/resolv.conf never reach the layer.
#[test]
fn mount_stubs_are_removed() {
    require_root();
    let base = Base::new();
    let lowers = prepared(&base);
    let script = "echo tmp > /scratch/x && echo deep > /x/y/z/f && echo shell > /shell.txt && cat /etc/hosts /etc/resolv.conf && hostname";
    let (o, out, ch, upper) = overlay_run(&base, &lowers, "stubs", script, |s| {
        s.mounts = vec![
            Mount::Tmpfs {
                target: "/scratch".into(),
            },
            Mount::Tmpfs {
                target: "/x/y/z".into(),
            },
        ];
    });
    assert!(o.status.success(), "{out}");
    assert_eq!(summary(&ch), ["A shell.txt"]);
    assert_eq!(
        out,
        format!(
            "{}{}buildkitsandbox\n",
            kiln_sandbox::HOSTS,
            kiln_sandbox::RESOLV_CONF_NO_NETWORK
        )
    );
    assert!(!upper.join("x").exists() && !upper.join("scratch").exists());
    // etc/ was copied up for the stubs; its mtime is what it was before the stub went away and
    // the differ ignores it.
    assert!(
        upper.join("etc").is_dir() && fs::read_dir(upper.join("etc")).unwrap().next().is_none()
    );

    // A stub that received content stays (BuildKit removes only empty stubs).
    let (_, _, ch, _) = overlay_run(&base, &lowers, "stub-kept", "echo k > /m/keep", |s| {
        s.mounts = vec![Mount::Tmpfs {
            target: "/m/t".into(),
        }];
    });
    assert_eq!(summary(&ch), ["A m", "A m/keep"]);
}

/// busybox-chown-names: `RUN id > ...` as `USER app` in a new working directory.
#[test]
fn run_as_named_user() {
    require_root();
    let base = Base::new();
    let lowers = prepared(&base);
    let (o, out, ch, upper) = overlay_run(
        &base,
        &lowers,
        "user",
        "id > /home/app/work/id.txt && pwd && echo $HOME",
        |s| {
            s.user = "app".into();
            s.cwd = "/home/app/work".into();
        },
    );
    assert!(o.status.success(), "{out}");
    assert_eq!(out, "/home/app/work\n/home/app\n");
    assert_eq!(summary(&ch), ["A home/app/work", "A home/app/work/id.txt"]);
    let id = upper.join("home/app/work/id.txt");
    assert_eq!(
        fs::read_to_string(&id).unwrap(),
        "uid=1000(app) gid=1000(app) groups=1000(app)\n"
    );
    let m = fs::metadata(&id).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1000, 0o644));
    let w = fs::metadata(upper.join("home/app/work")).unwrap();
    assert_eq!((w.uid(), w.gid(), w.mode() & 0o7777), (1000, 1000, 0o755));

    let err = kiln_sandbox::run(
        &{
            let (upper, work) = base.layer("nouser");
            let mut s = kiln_sandbox::RunSpec::new(
                kiln_sandbox::Rootfs::Overlay {
                    lowers: lowers.clone(),
                    upper,
                    work,
                },
                sh("true"),
                base.scratch(),
            );
            s.user = "ghost".into();
            s
        },
        &mut |_: &[u8]| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("unable to find user ghost"),
        "{err}"
    );
}
