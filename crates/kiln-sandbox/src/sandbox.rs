//! The parent side of a run: prepare, fork, stream the output, collect the status, clean up.
//!
//! Process structure (everything is forked from the caller, nothing is re-executed):
//!
//! ```text
//! caller ── fork ─► supervisor: unshare(mount, uts, ipc, pid[, net]), mount the root fs
//!                     └─ fork ─► container (pid 1): unshare(mount), /proc, /dev, ..., pivot_root,
//!                                                   exec the command (it stays pid 1, as in runc)
//! ```
//!
//! When the command exits, the kernel kills whatever else runs in its pid namespace and drops
//! its mounts; the supervisor removes the mount stubs through its own view of the root file
//! system and reports the status through a pipe. Every mount lives in a namespace that dies
//! with these processes, so nothing stays mounted, whatever happens. Both children die with
//! their parent (`PR_SET_PDEATHSIG`).

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};

use crate::container::{self, Plan, PlannedMount, RootSource};
use crate::error::{Error, IoContext, Result};
use crate::spec::{ExitStatus, Mount, Network, Rootfs, RunOutcome, RunSpec, OUTPUT_TAIL};
use crate::userns::Mapping;

/// BuildKit's `/etc/hosts` (`executor/oci/hosts.go`, hostname `buildkitsandbox`).
pub const HOSTS: &str =
    "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// `/etc/resolv.conf` without network: no nameserver, so the bytes never depend on the host.
pub const RESOLV_CONF_NO_NETWORK: &str = "# kiln: this RUN has no network\n";

/// Runs `spec.argv` in the sandbox. The command's stdout and stderr (one stream, in write order)
/// go to `output` as they come; the command's exit status is in the outcome, set-up problems are
/// errors. Changes are in the upper dir (or the tree) afterwards: see [`crate::changes`].
pub fn run(spec: &RunSpec, output: &mut dyn FnMut(&[u8])) -> Result<RunOutcome> {
    validate(spec)?;
    let mapping = Mapping::current()?;
    let state = tempdir_in(&spec.scratch_dir)?;
    let result = run_in(spec, &mapping, &state, output);
    if let Rootfs::Overlay { work, .. } = &spec.rootfs {
        // The kernel leaves work/work with mode 000; make it removable for the caller.
        crate::snapshot::fix_permissions(work)?;
    }
    let cleanup = crate::snapshot::remove_tree(&state);
    let outcome = result?;
    cleanup?;
    Ok(outcome)
}

fn validate(spec: &RunSpec) -> Result<()> {
    let bad = |m: String| Err(Error::Spec(m));
    if spec.argv.is_empty() {
        return bad("argv is empty".into());
    }
    if !spec.cwd.starts_with('/') {
        return bad(format!("working directory {:?} is not absolute", spec.cwd));
    }
    for m in &spec.mounts {
        if !m.target().starts_with('/') {
            return bad(format!("mount target {:?} is not absolute", m.target()));
        }
    }
    let strings = spec
        .argv
        .iter()
        .chain(&spec.env)
        .chain([&spec.cwd, &spec.user]);
    for s in strings.chain(spec.mounts.iter().map(|m| match m {
        Mount::Tmpfs { target } | Mount::Bind { target, .. } => target,
    })) {
        if s.contains('\0') {
            return bad(format!("{s:?} contains a NUL byte"));
        }
    }
    match &spec.rootfs {
        Rootfs::Overlay {
            lowers,
            upper,
            work,
        } => {
            for d in lowers.iter().chain([upper, work]) {
                if !fs::metadata(d).at("stat", d)?.is_dir() {
                    return bad(format!("{} is not a directory", d.display()));
                }
            }
            let (u, w) = (
                fs::metadata(upper).at("stat", upper)?,
                fs::metadata(work).at("stat", work)?,
            );
            if u.dev() != w.dev() {
                return bad(
                    "overlay upper and work directories are on different file systems".into(),
                );
            }
        }
        Rootfs::Dir(d) => {
            if !fs::metadata(d).at("stat", d)?.is_dir() {
                return bad(format!("{} is not a directory", d.display()));
            }
        }
    }
    Ok(())
}

fn tempdir_in(dir: &Path) -> Result<PathBuf> {
    let t = tempfile::Builder::new()
        .prefix("kiln-run-")
        .tempdir_in(dir)
        .at("create temporary directory in", dir)?;
    Ok(t.keep())
}

fn run_in(
    spec: &RunSpec,
    mapping: &Mapping,
    state: &Path,
    output: &mut dyn FnMut(&[u8]),
) -> Result<RunOutcome> {
    let in_userns = mapping.in_user_namespace();
    let hosts = state.join("hosts");
    fs::write(&hosts, HOSTS).at("write", &hosts)?;
    let resolv = state.join("resolv.conf");
    let resolv_text = match spec.network {
        Network::None => RESOLV_CONF_NO_NETWORK.as_bytes().to_vec(),
        Network::Host => fs::read("/etc/resolv.conf").unwrap_or_default(),
    };
    fs::write(&resolv, resolv_text).at("write", &resolv)?;
    let rootfs_mnt = state.join("rootfs");
    fs::create_dir(&rootfs_mnt).at("create directory", &rootfs_mnt)?;

    let root_source = match &spec.rootfs {
        Rootfs::Overlay {
            lowers,
            upper,
            work,
        } => {
            let mut lowers = lowers.clone();
            if lowers.is_empty() {
                let empty = state.join("empty-lower");
                fs::create_dir(&empty).at("create directory", &empty)?;
                lowers.push(empty);
            }
            RootSource::Overlay {
                lowers,
                upper: upper.clone(),
                work: work.clone(),
                userxattr: in_userns,
            }
        }
        Rootfs::Dir(d) => RootSource::Bind(d.clone()),
    };

    let mut mounts = Vec::new();
    for (i, m) in spec.mounts.iter().enumerate() {
        mounts.push(plan_mount(m, state, i, in_userns)?);
    }
    let plan = Plan {
        rootfs_mnt,
        root_source,
        network: spec.network,
        hosts_file: hosts,
        resolv_file: resolv,
        mounts,
        argv: spec.argv.clone(),
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
        user: spec.user.clone(),
    };

    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(std::io::Error::from)
        .at("create pipe in", state)?;
    let (status_r, status_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(std::io::Error::from)
        .at("create pipe in", state)?;

    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWPID;
    if spec.network == Network::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    // SAFETY: the child only runs `shim`, which makes system calls, allocates (glibc's fork
    // keeps malloc usable) and never returns; it takes no locks another thread could hold.
    let shim_pid = match unsafe { fork() }
        .map_err(std::io::Error::from)
        .at("fork in", state)?
    {
        ForkResult::Child => {
            drop(out_r);
            drop(status_r);
            shim(flags, &plan, out_w, status_w)
        }
        ForkResult::Parent { child } => child,
    };
    drop(out_w);
    drop(status_w);

    let mut tail: Vec<u8> = Vec::new();
    let mut out = fs::File::from(out_r);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                output(&buf[..n]);
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > OUTPUT_TAIL {
                    tail.drain(..tail.len() - OUTPUT_TAIL);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).at("read command output in", state),
        }
    }
    let mut report = String::new();
    let _ = fs::File::from(status_r).read_to_string(&mut report);
    let shim_status = loop {
        match waitpid(shim_pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    let status = parse_report(&report, &spec.argv[0])?;
    match status {
        Some(status) => Ok(RunOutcome {
            status,
            output_tail: tail,
        }),
        None => Err(Error::Setup {
            step: "sandbox init".into(),
            message: format!("exited without a report ({shim_status:?})"),
        }),
    }
}

/// Decides what the init process reported: the first set-up or exec failure wins.
fn parse_report(report: &str, program: &str) -> Result<Option<ExitStatus>> {
    let mut status = None;
    for line in report.lines() {
        let mut f = line.splitn(3, '\t');
        match (f.next(), f.next(), f.next()) {
            (Some("S"), Some(step), Some(msg)) => {
                return Err(Error::Setup {
                    step: step.into(),
                    message: msg.into(),
                })
            }
            (Some("E"), Some(_), Some(msg)) => {
                return Err(Error::Exec {
                    program: program.into(),
                    message: msg.into(),
                })
            }
            (Some("X"), Some(code), _) => status = code.parse().ok().map(ExitStatus::Code),
            (Some("K"), Some(sig), _) => status = sig.parse().ok().map(ExitStatus::Signal),
            _ => {}
        }
    }
    Ok(status)
}

/// First child: enter the new namespaces and supervise the container.
fn shim(flags: CloneFlags, plan: &Plan, out_w: OwnedFd, status_w: OwnedFd) -> ! {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    // Descriptors other threads of the caller had open at fork time (say, a file being written
    // that some later RUN executes: ETXTBSY) must not live as long as the sandbox.
    close_all_but(&[out_w.as_raw_fd(), status_w.as_raw_fd()]);
    if let Err(e) = nix::sched::unshare(flags) {
        container::report(&status_w, &format!("S\tunshare namespaces\t{e}\n"));
        container::exit(1);
    }
    container::supervise(plan, out_w, status_w)
}

/// Closes every descriptor from 3 up except `keep`.
fn close_all_but(keep: &[i32]) {
    let mut keep = keep.to_vec();
    keep.sort_unstable();
    let mut from = 3u32;
    for fd in keep.into_iter().filter_map(|k| u32::try_from(k).ok()) {
        if fd > from {
            // SAFETY: closing descriptors this (forked, single-threaded) process owns.
            unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0u32) };
        }
        from = from.max(fd + 1);
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) };
}

/// Prepares a `RUN --mount` for the init process.
fn plan_mount(m: &Mount, state: &Path, index: usize, in_userns: bool) -> Result<PlannedMount> {
    Ok(match m {
        Mount::Tmpfs { target } => PlannedMount::Tmpfs {
            target: target.clone(),
        },
        Mount::Bind {
            source,
            target,
            readonly: true,
        } => {
            let is_dir = fs::metadata(source).at("stat", source)?.is_dir();
            PlannedMount::Bind {
                source: source.clone(),
                target: target.clone(),
                readonly: true,
                is_dir,
            }
        }
        Mount::Bind {
            source,
            target,
            readonly: false,
        } => {
            // Writes are allowed but must not reach the source: an overlay for directories, a
            // private copy for files.
            let meta = fs::metadata(source).at("stat", source)?;
            let base = state.join(format!("mount-{index}"));
            fs::create_dir(&base).at("create directory", &base)?;
            if meta.is_dir() {
                let (upper, work) = (base.join("upper"), base.join("work"));
                fs::create_dir(&upper).at("create directory", &upper)?;
                fs::create_dir(&work).at("create directory", &work)?;
                let mut options = format!(
                    "lowerdir={},upperdir={},workdir={},index=off",
                    escape_overlay_path(source),
                    escape_overlay_path(&upper),
                    escape_overlay_path(&work)
                );
                if in_userns {
                    options.push_str(",userxattr");
                }
                PlannedMount::Overlay {
                    options,
                    target: target.clone(),
                }
            } else {
                let copy = base.join("file");
                fs::copy(source, &copy).at("copy", source)?;
                PlannedMount::Bind {
                    source: copy,
                    target: target.clone(),
                    readonly: false,
                    is_dir: false,
                }
            }
        }
    })
}

/// overlayfs option values escape `\`, `,` and `:` with a backslash.
fn escape_overlay_path(p: &Path) -> String {
    let mut s = String::new();
    for c in p.to_string_lossy().chars() {
        if matches!(c, '\\' | ',' | ':') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_parsed_first_failure_wins() {
        assert_eq!(
            parse_report("X\t3\n", "sh").unwrap(),
            Some(ExitStatus::Code(3))
        );
        assert_eq!(
            parse_report("K\t9\n", "sh").unwrap(),
            Some(ExitStatus::Signal(9))
        );
        assert_eq!(parse_report("", "sh").unwrap(), None);
        let e = parse_report(
            "E\tx\texec: \"nope\": executable file not found in $PATH\nX\t127\n",
            "nope",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot start \"nope\": exec: \"nope\": executable file not found in $PATH"
        );
        let e = parse_report("S\tmount overlay\tEPERM\n", "sh").unwrap_err();
        assert_eq!(
            e.to_string(),
            "sandbox set-up failed (mount overlay): EPERM"
        );
    }

    #[test]
    fn overlay_paths_are_escaped() {
        assert_eq!(
            escape_overlay_path(Path::new("/a:b,c\\d")),
            "/a\\:b\\,c\\\\d"
        );
    }
}
