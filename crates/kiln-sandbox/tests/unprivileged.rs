//! The crate used by an unprivileged user: examples/userns_run.rs re-executes itself into a
//! user namespace (newuidmap/newgidmap with /etc/subuid ranges, or a single id) and runs the
//! busybox-run RUN. Needs root to create the test users, `uidmap` installed.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::require_root;

/// examples/userns_run as built by `cargo test` (`userns_run-<hash>`) or `cargo build
/// --example` (`userns_run`), next to this test binary; the newest one.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let found = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (n == "userns_run" || n.starts_with("userns_run-")) && !n.contains('.')
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
    match found {
        Some(e) => e.path(),
        None => panic!(
            "no userns_run in {}: run `cargo test -p kiln-sandbox`, which builds examples",
            dir.display()
        ),
    }
}

fn ensure_user(name: &str, subids: bool) -> (u32, u32) {
    let exists = Command::new("id")
        .arg("-u")
        .arg(name)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let mut c = Command::new("useradd");
        c.args(["-m", name]);
        if !subids {
            c.args(["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"]);
        }
        let st = c.status().expect("useradd");
        assert!(st.success(), "useradd {name}");
    }
    let id = |flag: &str| -> u32 {
        let o = Command::new("id").arg(flag).arg(name).output().unwrap();
        String::from_utf8(o.stdout).unwrap().trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

fn subid_start(file: &str, name: &str) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.lines().find_map(|l| {
        l.strip_prefix(&format!("{name}:"))?
            .split(':')
            .next()?
            .parse()
            .ok()
    })
}

struct Run {
    stdout: String,
    stderr: String,
    dir: tempfile::TempDir,
}

fn run_as(user: &str, uid: u32, gid: u32, script: &str, run_user: Option<&str>) -> Run {
    let dir = tempfile::Builder::new()
        .prefix("kiln-unpriv-")
        .tempdir_in("/tmp")
        .unwrap();
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
    let mut c = Command::new("runuser");
    c.args(["-u", user, "--"])
        .arg(example())
        .arg(dir.path())
        .arg(script);
    if let Some(u) = run_user {
        c.arg(u);
    }
    let o = c.output().expect("runuser");
    let r = Run {
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        dir,
    };
    assert!(
        o.status.success() || run_user.is_some(),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    r
}

fn lines<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines().filter_map(|l| l.strip_prefix(prefix)).collect()
}

/// Removes a tree owned by a user namespace (the overlay work dir has mode 000).
fn cleanup(dir: &Path) {
    kiln_sandbox::snapshot::remove_tree(dir).unwrap();
}

const SCRIPT: &str = "echo hello > /hello && mkdir -p /a/b && touch /a/b/c";
const FIXTURE: [&str; 7] = [
    "Add a",
    "Add a/b",
    "Add a/b/c",
    "Add dev",
    "Add hello",
    "Add proc",
    "Add sys",
];

#[test]
fn unprivileged_user_with_subordinate_ids() {
    require_root();
    let (uid, gid) = ensure_user("kilntest", true);
    let sub = subid_start("/etc/subuid", "kilntest").expect("useradd gave kilntest a subuid range");
    let r = run_as("kilntest", uid, gid, SCRIPT, None);
    assert!(
        r.stdout
            .starts_with("mapping userns=true single=false uid1000=true\n"),
        "{}",
        r.stdout
    );
    assert_eq!(lines(&r.stdout, "status "), ["exit code 0"]);
    assert_eq!(lines(&r.stdout, "change "), FIXTURE);
    for o in lines(&r.stdout, "owner ") {
        assert!(o.ends_with(" 0 0 755") || o.ends_with(" 0 0 644"), "{o}");
    }
    // Seen from the host, namespace root is the user.
    let hello = std::fs::metadata(r.dir.path().join("upper/hello")).unwrap();
    assert_eq!((hello.uid(), hello.gid()), (uid, gid));
    cleanup(r.dir.path());

    // USER app: uid 1000 inside, a subordinate id outside.
    let r = run_as("kilntest", uid, gid, "id > /tmp/x", Some("app"));
    assert_eq!(
        lines(&r.stdout, "status "),
        ["exit code 0"],
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        lines(&r.stdout, "owner ").contains(&"tmp/x 1000 1000 644"),
        "{}",
        r.stdout
    );
    let x = r.dir.path().join("upper/tmp/x");
    assert_eq!(
        std::fs::read_to_string(&x).unwrap(),
        "uid=1000(app) gid=1000(app) groups=1000(app)\n"
    );
    assert_eq!(std::fs::metadata(&x).unwrap().uid(), sub + 999);
    cleanup(r.dir.path());
}

#[test]
fn unprivileged_user_without_subordinate_ids_gets_a_single_id() {
    require_root();
    let (uid, gid) = ensure_user("kilntest1", false);
    assert_eq!(
        subid_start("/etc/subuid", "kilntest1"),
        None,
        "kilntest1 must have no subuid range"
    );
    let r = run_as("kilntest1", uid, gid, SCRIPT, None);
    assert!(
        r.stdout
            .starts_with("mapping userns=true single=true uid1000=false\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("mapping only your own id to root"),
        "{}",
        r.stderr
    );
    assert_eq!(lines(&r.stdout, "status "), ["exit code 0"]);
    assert_eq!(lines(&r.stdout, "change "), FIXTURE);
    assert_eq!(
        std::fs::metadata(r.dir.path().join("upper/hello"))
            .unwrap()
            .uid(),
        uid
    );
    cleanup(r.dir.path());
    // What cannot work says so.
    let r = run_as("kilntest1", uid, gid, "true", Some("app"));
    assert!(
        lines(&r.stdout, "error ")
            .iter()
            .any(|e| e.contains("setgid 1000") || e.contains("setuid 1000") || e.contains("chown")),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    cleanup(r.dir.path());
}
