//! Running as an unprivileged user: re-executing the program in a new user namespace where it is
//! root (the design of `buildah unshare` / rootlesskit).
//!
//! The kiln binary calls [`reexec_into_userns`] first thing in `main`, while it is still
//! single-threaded. As real root (or already namespace root) nothing happens. Otherwise the
//! program starts itself again; the new process enters a user namespace and the original one
//! writes its id mapping:
//!
//! * with `newuidmap`/`newgidmap` (package `uidmap`) and ranges in `/etc/subuid` and
//!   `/etc/subgid`: 0 → the user, 1..=N → the subordinate range, so files can belong to any id
//!   up to N;
//! * otherwise a single id (0 → the user, `setgroups` denied), with a warning on stderr: base
//!   image files owned by other ids, `chown` to other ids and `USER` other than root cannot
//!   work then.
//!
//! The original process waits and exits with the new one's status. [`Mapping::current`] tells
//! which mapping is in effect (it reads `/proc/self/uid_map`, so it is right however the process
//! got there).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// One line of `/proc/<pid>/uid_map` or `gid_map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// First id inside the namespace.
    pub inside: u32,
    /// First id it stands for outside.
    pub outside: u32,
    /// Number of ids.
    pub count: u32,
}

/// The user-namespace mapping of the current process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// uid ranges.
    pub uids: Vec<IdRange>,
    /// gid ranges.
    pub gids: Vec<IdRange>,
}

impl Mapping {
    /// Reads the current process's mapping.
    pub fn current() -> Result<Mapping> {
        Ok(Mapping {
            uids: read_map(Path::new("/proc/self/uid_map"))?,
            gids: read_map(Path::new("/proc/self/gid_map"))?,
        })
    }

    /// Whether this is a user namespace other than the initial one (whose map is the identity
    /// over all 2^32-1 ids).
    pub fn in_user_namespace(&self) -> bool {
        let initial = [IdRange {
            inside: 0,
            outside: 0,
            count: u32::MAX,
        }];
        self.uids != initial
    }

    /// Whether only one uid is mapped (the fallback without subordinate ids).
    pub fn is_single_id(&self) -> bool {
        self.uids.iter().map(|r| u64::from(r.count)).sum::<u64>() == 1
    }

    /// The xattr that marks an opaque directory for the overlay mounts [`crate::run`] makes in
    /// this mapping (`userxattr` inside a user namespace). Lower directories kiln prepares
    /// from layer tars (`.wh..wh..opq`) must use this name: the kernel ignores the other one.
    /// The differ reads both.
    pub fn overlay_opaque_xattr(&self) -> &'static str {
        if self.in_user_namespace() {
            "user.overlay.opaque"
        } else {
            "trusted.overlay.opaque"
        }
    }

    /// Whether `uid` exists inside the namespace.
    pub fn maps_uid(&self, uid: u32) -> bool {
        maps(&self.uids, uid)
    }

    /// Whether `gid` exists inside the namespace.
    pub fn maps_gid(&self, gid: u32) -> bool {
        maps(&self.gids, gid)
    }
}

fn maps(ranges: &[IdRange], id: u32) -> bool {
    ranges
        .iter()
        .any(|r| id >= r.inside && u64::from(id) < u64::from(r.inside) + u64::from(r.count))
}

fn read_map(p: &Path) -> Result<Vec<IdRange>> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| Error::Userns(format!("read {}: {e}", p.display())))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let n: Vec<u32> = l
                .split_whitespace()
                .map(|f| f.parse::<u32>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::Userns(format!("{}: bad line {l:?}: {e}", p.display())))?;
            match n[..] {
                [inside, outside, count] => Ok(IdRange {
                    inside,
                    outside,
                    count,
                }),
                _ => Err(Error::Userns(format!("{}: bad line {l:?}", p.display()))),
            }
        })
        .collect()
}

/// Environment variable that marks the re-executed process: `<mode>:<read fd>:<write fd>`.
const STAGE_ENV: &str = "_KILN_USERNS_STAGE";

/// How the id mapping gets written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// newuidmap/newgidmap with these subordinate ranges (start, count).
    SubIds {
        uid: (u32, u32),
        gid: (u32, u32),
        newuidmap: PathBuf,
        newgidmap: PathBuf,
    },
    /// The process maps its own id only.
    Single,
}

/// Makes the rest of the program run as root of a user namespace. Call it first in `main`,
/// before any thread is started.
///
/// * euid 0: returns the current mapping (no re-exec).
/// * The re-executed child: enters the namespace, waits for its mapping, returns it.
/// * Otherwise: starts the program again, waits for it and exits with its status (never
///   returns, except with an error if the child cannot be started).
pub fn reexec_into_userns() -> Result<Mapping> {
    if let Some(stage) = std::env::var_os(STAGE_ENV) {
        // Our own marker, removed while still single-threaded at start-up.
        std::env::remove_var(STAGE_ENV);
        let stage = stage.to_string_lossy().into_owned();
        return enter_as_child(&stage);
    }
    if nix::unistd::geteuid().is_root() {
        return Mapping::current();
    }
    let plan = plan_for_current_user();
    if plan == Plan::Single {
        eprintln!(
            "kiln: warning: no subordinate ids for this user (/etc/subuid, /etc/subgid with \
             newuidmap/newgidmap from package uidmap); mapping only your own id to root. Base \
             image files owned by other ids, chown to other ids and RUN as a non-root USER will \
             fail."
        );
    }
    let code = run_parent(&plan)?;
    std::process::exit(code);
}

fn plan_for_current_user() -> Plan {
    let uid = nix::unistd::getuid().as_raw();
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name);
    let sub_uid = read_subid(Path::new("/etc/subuid"), name.as_deref(), uid);
    let sub_gid = read_subid(Path::new("/etc/subgid"), name.as_deref(), uid);
    let newuidmap = find_program("newuidmap");
    let newgidmap = find_program("newgidmap");
    match (sub_uid, sub_gid, newuidmap, newgidmap) {
        (Some(u), Some(g), Some(nu), Some(ng)) => Plan::SubIds {
            uid: u,
            gid: g,
            newuidmap: nu,
            newgidmap: ng,
        },
        _ => Plan::Single,
    }
}

/// First `name:start:count` (or `uid:start:count`) line for the user.
fn read_subid(file: &Path, name: Option<&str>, uid: u32) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    parse_subid(&text, name, uid)
}

fn parse_subid(text: &str, name: Option<&str>, uid: u32) -> Option<(u32, u32)> {
    let uid_s = uid.to_string();
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let who = f.next()?;
        let start = f.next()?.parse().ok()?;
        let count: u32 = f.next()?.parse().ok()?;
        ((Some(who) == name || who == uid_s) && count > 0).then_some((start, count))
    })
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The original process: start the program again with the marker and pipes, map it, wait.
fn run_parent(plan: &Plan) -> Result<i32> {
    let err = |what: &str, e: &dyn std::fmt::Display| Error::Userns(format!("{what}: {e}"));
    // child → parent ("ready"), parent → child ("go"). Inherited on purpose: no CLOEXEC.
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::empty()).map_err(|e| err("pipe", &e))?;
    let (go_r, go_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::empty()).map_err(|e| err("pipe", &e))?;
    for fd in [&ready_r, &go_w] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| err("fcntl", &e))?;
    }
    let mode = match plan {
        Plan::SubIds { .. } => "subid",
        Plan::Single => "single",
    };
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| err("read /proc/self/exe", &e))?;
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let mut cmd = Command::new(&exe);
    std::os::unix::process::CommandExt::arg0(&mut cmd, arg0);
    cmd.args(args).env(
        STAGE_ENV,
        format!("{mode}:{}:{}", go_r.as_raw_fd(), ready_w.as_raw_fd()),
    );
    let mut child = cmd.spawn().map_err(|e| err("re-execute", &e))?;
    drop(go_r);
    drop(ready_w);
    let mut ready = std::fs::File::from(ready_r);
    let mut go = std::fs::File::from(go_w);
    // Ignore terminal signals while waiting: the child (same process group) gets them too.
    for sig in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGQUIT,
    ] {
        // SAFETY: installing SIG_IGN has no handler code to run.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) };
    }
    let mut buf = [0u8; 1];
    let started = ready
        .read(&mut buf)
        .map_err(|e| err("wait for child", &e))?
        == 1;
    if started {
        if let Plan::SubIds {
            uid,
            gid,
            newuidmap,
            newgidmap,
        } = plan
        {
            let pid = child.id().to_string();
            let me_u = nix::unistd::getuid().to_string();
            let me_g = nix::unistd::getgid().to_string();
            let result = map_ids(newuidmap, &pid, &me_u, *uid)
                .and_then(|()| map_ids(newgidmap, &pid, &me_g, *gid));
            let msg = match result {
                Ok(()) => "ok\n".to_string(),
                Err(e) => format!("{e}\n"),
            };
            let _ = go.write_all(msg.as_bytes());
        } else {
            let _ = go.write_all(b"ok\n");
        }
    }
    drop(go);
    let status = child.wait().map_err(|e| err("wait for child", &e))?;
    if let Some(code) = status.code() {
        return Ok(code);
    }
    let sig = std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(9);
    Ok(128 + sig)
}

fn map_ids(
    prog: &Path,
    pid: &str,
    me: &str,
    (start, count): (u32, u32),
) -> std::result::Result<(), String> {
    let out = Command::new(prog)
        .args([
            pid,
            "0",
            me,
            "1",
            "1",
            &start.to_string(),
            &count.to_string(),
        ])
        .output()
        .map_err(|e| format!("{}: {e}", prog.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({}): {}",
            prog.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The re-executed process: unshare, get mapped, become root.
fn enter_as_child(stage: &str) -> Result<Mapping> {
    let err = |what: &str, e: &dyn std::fmt::Display| Error::Userns(format!("{what}: {e}"));
    let mut f = stage.split(':');
    let (Some(mode), Some(go_fd), Some(ready_fd)) = (f.next(), f.next(), f.next()) else {
        return Err(Error::Userns(format!("bad {STAGE_ENV} value {stage:?}")));
    };
    let parse_fd = |s: &str| {
        s.parse::<i32>()
            .map_err(|e| Error::Userns(format!("bad fd {s:?} in {STAGE_ENV}: {e}")))
    };
    // SAFETY: the parent passed these descriptors to us and nothing else owns them.
    let (go, ready) = unsafe {
        (
            OwnedFd::from_raw_fd(parse_fd(go_fd)?),
            OwnedFd::from_raw_fd(parse_fd(ready_fd)?),
        )
    };
    let mut go = std::fs::File::from(go);
    let mut ready = std::fs::File::from(ready);
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).map_err(|e| {
        err(
            "unshare(CLONE_NEWUSER) (is the program single-threaded?)",
            &e,
        )
    })?;
    if mode == "single" {
        std::fs::write("/proc/self/setgroups", "deny").map_err(|e| err("write setgroups", &e))?;
        std::fs::write("/proc/self/uid_map", format!("0 {uid} 1"))
            .map_err(|e| err("write uid_map", &e))?;
        std::fs::write("/proc/self/gid_map", format!("0 {gid} 1"))
            .map_err(|e| err("write gid_map", &e))?;
    }
    ready
        .write_all(b"r")
        .map_err(|e| err("signal parent", &e))?;
    let mut answer = String::new();
    go.read_to_string(&mut answer)
        .map_err(|e| err("wait for mapping", &e))?;
    if answer.trim() != "ok" {
        return Err(Error::Userns(format!(
            "mapping ids failed: {}",
            answer.trim()
        )));
    }
    nix::unistd::setresgid(0.into(), 0.into(), 0.into()).map_err(|e| err("setresgid(0)", &e))?;
    nix::unistd::setresuid(0.into(), 0.into(), 0.into()).map_err(|e| err("setresuid(0)", &e))?;
    Mapping::current()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_lines_by_name_or_uid() {
        let t = "alice:100000:65536\nbob:165536:65536\n1001:300000:1000\n";
        assert_eq!(parse_subid(t, Some("bob"), 5), Some((165536, 65536)));
        assert_eq!(parse_subid(t, Some("carol"), 1001), Some((300000, 1000)));
        assert_eq!(parse_subid(t, Some("carol"), 7), None);
    }

    #[test]
    fn mapping_queries() {
        let m = Mapping {
            uids: vec![
                IdRange {
                    inside: 0,
                    outside: 1000,
                    count: 1,
                },
                IdRange {
                    inside: 1,
                    outside: 100000,
                    count: 65536,
                },
            ],
            gids: vec![IdRange {
                inside: 0,
                outside: 1000,
                count: 1,
            }],
        };
        assert!(m.in_user_namespace() && !m.is_single_id());
        assert_eq!(m.overlay_opaque_xattr(), "user.overlay.opaque");
        assert!(m.maps_uid(1000) && m.maps_uid(65536) && !m.maps_uid(65537));
        assert!(!m.maps_gid(1));
        let host = Mapping::current().unwrap();
        // The test suite runs as real root or inside some namespace; either way the map parses.
        assert!(!host.uids.is_empty());
    }
}
