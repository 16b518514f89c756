//! Bad input never panics and never half-writes: each case exits 2 with a message naming the
//! file and line (or path), and leaves no output file behind.

mod common;

use std::path::Path;

use common::*;

struct Case {
    name: &'static str,
    dockerfile: &'static str,
    /// Text the error message must contain.
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "unknown instruction",
        dockerfile: "FROM scratch\nFROBNICATE x\n",
        expect: &["Dockerfile:2", "unknown instruction"],
    },
    Case {
        name: "unterminated quote",
        dockerfile: "FROM scratch\nENV A=\"never closed\n",
        expect: &["Dockerfile:2", "quote"],
    },
    Case {
        name: "unterminated heredoc",
        dockerfile: "FROM scratch\nCOPY <<EOF /x\nline one\nline two\n",
        expect: &["Dockerfile:2", "heredoc"],
    },
    Case {
        name: "no FROM",
        dockerfile: "COPY a /a\n",
        expect: &["Dockerfile:1"],
    },
    Case {
        name: "COPY from outside the context",
        dockerfile: "FROM scratch\nCOPY ../outside/secret /secret\n",
        expect: &["Dockerfile:2", "outside the build context"],
    },
    Case {
        name: "missing source",
        dockerfile: "FROM scratch\nCOPY present.txt /\nCOPY missing.txt /\n",
        expect: &["Dockerfile:3", "missing.txt", "not found"],
    },
    Case {
        name: "symlink out of the context",
        dockerfile: "FROM scratch\nCOPY escape/passwd /p\n",
        expect: &["Dockerfile:2", "outside the build context"],
    },
    Case {
        // The tag is refused as unpinned even though no registry answers (port 9 is closed).
        name: "floating tag, registry unreachable",
        dockerfile: "FROM 127.0.0.1:9/base:1\nCOPY present.txt /\n",
        expect: &[
            "Dockerfile:1",
            "floating tag",
            "--allow-floating-tags",
            "127.0.0.1:9",
        ],
    },
    Case {
        name: "RUN without a sandbox base",
        dockerfile: "FROM scratch\nRUN true\n",
        expect: &["Dockerfile:2"],
    },
];

/// Dockerfiles that ask for far more memory than their size, where BuildKit sets no bound.
const BUDGET_CASES: &[Case] = &[
    Case {
        // 17 doublings make A 1 MiB; one line then asks for 64 copies of it.
        name: "one line copying a variable 64 times",
        dockerfile: concat!(
            "FROM scratch\nENV A=xxxxxxxx\n",
            "ENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\n",
            "ENV B=$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A\n"
        ),
        expect: &["Dockerfile:20", "more than 64 MiB", "expanded into itself"],
    },
    Case {
        // ENV also writes each value to the history, whose budget runs out a line earlier.
        name: "an ENV doubled into itself",
        dockerfile: concat!(
            "FROM scratch\nENV A=xxxxxxxx\n",
            "ENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\n"
        ),
        expect: &["Dockerfile:24", "history would grow past 64 MiB"],
    },
    Case {
        name: "a meta ARG doubled into itself",
        dockerfile: concat!(
            "ARG A=xxxxxxxx\n",
            "ARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\nARG A=$A$A\n",
            "FROM scratch\n"
        ),
        expect: &["Dockerfile:24", "more than 64 MiB"],
    },
    Case {
        // Each line writes 2.6 MB of history (every port, as BuildKit lists them); the 26th
        // passes the 64 MiB budget.
        name: "port ranges that multiply the history",
        dockerfile: concat!(
            "FROM scratch\n",
            "EXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\nEXPOSE 0-65535/tcp 0-65535/udp 0-65535/sctp\n"
        ),
        expect: &["Dockerfile:27", "history would grow past 64 MiB"],
    },
];

fn no_leftovers(dir: &Path, out: &Path) {
    assert!(
        !out.exists(),
        "{} must not exist after a failed build",
        out.display()
    );
    for e in std::fs::read_dir(dir).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.starts_with(".kiln-"), "temporary file {n} left behind");
    }
}

#[test]
fn each_bad_input_exits_2_naming_the_line_and_writes_nothing() {
    CASES.iter().for_each(exits_2_naming_the_line);
}

#[test]
fn dockerfiles_that_multiply_themselves_hit_a_budget() {
    BUDGET_CASES.iter().for_each(exits_2_naming_the_line);
}

fn exits_2_naming_the_line(case: &Case) {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), case.dockerfile).unwrap();
    std::fs::write(ctx.join("present.txt"), "here\n").unwrap();
    std::os::unix::fs::symlink("../../etc", ctx.join("escape")).unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("image.tar");
    let (code, err) = build_quietly(&[], &out, &ctx);
    assert_eq!(code, Some(2), "{}: exit code; stderr: {err}", case.name);
    for want in case.expect {
        assert!(err.contains(want), "{}: {want:?} not in {err:?}", case.name);
    }
    assert!(!err.contains("panicked"), "{}: {err}", case.name);
    no_leftovers(&out_dir, &out);
}

#[test]
fn unwritable_output_paths_exit_2_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY a /a\n").unwrap();
    std::fs::write(ctx.join("a"), "a\n").unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    for out in [
        tmp.path().join("no/such/dir/image.tar"),
        file.join("image.tar"),
        Path::new("/proc/kiln-cannot-write-here.tar").to_path_buf(),
        tmp.path().to_path_buf(),
    ] {
        let (code, err) = build_quietly(&[], &out, &ctx);
        assert_eq!(code, Some(2), "{}: {err}", out.display());
        assert!(
            err.contains(&out.display().to_string()),
            "message names {}: {err}",
            out.display()
        );
        if out != tmp.path() {
            assert!(!out.exists());
        }
    }
}

#[test]
fn bad_flags_and_missing_dockerfile_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let r = kiln()
        .args(["build", "--sde", "yesterday"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--sde"));
    let r = kiln().args(["build"]).arg(tmp.path()).output().unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("Dockerfile"));
    let r = kiln()
        .args(["build", "--format", "zip"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
}

/// A regular file `name` holding `data`.
fn tar_file(name: &str, data: &[u8]) -> (kiln_layer::tar::Header, Vec<u8>) {
    let h = kiln_layer::tar::Header {
        typeflag: kiln_layer::tar::typeflag::REG,
        name: name.as_bytes().to_vec(),
        size: data.len() as i64,
        mode: 0o644,
        ..Default::default()
    };
    (h, data.to_vec())
}

fn tar_of(files: &[(kiln_layer::tar::Header, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<_> = files
        .iter()
        .map(|(h, d)| (h.clone(), d.as_slice()))
        .collect();
    kiln_testkit::tars::archive(&entries)
}

#[test]
fn entries_deeper_than_linux_paths_are_refused() {
    // 200 KB of tar name 100,000 directories down: no runtime could extract it, and a tree
    // that deep took kiln minutes and then its stack.
    let deep = format!("{}f", "a/".repeat(100_000));
    let layer = tar_of(&[tar_file(&deep, b"x")]);
    let diff_id = sha256_hex(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{diff_id}"]}},"config":{{}}}}"#
    );
    let config_name = format!("{}.json", sha256_hex(config.as_bytes()));
    let manifest = format!(
        r#"[{{"Config":"{config_name}","RepoTags":["deep:1"],"Layers":["{diff_id}/layer.tar"]}}]"#
    );
    let image = tar_of(&[
        tar_file("manifest.json", manifest.as_bytes()),
        tar_file(&config_name, config.as_bytes()),
        tar_file(&format!("{diff_id}/layer.tar"), &layer),
    ]);

    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(tmp.path().join("deep-image.tar"), image).unwrap();
    std::fs::write(ctx.join("deep.tar"), &layer).unwrap();
    std::fs::write(ctx.join("Dockerfile.from"), "FROM base\n").unwrap();
    std::fs::write(ctx.join("Dockerfile.add"), "FROM scratch\nADD deep.tar /\n").unwrap();
    let base = format!(
        "base=docker-archive:{}",
        tmp.path().join("deep-image.tar").display()
    );
    for (dockerfile, extra, line) in [
        ("Dockerfile.from", vec!["--build-context", base.as_str()], 1),
        ("Dockerfile.add", vec![], 2),
    ] {
        let out = tmp.path().join("image.tar");
        let file = ctx.join(dockerfile).display().to_string();
        let args: Vec<&str> = ["-f", file.as_str()].into_iter().chain(extra).collect();
        let (code, err) = build_quietly(&args, &out, &ctx);
        assert_eq!(code, Some(2), "{dockerfile}: {err}");
        assert!(err.contains(&format!("{dockerfile}:{line}")), "{err}");
        assert!(err.contains("more than 2048 levels deep"), "{err}");
        // The 200 KB name is shown by its start.
        assert!(err.len() < 2000, "{} bytes of error", err.len());
        assert!(!out.exists());
    }
}

#[test]
fn dockerfiles_over_16_mib_are_refused_unread() {
    // FROM, then comment lines of 1,000 bytes, then one shorter to reach exactly `len`.
    let dockerfile = |len: usize| {
        let mut text = String::from("FROM scratch\n");
        let line = format!("#{}\n", "x".repeat(998));
        while text.len() + line.len() <= len {
            text.push_str(&line);
        }
        let rest = len - text.len();
        text.push_str(&format!("#{}\n", "x".repeat(rest.saturating_sub(2))));
        text.truncate(len);
        text
    };
    let max = kiln_dockerfile::MAX_DOCKERFILE_SIZE;
    assert_eq!(
        (dockerfile(max).len(), dockerfile(max + 1).len()),
        (max, max + 1)
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("Dockerfile"), dockerfile(max + 1)).unwrap();
    let out = tmp.path().join("image.tar");
    let (code, err) = build_quietly(&[], &out, tmp.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("Dockerfile:1: the Dockerfile is larger than 16 MiB"),
        "{err}"
    );
    assert!(!out.exists());
    let r = kiln().arg("lint").arg(tmp.path()).output().unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains("larger than 16 MiB"), "{err}");
    // Exactly the limit is read and built.
    std::fs::write(tmp.path().join("Dockerfile"), dockerfile(max)).unwrap();
    let (code, err) = build_quietly(&[], &out, tmp.path());
    assert_eq!(code, Some(0), "{err}");
}
