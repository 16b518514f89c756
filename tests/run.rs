//! RUN end to end: whiteouts and replaced directories as BuildKit writes them (per-entry
//! whiteouts, never opaque markers) and applied by umoci; failing commands; and the same
//! digest when kiln runs as an unprivileged user.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;

const BUSYBOX: &str = "busybox=oci-layout://{}@sha256:3f0408471efe0ab36280f5435d6851b5d1ad275341c84ab21349f03cd4f4e9c6";

fn busybox_context(layout: &Path) -> String {
    BUSYBOX.replace("{}", &layout.display().to_string())
}

fn skip() -> bool {
    if !is_root() {
        eprintln!("SKIPPED: RUN tests need root here (the unprivileged case is tested from root)");
        return true;
    }
    false
}

fn layer_entries(image_dir: &Path, index: usize) -> Vec<String> {
    let a = run_ok(kiln().args(["analyze", "--json"]).arg(image_dir));
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let d = v["manifest"]["layers"][index]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = image_dir
        .join("blobs/sha256")
        .join(d.trim_start_matches("sha256:"));
    let out = run_ok(Command::new("tar").arg("-tzf").arg(&blob));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn deletions_and_replaced_directories_are_per_entry_whiteouts_umoci_applies() {
    if skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\n\
         RUN mkdir -p /d/sub && echo old > /d/old && echo x > /d/sub/x\n\
         RUN echo new > /written && rm /etc/motd && rm -r /d && mkdir /d && echo new > /d/new\n",
    )
    .unwrap();
    let out = tmp.path().join("layout");
    run_ok(
        kiln()
            .args([
                "build",
                "--progress",
                "quiet",
                "--sde",
                "1677619260",
                "--format",
                "oci-dir",
                "-t",
                "t:1",
            ])
            .args([
                "--build-context",
                &busybox_context(&repo().join("testdata/base/busybox")),
            ])
            .arg("-o")
            .arg(&out)
            .arg(&ctx),
    );
    let entries = layer_entries(&out, 2);
    assert_eq!(
        entries,
        vec![
            "d/",
            "d/new",
            "d/.wh.old",
            "d/.wh.sub",
            "etc/",
            "etc/.wh.motd",
            "written"
        ],
        "per-entry whiteouts, sorted under the deleted names (new < old < sub)"
    );
    assert!(entries.iter().all(|e| !e.contains(".wh..wh..opq")));

    if Command::new("umoci").arg("--version").output().is_err() {
        eprintln!("SKIPPED umoci part: umoci is not installed");
        return;
    }
    let bundle = tmp.path().join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:1", out.display()))
            .arg(&bundle),
    );
    let root = bundle.join("rootfs");
    assert!(!root.join("etc/motd").exists(), "deleted base file is gone");
    assert!(root.join("etc/passwd").exists(), "its siblings stay");
    let mut d: Vec<String> = std::fs::read_dir(root.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    d.sort();
    assert_eq!(
        d,
        vec!["new"],
        "the replaced directory holds only its new content"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("written")).unwrap(),
        "new\n"
    );
}

#[test]
fn a_failing_run_stops_the_build_with_its_exit_code_line_and_output() {
    if skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN true\nRUN echo something went wrong >&2 && exit 3\nRUN echo never\n",
    )
    .unwrap();
    let out = tmp.path().join("image.tar");
    let base = busybox_context(&repo().join("testdata/base/busybox"));
    let (code, err) = build_quietly(&["--build-context", &base], &out, &ctx);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("exit code 3"), "{err}");
    assert!(err.contains("something went wrong"), "{err}");
    assert!(!out.exists());
}

#[test]
fn an_unprivileged_user_gets_the_same_digest_as_root() {
    if skip() {
        return;
    }
    let user = "kilnbuild";
    if Command::new("id")
        .arg(user)
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        let st = Command::new("useradd").args(["-m", user]).status();
        if !matches!(st, Ok(s) if s.success()) {
            eprintln!("SKIPPED: cannot create the user {user}");
            return;
        }
    }
    let has_subids = std::fs::read_to_string("/etc/subuid")
        .map(|s| s.lines().any(|l| l.starts_with(&format!("{user}:"))))
        .unwrap_or(false);
    if !has_subids || Command::new("newuidmap").arg("--help").output().is_err() {
        eprintln!("SKIPPED: {user} has no subordinate ids or newuidmap is missing (apt-get install uidmap)");
        return;
    }
    // Everything the user needs, in a directory it owns.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = tmp.path().join("u");
    std::fs::create_dir(&home).unwrap();
    let layout = home.join("busybox");
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(repo().join("testdata/base/busybox"))
            .arg(&layout),
    );
    let bin = home.join("kiln");
    std::fs::copy(env!("CARGO_BIN_EXE_kiln"), &bin).unwrap();
    let ctx = home.join("ctx");
    make_context("busybox-run-ocilayout", &ctx);
    run_ok(
        Command::new("chown")
            .args(["-R", &format!("{user}:{user}")])
            .arg(&home),
    );

    let df = fixture_dir("busybox-run-ocilayout").join("Dockerfile");
    let df_copy = home.join("Dockerfile");
    std::fs::copy(&df, &df_copy).unwrap();
    run_ok(
        Command::new("chown")
            .arg(format!("{user}:{user}"))
            .arg(&df_copy),
    );
    let args = |out: &Path| -> Vec<String> {
        vec![
            "build".into(),
            "--progress".into(),
            "quiet".into(),
            "--sde".into(),
            "1677619260".into(),
            "--build-context".into(),
            busybox_context(&layout),
            "-f".into(),
            df_copy.display().to_string(),
            "-o".into(),
            out.display().to_string(),
            ctx.display().to_string(),
        ]
    };
    let user_out = home.join("user.tar");
    let r = Command::new("runuser")
        .args(["-u", user, "--"])
        .arg(&bin)
        .args(args(&user_out))
        .env("TMPDIR", &home)
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(
        r.status.success(),
        "as {user}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let root_out = tmp.path().join("root.tar");
    run_ok(kiln().args(args(&root_out)));
    assert_eq!(
        sha256_file(&user_out),
        sha256_file(&root_out),
        "same bytes as root"
    );
    let want = expected("busybox-run-ocilayout")["outputs"]["docker"]["config_digest"].clone();
    let a = run_ok(kiln().args(["analyze", "--json"]).arg(&user_out));
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(v["configDigest"], want, "and BuildKit's config");
}
