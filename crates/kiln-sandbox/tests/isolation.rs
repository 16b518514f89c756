//! What the command can see and do: pids, file system, network, capabilities, descriptors, and
//! what `run` reports back.

mod common;

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use kiln_sandbox::{Error, ExitStatus, Mount, Network, Rootfs, RunSpec, DEFAULT_CAPS};

fn run_script(
    script: &str,
    tweak: impl FnOnce(&mut RunSpec),
) -> (
    kiln_sandbox::RunOutcome,
    String,
    Vec<kiln_sandbox::Change>,
    Base,
) {
    let base = Base::new();
    let lowers = vec![base.lower.clone()];
    let (o, out, ch, _) = overlay_run(&base, &lowers, "iso", script, tweak);
    (o, out, ch, base)
}

#[test]
fn only_own_processes_are_visible() {
    require_root();
    let (o, out, _, _) = run_script("echo $$; /bin/busybox sleep 30 & /bin/busybox ps -o pid,comm; ls /proc | /bin/busybox grep -E '^[0-9]+$' | /bin/busybox sort -n | /bin/busybox tr '\\n' ' '", |_| {});
    assert!(o.status.success(), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    // As with runc, the command is pid 1.
    assert_eq!(lines[0], "1");
    // ps: header, then the shell, sleep and ps itself.
    let procs: Vec<(u32, &str)> = lines[2..lines.len() - 1]
        .iter()
        .map(|l| {
            let mut f = l.split_whitespace();
            (f.next().unwrap().parse().unwrap(), f.next().unwrap())
        })
        .collect();
    // The background job may not have exec'd busybox yet when ps looks (comm still "sh"):
    // what matters is that only the command's own few processes exist.
    assert_eq!(procs.len(), 3, "{out}");
    assert_eq!(procs[0], (1, "sh"), "{out}");
    assert!(
        procs
            .iter()
            .all(|(pid, comm)| *pid <= 3 && ["sh", "busybox"].contains(comm)),
        "{out}"
    );
    // /proc lists the same namespace: a handful of small pids, never the host's.
    let listed: Vec<u32> = lines
        .last()
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(listed.len() < 10 && listed.iter().all(|&p| p < 20), "{out}");
    assert!(
        listed.contains(&1) && !listed.contains(&std::process::id()),
        "{out}"
    );
}

#[test]
fn leftover_background_processes_are_killed() {
    require_root();
    let start = Instant::now();
    let (o, _, _, _) = run_script(
        "/bin/busybox setsid /bin/busybox sleep 60 & /bin/busybox sleep 60 & exit 0",
        |_| {},
    );
    assert!(o.status.success());
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "run waited for background processes"
    );
}

#[test]
fn writes_outside_the_root_stay_inside() {
    require_root();
    let tag = format!("kiln-escape-{}", std::process::id());
    let script = format!(
        "echo 1 > /../../{tag}-1; ln -s / /rootlink; echo 2 > /rootlink/{tag}-2; \
         echo 3 > /proc/self/root/{tag}-3; echo 4 > /proc/1/root/{tag}-4; \
         cd /proc/1/cwd && echo 5 > ../../{tag}-5; true"
    );
    let (o, out, ch, _) = run_script(&script, |_| {});
    assert!(o.status.success(), "{out}");
    for i in 1..=5 {
        assert!(
            !PathBuf::from(format!("/{tag}-{i}")).exists(),
            "escaped to the host: {i}"
        );
    }
    let s = summary(&ch);
    for i in 1..=3 {
        assert!(s.contains(&format!("A {tag}-{i}")), "{s:?}");
    }
}

#[test]
fn no_network_only_loopback() {
    require_root();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let script = format!(
        "ls /sys/class/net; /bin/busybox ip -o link | /bin/busybox cut -d: -f2; \
         echo hi | /bin/busybox nc -w 2 127.0.0.1 {port} && echo CONNECTED || echo REFUSED"
    );
    let (o, out, _, _) = run_script(&script, |s| s.network = Network::None);
    assert!(o.status.success(), "{out}");
    assert!(out.starts_with("lo\n lo\n"), "{out}");
    assert!(out.ends_with("REFUSED\n"), "{out}");
    assert!(
        listener.accept().is_err(),
        "the sandbox reached the host's loopback"
    );

    // Control: with the host network the same connection works.
    listener.set_nonblocking(false).unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("connection from the sandbox");
        let mut got = [0u8; 3];
        conn.read_exact(&mut got).unwrap();
        got
    });
    let (o, out, _, _) = run_script(&script, |s| s.network = Network::Host);
    assert!(o.status.success(), "{out}");
    assert!(out.ends_with("CONNECTED\n"), "{out}");
    assert_eq!(&server.join().unwrap(), b"hi\n");
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("{key} missing in {status}"))
        .trim()
        .to_string()
}

#[test]
fn docker_default_capabilities_and_new_privileges_allowed() {
    require_root();
    let default: u64 = DEFAULT_CAPS.iter().map(|c| 1u64 << c.index()).sum();
    assert_eq!(default, 0xa80425fb, "Docker's default set");
    let (o, out, _, _) = run_script("cat /proc/self/status", |_| {});
    assert!(o.status.success());
    for key in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(
            u64::from_str_radix(&status_field(&out, key), 16).unwrap(),
            default,
            "{key}"
        );
    }
    assert_eq!(
        u64::from_str_radix(&status_field(&out, "CapInh:"), 16).unwrap(),
        0
    );
    // BuildKit's spec has oci.WithNewPrivileges: setuid binaries work (see below).
    assert_eq!(status_field(&out, "NoNewPrivs:"), "0");
    // A non-root user has no effective capabilities, the bounding set stays Docker's.
    let (_, out, _, _) = run_script("cat /proc/self/status", |s| s.user = "1000:1000".into());
    assert_eq!(
        u64::from_str_radix(&status_field(&out, "CapEff:"), 16).unwrap(),
        0
    );
    assert_eq!(
        u64::from_str_radix(&status_field(&out, "CapBnd:"), 16).unwrap(),
        default
    );
    assert_eq!(status_field(&out, "Uid:"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out, "Groups:"), "1000");
}

#[test]
fn no_descriptor_of_the_caller_leaks() {
    require_root();
    // A descriptor without close-on-exec in the calling process.
    let leaky = unsafe { libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY) };
    assert!(leaky > 2);
    let (o, out, _, _) = run_script("ls /proc/self/fd | /bin/busybox tr '\\n' ' '", |_| {});
    unsafe { libc::close(leaky) };
    assert!(o.status.success());
    // 0, 1, 2 and the directory ls is reading.
    assert_eq!(out, "0 1 2 3 ");
}

#[test]
fn dev_sys_and_environment_look_like_buildkit() {
    require_root();
    let script = "ls /dev | /bin/busybox tr '\\n' ' '; echo; echo x > /dev/null && /bin/busybox head -c 4 /dev/zero | wc -c; \
                  touch /sys/x 2>/dev/null && echo SYSRW || echo SYSRO; env | /bin/busybox sort | /bin/busybox tr '\\n' ' '; echo; umask";
    let (o, out, _, _) = run_script(script, |s| {
        s.env = vec![kiln_sandbox::DEFAULT_PATH_ENV.into(), "A=1".into()];
    });
    assert!(o.status.success(), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero "
    );
    assert_eq!(lines[1].trim(), "4");
    assert_eq!(lines[2], "SYSRO");
    // runc adds HOME from /etc/passwd; busybox sh adds PWD and SHLVL itself.
    assert_eq!(
        lines[3],
        format!(
            "A=1 HOME=/root {} PWD=/ SHLVL=1 ",
            kiln_sandbox::DEFAULT_PATH_ENV
        )
    );
    assert_eq!(lines[4], "0022");
}

#[test]
fn exit_codes_signals_output_and_exec_errors() {
    require_root();
    let (o, out, _, _) = run_script("echo out; echo err >&2; exit 3", |_| {});
    assert_eq!(o.status, ExitStatus::Code(3));
    assert_eq!(out, "out\nerr\n");
    assert_eq!(o.output_tail, b"out\nerr\n");
    // The command is pid 1 of its namespace: signals from inside do not kill it (as in runc),
    // other processes die normally.
    let (o, out, _, _) = run_script(
        "kill -9 $$; /bin/busybox sh -c 'kill -9 $$'; echo survived $?",
        |_| {},
    );
    assert_eq!(o.status, ExitStatus::Code(0));
    assert_eq!(out, "Killed\nsurvived 137\n");
    let (o, out, _, _) = run_script("/bin/busybox seq 1 3000", |_| {});
    assert!(o.status.success());
    assert_eq!(o.output_tail.len(), kiln_sandbox::OUTPUT_TAIL);
    assert!(out.ends_with("2999\n3000\n") && o.output_tail.ends_with(b"2999\n3000\n"));

    let base = Base::new();
    let (upper, work) = base.layer("x");
    let spec = RunSpec::new(
        Rootfs::Overlay {
            lowers: vec![base.lower.clone()],
            upper,
            work,
        },
        vec!["no-such-program".into()],
        base.scratch(),
    );
    match kiln_sandbox::run(&spec, &mut |_: &[u8]| {}) {
        Err(Error::Exec { program, message }) => {
            assert_eq!(program, "no-such-program");
            assert_eq!(
                message,
                "exec: \"no-such-program\": executable file not found in $PATH"
            );
        }
        other => panic!("{other:?}"),
    }
    // Relative argv[0] is looked up in the container's PATH.
    let (upper, work) = base.layer("y");
    let spec = RunSpec::new(
        Rootfs::Overlay {
            lowers: vec![base.lower.clone()],
            upper,
            work,
        },
        vec!["echo".into(), "found".into()],
        base.scratch(),
    );
    let mut out = Vec::new();
    let o = kiln_sandbox::run(&spec, &mut |b: &[u8]| out.extend_from_slice(b)).unwrap();
    assert!(o.status.success());
    assert_eq!(out, b"found\n");
}

#[test]
fn binds_read_only_and_writable_but_discarded() {
    require_root();
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("in.txt"), "input\n").unwrap();
    let script = "cat /ro/in.txt; (echo no > /ro/new) 2>/dev/null || echo RO; echo yes > /rw/new && cat /rw/new; cat /one; echo changed > /one";
    let file = src.path().join("in.txt");
    let (o, out, ch, _) = run_script(script, |s| {
        s.mounts = vec![
            Mount::Bind {
                source: src.path().to_path_buf(),
                target: "/ro".into(),
                readonly: true,
            },
            Mount::Bind {
                source: src.path().to_path_buf(),
                target: "/rw".into(),
                readonly: false,
            },
            Mount::Bind {
                source: file.clone(),
                target: "/one".into(),
                readonly: false,
            },
        ];
    });
    assert!(o.status.success(), "{out}");
    assert_eq!(out, "input\nRO\nyes\ninput\n");
    let names: Vec<String> = fs::read_dir(src.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["in.txt"]);
    assert_eq!(fs::read_to_string(&file).unwrap(), "input\n");
    assert_eq!(summary(&ch), ["A dev", "A proc", "A sys"]);
}

#[test]
fn nothing_stays_mounted_and_scratch_is_emptied() {
    require_root();
    let base = Base::new();
    let lowers = vec![base.lower.clone()];
    let (o, _, _, _) = overlay_run(&base, &lowers, "a", "true", |s| {
        s.mounts = vec![Mount::Tmpfs {
            target: "/t".into(),
        }]
    });
    assert!(o.status.success());
    // A set-up failure (bind source that vanished) must clean up too.
    let gone = base.tmp.path().join("gone");
    fs::create_dir(&gone).unwrap();
    let (upper, work) = base.layer("b");
    let mut spec = RunSpec::new(
        Rootfs::Overlay {
            lowers: lowers.clone(),
            upper,
            work: work.clone(),
        },
        sh("true"),
        base.scratch(),
    );
    spec.mounts = vec![Mount::Bind {
        source: gone.clone(),
        target: "/g".into(),
        readonly: true,
    }];
    fs::remove_dir(&gone).unwrap();
    assert!(kiln_sandbox::run(&spec, &mut |_: &[u8]| {}).is_err());
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(base.tmp.path().to_str().unwrap()),
        "{mountinfo}"
    );
    assert_eq!(fs::read_dir(base.scratch()).unwrap().count(), 0);
    // The overlay work dir can be removed by the caller.
    fs::remove_dir_all(base.tmp.path().join("a")).unwrap();
}

#[test]
fn a_file_capability_is_gained_as_under_buildkit() {
    require_root();
    // With no_new_privs the kernel would ignore file capabilities (and setuid bits) at
    // exec; BuildKit allows new privileges, so `ping`-style binaries work for any user.
    // (busybox drops setuid privileges itself, so a file capability is what shows it.)
    let base = Base::new();
    fs::create_dir(base.lower.join("caps")).unwrap();
    let bin = base.lower.join("caps/busybox");
    fs::copy(base.lower.join("bin/busybox"), &bin).unwrap();
    // vfs_cap_data, revision 2, effective: CAP_NET_RAW (13) permitted.
    let mut cap = Vec::new();
    cap.extend_from_slice(&0x0200_0001u32.to_le_bytes());
    cap.extend_from_slice(&(1u32 << 13).to_le_bytes());
    cap.extend_from_slice(&[0; 12]);
    let path = std::ffi::CString::new(bin.as_os_str().as_encoded_bytes()).unwrap();
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            cap.as_ptr().cast(),
            cap.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
    let lowers = vec![base.lower.clone()];
    let (o, out, _, _) = overlay_run(
        &base,
        &lowers,
        "fcaps",
        "/caps/busybox grep CapEff /proc/self/status; /bin/busybox grep CapEff /proc/self/status",
        |s| s.user = "1000:1000".into(),
    );
    assert!(o.status.success(), "{out}");
    assert_eq!(
        out,
        "CapEff:\t0000000000002000\nCapEff:\t0000000000000000\n"
    );
}
