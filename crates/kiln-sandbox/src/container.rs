//! Building the container like BuildKit and runc do: the supervisor (in the new namespaces)
//! mounts the root file system, records mount stubs and creates the working directory; the
//! container process (pid 1 of the new pid namespace) mounts `/proc`, `/dev`, `/sys` and the
//! binds, pivots into the root and becomes the command; the supervisor then removes the stubs
//! and reports.
//!
//! Runs in forked children of a possibly multi-threaded program: nothing here returns into the
//! caller's code, unwinds into it or writes to its stdout/stderr.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use crate::rootpath::root_path;
use crate::spec::Network;
use crate::user::ResolvedUser;

/// How to get the root file system.
#[derive(Debug)]
pub(crate) enum RootSource {
    /// An overlay of `lowers` (top first) with `upper` and `work`.
    Overlay {
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        /// Mounted inside a user namespace: use the `user.overlay.*` xattrs.
        userxattr: bool,
    },
    /// Bind this directory (the plain-tree fallback).
    Bind(PathBuf),
}

/// A prepared `RUN --mount`.
#[derive(Debug)]
pub(crate) enum PlannedMount {
    Tmpfs {
        target: String,
    },
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
        is_dir: bool,
    },
    /// A writable view of a directory whose writes are discarded.
    Overlay {
        options: String,
        target: String,
    },
}

impl PlannedMount {
    fn target(&self) -> &str {
        match self {
            PlannedMount::Tmpfs { target }
            | PlannedMount::Bind { target, .. }
            | PlannedMount::Overlay { target, .. } => target,
        }
    }

    /// Whether runc would create the target as a file (bind of a non-directory).
    fn target_is_file(&self) -> bool {
        matches!(self, PlannedMount::Bind { is_dir: false, .. })
    }
}

/// Everything init needs, prepared by the parent before forking.
#[derive(Debug)]
pub(crate) struct Plan {
    pub rootfs_mnt: PathBuf,
    pub root_source: RootSource,
    pub network: Network,
    pub hosts_file: PathBuf,
    pub resolv_file: PathBuf,
    pub mounts: Vec<PlannedMount>,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
}

/// A failed set-up step.
pub(crate) struct StepError {
    step: String,
    message: String,
}

type Step<T> = std::result::Result<T, StepError>;

trait StepContext<T> {
    fn step(self, step: impl FnOnce() -> String) -> Step<T>;
}

impl<T, E: std::fmt::Display> StepContext<T> for std::result::Result<T, E> {
    fn step(self, step: impl FnOnce() -> String) -> Step<T> {
        self.map_err(|e| StepError {
            step: step(),
            message: e.to_string(),
        })
    }
}

/// Writes a report line to the parent (best effort: the parent may be gone).
pub(crate) fn report(fd: &OwnedFd, line: &str) {
    let clean: String = line.chars().collect();
    let _ = nix::unistd::write(fd, clean.as_bytes());
}

/// Leaves the process without running destructors or atexit handlers of the caller's program.
pub(crate) fn exit(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it ends the process immediately.
    unsafe { libc::_exit(code) }
}

fn one_line(s: &str) -> String {
    s.replace(['\t', '\n'], " ")
}

/// Runs in the shim, which has entered the new namespaces (its children are in the new pid
/// namespace): prepares the root file system like BuildKit does on the host side, starts the
/// container process, waits for it, removes the mount stubs and reports.
pub(crate) fn supervise(plan: &Plan, out_w: OwnedFd, status_w: OwnedFd) -> ! {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_supervisor(plan, out_w, &status_w)
    }));
    match result {
        Ok(Ok(line)) => report(&status_w, &line),
        Ok(Err(e)) => report_step(&status_w, &e),
        Err(_) => report(&status_w, "S\tsandbox\tpanicked\n"),
    }
    exit(0)
}

fn report_step(status_w: &OwnedFd, e: &StepError) {
    report(
        status_w,
        &format!("S\t{}\t{}\n", one_line(&e.step), one_line(&e.message)),
    );
}

fn run_supervisor(plan: &Plan, out_w: OwnedFd, status_w: &OwnedFd) -> Step<String> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .step(|| "make mounts private".into())?;
    if plan.network == Network::None {
        loopback_up().step(|| "bring up lo".into())?;
    }
    nix::unistd::sethostname("buildkitsandbox").step(|| "set hostname".into())?;

    let root = plan.rootfs_mnt.as_path();
    mount_rootfs(plan, root)?;

    // BuildKit's MountStubsCleaner looks before anything is created.
    let mut stub_targets: Vec<String> = vec!["/etc/resolv.conf".into(), "/etc/hosts".into()];
    stub_targets.extend(plan.mounts.iter().map(|m| m.target().to_string()));
    let stubs = record_stubs(root, &stub_targets).step(|| "look for mount stubs".into())?;

    let passwd = read_in_root(root, "/etc/passwd");
    let group = read_in_root(root, "/etc/group");
    let user = crate::user::resolve(&passwd, &group, &plan.user)
        .step(|| format!("resolve user {:?}", plan.user))?;

    // The working directory is created like BuildKit does (MkdirAllAndChown 0755): it stays.
    let cwd = root_path(root, Path::new(&plan.cwd))
        .step(|| format!("resolve working directory {}", plan.cwd))?;
    if fs::metadata(&cwd).is_err() {
        mkdir_all_chown(&cwd, user.uid, user.gid)
            .step(|| format!("create working directory {}", plan.cwd))?;
    }

    // SAFETY: this process is single-threaded (a fork of the caller).
    let child = match unsafe { fork() }.step(|| "fork container".into())? {
        ForkResult::Child => container(plan, &user, &out_w, status_w),
        ForkResult::Parent { child } => child,
    };
    // The command holds the output pipe now; keeping it would delay the parent's EOF.
    drop(out_w);
    let status = loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => break format!("X\t{code}\n"),
            Ok(WaitStatus::Signaled(_, sig, _)) => break format!("K\t{}\n", sig as i32),
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(e) => return Err(e).step(|| "wait for the command".into()),
        }
    };
    // The command was pid 1: when it ended the kernel killed everything else in its pid
    // namespace, and its mount namespace (/proc, /dev, binds, ...) went away with it.
    remove_stubs(root, &stubs);
    Ok(status)
}

fn mount_rootfs(plan: &Plan, root: &Path) -> Step<()> {
    match &plan.root_source {
        RootSource::Overlay {
            lowers,
            upper,
            work,
            userxattr,
        } => {
            // Directories go to the kernel as /proc/self/fd/N: no escaping of `:` or `,` and no
            // page-size limit on long layer paths. They must be opened in this mount namespace
            // (overlayfs clones the upper dir's mount, which must be ours).
            let mut fds = Vec::new();
            let mut fd_path = |p: &Path| -> Step<String> {
                let fd = nix::fcntl::open(
                    p,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .step(|| format!("open {}", p.display()))?;
                let s = format!("/proc/self/fd/{}", fd.as_raw_fd());
                fds.push(fd);
                Ok(s)
            };
            let lower_opt = lowers
                .iter()
                .map(|l| fd_path(l))
                .collect::<Step<Vec<_>>>()?
                .join(":");
            let mut options = format!(
                "lowerdir={lower_opt},upperdir={},workdir={},index=off,metacopy=off",
                fd_path(upper)?,
                fd_path(work)?
            );
            // In a user namespace only user.overlay.* xattrs can be written (and redirects are
            // off anyway); as real root redirect_dir must be off explicitly: BuildKit's differ
            // refuses redirects.
            options.push_str(if *userxattr {
                ",userxattr"
            } else {
                ",redirect_dir=off"
            });
            mount(
                Some("overlay"),
                root,
                Some("overlay"),
                MsFlags::empty(),
                Some(options.as_str()),
            )
            .step(|| format!("mount overlay ({options})"))?;
            drop(fds);
        }
        RootSource::Bind(dir) => mount(
            Some(dir.as_path()),
            root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .step(|| format!("bind {}", dir.display()))?,
    }
    Ok(())
}

/// The container process, pid 1 of the new pid namespace (as with runc, the command itself is
/// pid 1: `$$` is 1): own mount namespace, runc's mounts, pivot_root, then the command.
fn container(plan: &Plan, user: &ResolvedUser, out_w: &OwnedFd, status_w: &OwnedFd) -> ! {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let setup =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| enter_container(plan, user)));
    match setup {
        Ok(Ok(command)) => crate::exec::run(&command, out_w, status_w),
        Ok(Err(e)) => report_step(status_w, &e),
        Err(_) => report(status_w, "S\tcontainer set-up\tpanicked\n"),
    }
    exit(1)
}

fn enter_container(plan: &Plan, user: &ResolvedUser) -> Step<crate::exec::Command> {
    // A mount namespace of its own: pivot_root must not move the supervisor, which removes the
    // stubs afterwards through its own view of the root file system.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .step(|| "unshare mount namespace".into())?;
    let root = plan.rootfs_mnt.as_path();
    setup_mounts(plan, root)?;

    // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only the
    // container's tree (runc's trick: no directory for the old root is needed).
    nix::unistd::chdir(root).step(|| "chdir to rootfs".into())?;
    nix::unistd::pivot_root(".", ".").step(|| "pivot_root".into())?;
    umount2(".", MntFlags::MNT_DETACH).step(|| "detach old root".into())?;
    nix::unistd::chdir("/").step(|| "chdir /".into())?;

    let setgroups_allowed =
        fs::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() != "deny");
    Ok(crate::exec::Command::prepare(plan, user, setgroups_allowed))
}

fn read_in_root(root: &Path, p: &str) -> Vec<u8> {
    root_path(root, Path::new(p))
        .and_then(fs::read)
        .unwrap_or_default()
}

/// `MkdirAllAndChown(path, 0755, uid:gid)`: only the directories it creates get mode and owner.
fn mkdir_all_chown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut p = path;
    while fs::symlink_metadata(p).is_err() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    for d in missing.iter().rev() {
        fs::create_dir(d)?;
        fs::set_permissions(d, fs::Permissions::from_mode(0o755))?;
        std::os::unix::fs::lchown(d, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// `mkdir -p` with mode 0755 whatever the umask (runc's MkdirAll for mount points).
fn mkdir_all(path: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut p = path;
    while fs::symlink_metadata(p).is_err() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    for d in missing.iter().rev() {
        fs::create_dir(d)?;
        fs::set_permissions(d, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// The paths of `targets` (and, recursively, their parents) that do not exist yet, as
/// container paths, leaf first (BuildKit `MountStubsCleaner` with `recursive`).
fn record_stubs(root: &Path, targets: &[String]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for t in targets {
        let Ok(mut real) = root_path(root, Path::new(t)) else {
            continue;
        };
        if real == root {
            continue;
        }
        loop {
            match fs::symlink_metadata(&real) {
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(libc::ENOTDIR) => {}
                _ => break,
            }
            if let Ok(rel) = real.strip_prefix(root) {
                out.push(Path::new("/").join(rel));
            }
            match real.parent() {
                Some(next) if next != real && next != root => real = next.to_path_buf(),
                _ => break,
            }
        }
    }
    Ok(out)
}

/// Removes stubs that are still empty, restoring their parent's times (BuildKit issue 3148).
/// `stubs` are container paths, `root` where the container's root is mounted.
fn remove_stubs(root: &Path, stubs: &[PathBuf]) {
    for s in stubs {
        let Ok(p) = root_path(root, s) else { continue };
        let Ok(st) = fs::symlink_metadata(&p) else {
            continue;
        };
        if st.is_dir() {
            match fs::read_dir(&p) {
                Ok(mut rd) => {
                    if rd.next().is_some() {
                        continue;
                    }
                }
                Err(_) => continue,
            }
        } else if st.len() != 0 {
            continue;
        }
        let Some(parent) = p.parent() else { continue };
        let Ok(parent_rel) = parent.strip_prefix(root) else {
            continue;
        };
        match root_path(root, parent_rel) {
            Ok(rp) if rp == parent => {}
            _ => continue,
        }
        let Ok(pst) = fs::metadata(parent) else {
            continue;
        };
        let removed = if st.is_dir() {
            fs::remove_dir(&p)
        } else {
            fs::remove_file(&p)
        };
        let _ = removed;
        let atime = nix::sys::time::TimeSpec::new(pst.atime(), pst.atime_nsec());
        let mtime = nix::sys::time::TimeSpec::new(pst.mtime(), pst.mtime_nsec());
        let _ = nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            parent,
            &atime,
            &mtime,
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        );
    }
}

/// The devices runc binds from the host in user namespaces (and creates otherwise).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// containerd's default masked paths (hidden) and read-only paths.
const MASKED: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
];
const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn setup_mounts(plan: &Plan, root: &Path) -> Step<()> {
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;

    // dev/, proc/ and sys/ are created for the container and stay (BuildKit's first RUN layer
    // on a base without them has them, 0755).
    for d in ["/proc", "/dev", "/sys"] {
        mkdir_all(&at(d)).step(|| format!("create {d}"))?;
    }
    mount(
        Some("proc"),
        &at("/proc"),
        Some("proc"),
        nosuid_nodev_noexec,
        None::<&str>,
    )
    .step(|| "mount /proc".into())?;

    mount(
        Some("tmpfs"),
        &at("/dev"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .step(|| "mount /dev".into())?;
    for d in ["/dev/pts", "/dev/shm"] {
        mkdir_all(&at(d)).step(|| format!("create {d}"))?;
    }
    mount(
        Some("devpts"),
        &at("/dev/pts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .step(|| "mount /dev/pts".into())?;
    mount(
        Some("shm"),
        &at("/dev/shm"),
        Some("tmpfs"),
        nosuid_nodev_noexec,
        Some("mode=1777,size=65536k"),
    )
    .step(|| "mount /dev/shm".into())?;
    for d in DEVICES {
        let target = at(&format!("/dev/{d}"));
        fs::File::create(&target).step(|| format!("create /dev/{d}"))?;
        let host = format!("/dev/{d}");
        mount(
            Some(host.as_str()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .step(|| format!("bind /dev/{d}"))?;
    }
    let links = [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
        ("pts/ptmx", "/dev/ptmx"),
    ];
    for (target, link) in links {
        std::os::unix::fs::symlink(target, at(link)).step(|| format!("create {link}"))?;
    }
    // runc also links /dev/core to /proc/kcore when the host has one; left out so that the
    // container's /dev never depends on the host.

    let sys = at("/sys");
    let ro = MsFlags::MS_RDONLY | nosuid_nodev_noexec;
    if mount(Some("sysfs"), &sys, Some("sysfs"), ro, None::<&str>).is_err() {
        // sysfs needs a network namespace of our own in a user namespace; else bind the host's.
        mount(
            Some("/sys"),
            &sys,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .step(|| "bind /sys".into())?;
        remount_ro(&sys).step(|| "make /sys read-only".into())?;
    }

    for (source, target) in [
        (&plan.resolv_file, "/etc/resolv.conf"),
        (&plan.hosts_file, "/etc/hosts"),
    ] {
        let dest = bind_target(root, target, true).step(|| format!("create {target}"))?;
        mount(
            Some(source.as_path()),
            &dest,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .step(|| format!("bind {target}"))?;
        remount_ro(&dest).step(|| format!("make {target} read-only"))?;
    }

    for m in &plan.mounts {
        let target = m.target();
        let dest = bind_target(root, target, m.target_is_file())
            .step(|| format!("create mount point {target}"))?;
        match m {
            PlannedMount::Tmpfs { .. } => mount(
                Some("tmpfs"),
                &dest,
                Some("tmpfs"),
                MsFlags::MS_NOSUID,
                None::<&str>,
            )
            .step(|| format!("mount tmpfs on {target}"))?,
            PlannedMount::Bind {
                source, readonly, ..
            } => {
                mount(
                    Some(source.as_path()),
                    &dest,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .step(|| format!("bind {} on {target}", source.display()))?;
                if *readonly {
                    remount_ro(&dest).step(|| format!("make {target} read-only"))?;
                }
            }
            PlannedMount::Overlay { options, .. } => mount(
                Some("overlay"),
                &dest,
                Some("overlay"),
                MsFlags::empty(),
                Some(options.as_str()),
            )
            .step(|| format!("mount writable view on {target}"))?,
        }
    }

    for p in MASKED {
        let path = at(p);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let r = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                &path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else {
            mount(
                Some("/dev/null"),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        r.step(|| format!("mask {p}"))?;
    }
    for p in READONLY {
        let path = at(p);
        if fs::symlink_metadata(&path).is_err() {
            continue;
        }
        mount(
            Some(&path),
            &path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .step(|| format!("bind {p}"))?;
        remount_ro(&path).step(|| format!("make {p} read-only"))?;
    }
    Ok(())
}

/// Resolves a mount target inside the root and creates it like runc: a file for binds of
/// files, else a directory (parents 0755).
fn bind_target(root: &Path, target: &str, file: bool) -> io::Result<PathBuf> {
    let dest = root_path(root, Path::new(target))?;
    if fs::symlink_metadata(&dest).is_ok() {
        return Ok(dest);
    }
    if file {
        if let Some(parent) = dest.parent() {
            mkdir_all(parent)?;
        }
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&dest)?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))?;
    } else {
        mkdir_all(&dest)?;
    }
    Ok(dest)
}

/// Remounts a bind read-only, keeping the flags a user namespace may not drop.
fn remount_ro(path: &Path) -> nix::Result<()> {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let f = statvfs(path)?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (fs_flag, ms_flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs_flag) {
            flags |= ms_flag;
        }
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
}

/// `ip link set lo up` (SIOCSIFFLAGS); a new network namespace starts with `lo` down.
fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket/ioctl calls on a zero-initialised ifreq we own.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut r = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        if r == 0 {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            r = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
        }
        let err = io::Error::last_os_error();
        libc::close(sock);
        if r != 0 {
            return Err(err);
        }
    }
    Ok(())
}
