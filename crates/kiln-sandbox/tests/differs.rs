//! The overlay differ and the plain-tree fallback (continuity's double walk on a copy) must give
//! the same change sets; plus differ rules checked on hand-made layers.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use common::*;
use kiln_sandbox::Mount;

/// Scripts run both ways on a stack where a RUN already created some content.
const SCRIPTS: &[&str] = &[
    "echo hello > /hello && mkdir -p /a/b && touch /a/b/c",
    "true",
    "rm /etc/motd",
    "rm -r /d && mkdir /d && echo n > /d/new",
    "rm -r /d",
    "chmod 0700 /etc/motd",
    "chmod 0644 /etc/motd",
    "touch /etc/passwd",
    "echo same > /d/g.tmp && mv /d/g.tmp /d/g",
    "chown 1000:1000 /d/keep",
    "rm /bin/cat && ln -s busybox /bin/cat",
    "rm /bin/cat && echo file > /bin/cat",
    "rm -r /d/sub && echo now-a-file > /d/sub",
    "rm /d/keep && mkdir /d/keep && touch /d/keep/inner",
    "mkdir -p /a-b /a.txt /a/b && touch /a/b/x /a-b/y",
    "ln /d/g /d/g-link && echo more >> /d/g",
    "mkfifo /fifo && mknod /chr c 1 3",
    "echo tmp > /scratch/x && echo shell > /shell.txt",
    "id > /home/app/id.txt",
];

#[test]
fn overlay_and_tree_fallback_agree() {
    require_root();
    let base = Base::new();
    let (o, _, _, l1) = overlay_run(
        &base,
        std::slice::from_ref(&base.lower),
        "setup",
        "mkdir -p /d/sub && echo 1 > /d/g && touch /d/sub/s /d/keep",
        |_| {},
    );
    assert!(o.status.success());
    let lowers = vec![l1, base.lower.clone()];
    let mut compared = 0;
    for (i, script) in SCRIPTS.iter().enumerate() {
        let tweak = |s: &mut kiln_sandbox::RunSpec| {
            if script.contains("/scratch") {
                s.mounts = vec![Mount::Tmpfs {
                    target: "/scratch".into(),
                }];
            }
            if script.starts_with("id") {
                s.user = "app".into();
            }
        };
        let (o1, out, overlay, _) = overlay_run(&base, &lowers, &format!("o{i}"), script, tweak);
        let (o2, tree, _) = tree_run(&base, &lowers, &format!("t{i}"), script, tweak);
        assert!(
            o1.status.success() && o2.status.success(),
            "{script}: {out}"
        );
        assert_eq!(summary(&overlay), summary(&tree), "{script}");
        compared += 1;
    }
    assert_eq!(compared, SCRIPTS.len());
}

/// Spot checks of the expected sets (the agreement test alone would accept two wrong differs).
#[test]
fn expected_sets_of_tricky_scripts() {
    require_root();
    let base = Base::new();
    let (_, _, _, l1) = overlay_run(
        &base,
        std::slice::from_ref(&base.lower),
        "setup",
        "mkdir -p /d/sub && echo 1 > /d/g && touch /d/sub/s /d/keep",
        |_| {},
    );
    let lowers = vec![l1, base.lower.clone()];
    let cases: &[(&str, &[&str])] = &[
        ("rm -r /d", &["D d"]),
        ("rm -r /d/sub && echo now-a-file > /d/sub", &["M d/sub"]),
        ("rm /d/keep && mkdir /d/keep && touch /d/keep/inner", &["M d/keep", "A d/keep/inner"]),
        ("mkdir -p /a-b /a.txt /a/b && touch /a/b/x /a-b/y", &["A a", "A a/b", "A a/b/x", "A a-b", "A a-b/y", "A a.txt"]),
        // Same target but a new mtime.
        ("rm /bin/cat && ln -s busybox /bin/cat", &["M bin/cat"]),
        // Copied up with identical metadata and content: not recorded (content compared
        // because both mtimes have 0 ns).
        ("cp -p /etc/passwd /tmp/p && mv /tmp/p /etc/passwd", &[]),
        ("cp -p /etc/passwd /tmp/p && echo x >> /tmp/p && /bin/busybox truncate -s 68 /tmp/p && mv /tmp/p /etc/passwd && /bin/busybox touch -d @1577836800 /etc/passwd", &[]),
        ("echo 1 > /d/g.tmp && mv /d/g.tmp /d/g", &["M d/g"]),
    ];
    for (script, want) in cases {
        let (_, out, ch, _) = overlay_run(&base, &lowers, "case", script, |_| {});
        assert_eq!(summary(&ch), *want, "{script}: {out}");
        fs::remove_dir_all(base.tmp.path().join("case")).unwrap();
    }
}

fn mkdirs(root: &Path, dirs: &[&str]) {
    for d in dirs {
        fs::create_dir_all(root.join(d)).unwrap();
    }
}

fn whiteout(p: &Path) {
    nix::sys::stat::mknod(
        p,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
}

/// Hand-made layers: multi-layer lowers with whiteouts and opaque dirs, read in user space.
#[test]
fn merged_lowers_honour_whiteouts_and_opaque_dirs() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let (l0, l1, l2, upper) = (
        t.path().join("l0"),
        t.path().join("l1"),
        t.path().join("l2"),
        t.path().join("up"),
    );
    // bottom l2: x/{a,b}, y, z ; middle l1: whiteout y, opaque x with x/c ; top l0: z is a dir
    mkdirs(&l2, &["x"]);
    for f in ["x/a", "x/b", "y", "z"] {
        fs::write(l2.join(f), f).unwrap();
    }
    mkdirs(&l1, &["x"]);
    fs::write(l1.join("x/c"), "c").unwrap();
    xattr::set(l1.join("x"), "trusted.overlay.opaque", b"y").unwrap();
    whiteout(&l1.join("y"));
    mkdirs(&l0, &["z"]);
    let lowers = vec![l0.clone(), l1.clone(), l2.clone()];
    let stack = kiln_sandbox::LayerStack::overlay(&lowers);
    let names = |rel: &str| -> Vec<String> {
        stack
            .read_dir(Path::new(rel))
            .unwrap()
            .into_iter()
            .map(|(n, _)| n.into_string().unwrap())
            .collect()
    };
    assert_eq!(names(""), ["x", "z"]);
    assert_eq!(names("x"), ["c"]);
    assert!(stack.lookup(Path::new("y")).unwrap().is_none());
    assert!(stack.lookup(Path::new("x/a")).unwrap().is_none());
    assert!(stack.lookup(Path::new("z")).unwrap().unwrap().meta.is_dir());

    // An upper dir on top: whiteouts of hidden or unknown names are skipped.
    mkdirs(&upper, &["x"]);
    whiteout(&upper.join("x/c"));
    whiteout(&upper.join("x/a"));
    whiteout(&upper.join("never"));
    fs::set_permissions(upper.join("x"), fs::Permissions::from_mode(0o755)).unwrap();
    let ch = kiln_sandbox::changes(&lowers, &upper).unwrap();
    assert_eq!(summary(&ch), ["D x/c"]);

    // The tree fallback sees the same merged lowers.
    let tree = t.path().join("tree");
    fs::create_dir(&tree).unwrap();
    kiln_sandbox::snapshot::copy_merged(&lowers, &tree).unwrap();
    let mut listing: Vec<String> = walk(&tree);
    listing.sort();
    assert_eq!(listing, ["x", "x/c", "z"]);
    assert_eq!(kiln_sandbox::tree_changes(&lowers, &tree).unwrap(), vec![]);
    fs::remove_file(tree.join("x/c")).unwrap();
    symlink("c", tree.join("x/d")).unwrap();
    assert_eq!(
        summary(&kiln_sandbox::tree_changes(&lowers, &tree).unwrap()),
        ["D x/c", "A x/d"]
    );
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            out.push(r.to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                stack.push(r);
            }
        }
    }
    out
}

/// sameDirent: size/mtime/content/capability rules on single files.
#[test]
fn same_dirent_rules() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let entry = |p: &Path| kiln_sandbox::Entry {
        path: p.to_path_buf(),
        layer: 0,
        meta: fs::symlink_metadata(p).unwrap(),
    };
    let set_mtime = |p: &Path, s: i64, ns: i64| {
        let ts = nix::sys::time::TimeSpec::new(s, ns);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            p,
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    };
    fs::write(&a, "abc").unwrap();
    fs::write(&b, "abd").unwrap();
    // Truncated (ns = 0) equal mtimes: content decides.
    set_mtime(&a, 1000, 0);
    set_mtime(&b, 1000, 0);
    assert!(!kiln_sandbox::same_dirent(&entry(&a), &entry(&b)).unwrap());
    fs::write(&b, "abc").unwrap();
    set_mtime(&b, 1000, 0);
    assert!(kiln_sandbox::same_dirent(&entry(&a), &entry(&b)).unwrap());
    // With nanoseconds, equal times mean equal, whatever the content.
    fs::write(&b, "xyz").unwrap();
    set_mtime(&a, 1000, 5);
    set_mtime(&b, 1000, 5);
    assert!(kiln_sandbox::same_dirent(&entry(&a), &entry(&b)).unwrap());
    set_mtime(&b, 1000, 6);
    assert!(!kiln_sandbox::same_dirent(&entry(&a), &entry(&b)).unwrap());
    set_mtime(&b, 1000, 5);
    // A file capability makes them differ.
    let cap = [
        0u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    xattr::set(&b, "security.capability", &cap).unwrap();
    assert!(!kiln_sandbox::same_dirent(&entry(&a), &entry(&b)).unwrap());
    // Directories: mtime never compared, mode is.
    let (da, db) = (t.path().join("da"), t.path().join("db"));
    fs::create_dir(&da).unwrap();
    fs::create_dir(&db).unwrap();
    set_mtime(&da, 1, 0);
    assert!(kiln_sandbox::same_dirent(&entry(&da), &entry(&db)).unwrap());
    fs::set_permissions(&db, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(!kiln_sandbox::same_dirent(&entry(&da), &entry(&db)).unwrap());
}

/// Lowers prepared by hand (as kiln does from layer tars) with the opaque marker that
/// `Mapping::overlay_opaque_xattr` names and a whiteout: the kernel's view in the sandbox and
/// the user-space view of the differ agree.
#[test]
fn hand_made_lowers_work_in_the_kernel_overlay() {
    require_root();
    let base = Base::new();
    let t = base.tmp.path();
    let (top, mid) = (t.join("top"), t.join("mid"));
    mkdirs(&mid, &["x"]);
    fs::write(mid.join("x/old"), "old").unwrap();
    fs::write(mid.join("gone"), "gone").unwrap();
    mkdirs(&top, &["x"]);
    fs::write(top.join("x/new"), "new").unwrap();
    let mapping = kiln_sandbox::userns::Mapping::current().unwrap();
    xattr::set(top.join("x"), mapping.overlay_opaque_xattr(), b"y").unwrap();
    whiteout(&top.join("gone"));
    let lowers = vec![top.clone(), mid.clone(), base.lower.clone()];
    let (o, out, ch, _) = overlay_run(
        &base,
        &lowers,
        "k",
        "ls /x; test -e /gone || echo no-gone",
        |_| {},
    );
    assert!(o.status.success(), "{out}");
    assert_eq!(out, "new\nno-gone\n");
    let names: Vec<String> = kiln_sandbox::LayerStack::overlay(&lowers)
        .read_dir(Path::new("x"))
        .unwrap()
        .into_iter()
        .map(|(n, _)| n.into_string().unwrap())
        .collect();
    assert_eq!(names, ["new"]);
    assert_eq!(summary(&ch), ["A dev", "A proc", "A sys"]);
}
