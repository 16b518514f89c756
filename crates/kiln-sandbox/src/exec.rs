//! The command process: what runc's `finalizeNamespace` and `linuxStandardInit` do between the
//! container set-up and `execve`.
//!
//! Order (runc 1.1.5): drop the bounding set, keep caps across the uid change, set groups, gid
//! and uid, clear keep-caps, set Docker's default capabilities, look the program up in the
//! container's `PATH`, exec. Not `no_new_privs`: BuildKit asks runc for new privileges.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;

use caps::{CapSet, Capability};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal};

use crate::container::Plan;
use crate::user::ResolvedUser;

/// Docker's (containerd's) default capability set.
pub const DEFAULT_CAPS: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// A command ready to exec: everything computed before forking it.
pub(crate) struct Command {
    program: String,
    argv: Vec<CString>,
    envp: Vec<CString>,
    path_env: String,
    cwd: CString,
    uid: u32,
    gid: u32,
    groups: Option<Vec<u32>>,
    /// Set when the environment cannot be built (runc refuses it).
    env_error: Option<String>,
}

impl Command {
    pub(crate) fn prepare(plan: &Plan, user: &ResolvedUser, setgroups_allowed: bool) -> Command {
        let (env, env_error) = match build_env(&plan.env, &user.home) {
            Ok(e) => (e, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let path_env = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("")
            .to_string();
        // Validated NUL-free by the parent.
        let cs = |s: &str| CString::new(s).unwrap_or_default();
        Command {
            program: plan.argv.first().cloned().unwrap_or_default(),
            argv: plan.argv.iter().map(|a| cs(a)).collect(),
            envp: env.iter().map(|e| cs(e)).collect(),
            path_env,
            cwd: cs(&plan.cwd),
            uid: user.uid,
            gid: user.gid,
            groups: setgroups_allowed.then(|| user.additional_gids.clone()),
            env_error,
        }
    }
}

/// containerd's `replaceOrAppendEnvValues` onto an empty list, then runc's `Setenv` loop and its
/// `HOME` default.
pub(crate) fn build_env(given: &[String], home: &str) -> Result<Vec<String>, String> {
    let mut env: Vec<Option<String>> = Vec::new();
    let key_of = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    for e in given {
        let k = key_of(e);
        match (e.contains('='), index.get(&k)) {
            (false, Some(&i)) => env[i] = None,
            (false, None) => {}
            (true, Some(&i)) => env[i] = Some(e.clone()),
            (true, None) => {
                index.insert(k, env.len());
                env.push(Some(e.clone()));
            }
        }
    }
    let mut env: Vec<String> = env.into_iter().flatten().collect();
    for e in &env {
        if e.starts_with('=') {
            return Err(format!("environment variable name can't be empty: {e:?}"));
        }
    }
    match env.iter().position(|e| e.starts_with("HOME=")) {
        Some(i) if env[i] == "HOME=" => env[i] = format!("HOME={home}"),
        Some(_) => {}
        None => env.push(format!("HOME={home}")),
    }
    Ok(env)
}

/// In the forked command process: set up and exec, or report why not and `_exit(127)`.
pub(crate) fn run(cmd: &Command, out_w: &OwnedFd, status_w: &OwnedFd) -> ! {
    let fail = |msg: String| -> ! {
        crate::container::report(
            status_w,
            &format!("E\t{}\t{}\n", cmd.program, msg.replace(['\t', '\n'], " ")),
        );
        crate::container::exit(127)
    };
    if let Some(e) = &cmd.env_error {
        fail(e.clone());
    }
    if let Err(e) = prepare_process(cmd, out_w) {
        fail(e);
    }
    let program = match look_path(&cmd.program, &cmd.path_env) {
        Ok(p) => p,
        Err(e) => fail(e),
    };
    let Ok(path) = CString::new(program) else {
        fail("program path contains a NUL byte".into())
    };
    // ETXTBSY: another thread of the caller may have forked while the program file was open
    // for writing; that descriptor is closed right after such forks, so retry briefly.
    let mut tries = 0;
    loop {
        match nix::unistd::execve(&path, &cmd.argv, &cmd.envp) {
            Err(nix::errno::Errno::ETXTBSY) if tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(err) => fail(format!("exec {:?}: {err}", cmd.program)),
            Ok(never) => match never {},
        }
    }
}

fn prepare_process(cmd: &Command, out_w: &OwnedFd) -> Result<(), String> {
    fn e(what: &'static str) -> impl Fn(nix::Error) -> String {
        move |err| format!("{what}: {err}")
    }
    nix::unistd::setsid().map_err(e("setsid"))?;
    // Rust ignores SIGPIPE and the caller may block signals: neither must reach the command.
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            // SAFETY: restoring default dispositions runs no handler code.
            let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
        }
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(e("sigprocmask"))?;

    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(e("open /dev/null"))?;
    // SAFETY: dup2 on descriptors this process owns.
    unsafe {
        if libc::dup2(null.as_raw_fd(), 0) < 0
            || libc::dup2(out_w.as_raw_fd(), 1) < 0
            || libc::dup2(out_w.as_raw_fd(), 2) < 0
        {
            return Err(format!("dup2: {}", std::io::Error::last_os_error()));
        }
        // Nothing of kiln leaks into the command: every other descriptor closes on exec.
        if libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            return Err(format!("close_range: {}", std::io::Error::last_os_error()));
        }
    }
    drop(null);

    let cwd_first = nix::unistd::chdir(cmd.cwd.as_c_str());
    let cwd_retry = match cwd_first {
        Ok(()) => false,
        Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) => true,
        Err(err) => return Err(format!("chdir to cwd ({:?}) failed: {err}", cmd.cwd)),
    };

    let keep: HashSet<Capability> = DEFAULT_CAPS.into_iter().collect();
    for c in caps::runtime::thread_all_supported() {
        if !keep.contains(&c) {
            caps::drop(None, CapSet::Bounding, c)
                .map_err(|err| format!("drop bounding {c}: {err}"))?;
        }
    }
    nix::sys::prctl::set_keepcaps(true).map_err(e("keep caps"))?;
    if let Some(groups) = &cmd.groups {
        let gids: Vec<nix::unistd::Gid> = groups
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&gids).map_err(e("setgroups"))?;
    }
    let (uid, gid) = (
        nix::unistd::Uid::from_raw(cmd.uid),
        nix::unistd::Gid::from_raw(cmd.gid),
    );
    nix::unistd::setresgid(gid, gid, gid).map_err(|err| format!("setgid {}: {err}", cmd.gid))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|err| format!("setuid {}: {err}", cmd.uid))?;
    if cwd_retry {
        nix::unistd::chdir(cmd.cwd.as_c_str())
            .map_err(|err| format!("chdir to cwd ({:?}) failed: {err}", cmd.cwd))?;
    }
    nix::sys::prctl::set_keepcaps(false).map_err(e("clear keep caps"))?;
    let current = caps::read(None, CapSet::Permitted).map_err(|err| format!("read caps: {err}"))?;
    let wanted: caps::CapsHashSet = keep.intersection(&current).copied().collect();
    caps::set(None, CapSet::Effective, &wanted)
        .map_err(|err| format!("set effective caps: {err}"))?;
    caps::set(None, CapSet::Permitted, &wanted)
        .map_err(|err| format!("set permitted caps: {err}"))?;
    caps::clear(None, CapSet::Inheritable)
        .map_err(|err| format!("clear inheritable caps: {err}"))?;
    let _ = caps::clear(None, CapSet::Ambient);
    // No `no_new_privs`: BuildKit's spec has `oci.WithNewPrivileges`, so setuid and file
    // capability binaries (su, ping) work in RUN as they do under BuildKit. The bounding
    // set above still caps what they can gain.
    // runc inherits buildkitd's umask (022); fixed here so file modes never depend on the caller.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    Ok(())
}

/// Go's `exec.LookPath` as runc calls it, with the container's `PATH`.
pub(crate) fn look_path(file: &str, path_env: &str) -> Result<String, String> {
    if file.contains('/') {
        return find_executable(file)
            .map(|()| file.to_string())
            .map_err(|e| format!("exec: {file:?}: {e}"));
    }
    if !path_env.is_empty() {
        for dir in path_env.split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let candidate = format!("{}/{file}", dir.trim_end_matches('/'));
            if find_executable(&candidate).is_ok() {
                if !candidate.starts_with('/') {
                    return Err(format!(
                        "exec: {file:?}: cannot run executable found relative to current directory"
                    ));
                }
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "exec: {file:?}: executable file not found in $PATH"
    ))
}

fn find_executable(file: &str) -> Result<(), String> {
    let meta = std::fs::metadata(file).map_err(|e| format!("stat {file}: {e}"))?;
    if meta.is_dir() {
        return Err(format!("stat {file}: is a directory"));
    }
    match nix::unistd::faccessat(
        nix::fcntl::AT_FDCWD,
        file,
        nix::unistd::AccessFlags::X_OK,
        nix::fcntl::AtFlags::AT_EACCESS,
    ) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::EPERM)
            if meta.permissions().mode() & 0o111 != 0 =>
        {
            Ok(())
        }
        Err(e) => Err(format!("{file}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_follows_containerd_and_runc() {
        let given: Vec<String> = ["PATH=/bin", "A=1", "B=2", "A=3", "B", "C=x=y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            build_env(&given, "/root").unwrap(),
            ["PATH=/bin", "A=3", "C=x=y", "HOME=/root"]
        );
        let given = vec!["HOME=".to_string(), "X=1".to_string()];
        assert_eq!(
            build_env(&given, "/home/app").unwrap(),
            ["HOME=/home/app", "X=1"]
        );
        let given = vec!["HOME=/h".to_string()];
        assert_eq!(build_env(&given, "/root").unwrap(), ["HOME=/h"]);
        assert!(build_env(&["=v".to_string()], "/")
            .unwrap_err()
            .contains("can't be empty"));
    }

    #[test]
    fn look_path_like_go() {
        assert_eq!(look_path("sh", "/nonexistent:/bin").unwrap(), "/bin/sh");
        assert!(look_path("sh", "")
            .unwrap_err()
            .ends_with("executable file not found in $PATH"));
        assert!(look_path("/nonexistent/x", "/bin")
            .unwrap_err()
            .starts_with("exec: \"/nonexistent/x\": stat"));
        assert!(look_path("/etc/passwd", "/bin").is_err());
    }
}
