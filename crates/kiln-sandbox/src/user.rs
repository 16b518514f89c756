//! Resolving Dockerfile `USER` and `--chown` values against a container's `/etc/passwd` and
//! `/etc/group`, as BuildKit v0.19.0 does.
//!
//! Two different rule sets exist in BuildKit and both are reproduced here on purpose:
//!
//! * [`resolve`]: the user a `RUN` runs as (`executor/oci/user.go GetUser` → `moby/sys/user
//!   GetExecUser`, then runc's `setupUser`). Unknown names are errors; supplementary groups come
//!   from `/etc/group`.
//! * [`resolve_chown`]: the owner `COPY --chown`/`ADD --chown`/`WORKDIR` give to files
//!   (`client/llb/fileop.go WithUser` → `solver/llbsolver/ops/user_linux.go readUser`). Unknown
//!   names are *not* errors there: they silently resolve to id 0.
//!
//! The parsers copy the quirks of Go's `moby/sys/user` (numbers that fail to parse count as 0,
//! `#` lines are comments only in the group file, ...) because the resolved ids end up in layers.

use std::fmt;

/// Ids a `RUN` executes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// Real, effective and saved uid.
    pub uid: u32,
    /// Real, effective and saved gid.
    pub gid: u32,
    /// `setgroups(2)` list: the primary gid first (unless already a member), then the
    /// supplementary groups listed for the user in `/etc/group`, in file order.
    pub additional_gids: Vec<u32>,
    /// What runc puts in `$HOME` when the environment has no (or an empty) `HOME`: the home
    /// field of the first passwd entry with this uid, else `/`.
    pub home: String,
}

/// Why a user or group could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// A user name with no passwd entry.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    /// A group name with no group entry.
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
    /// A numeric id outside `0..=2^31-1` with no entry.
    #[error("uids and gids must be in range 0-2147483647 (got {0})")]
    OutOfRange(i64),
    /// A passwd line longer than Go's `bufio.Scanner` accepts (64 KiB).
    #[error("unable to find user {0}: bufio.Scanner: token too long")]
    LineTooLong(String),
    /// `--chown` resolved to a negative id.
    #[error("invalid --chown {spec:?}: negative id {id}")]
    NegativeId {
        /// The `--chown` value.
        spec: String,
        /// The id it named.
        id: i64,
    },
}

const MAX_ID: i64 = (1 << 31) - 1;

/// Resolves a Dockerfile `USER` value (`name`, `uid`, `name:group`, `uid:gid`, ...) the way a
/// BuildKit `RUN` does. `passwd` and `group` are the container's files (pass `b""` for a missing
/// file: Go treats both the same).
pub fn resolve(passwd: &[u8], group: &[u8], spec: &str) -> Result<ResolvedUser, UserError> {
    let (uid, gid, sgids) = get_user(passwd, group, spec)?;
    // BuildKit's ensureAdditionalGids: the primary gid leads unless already present.
    let mut additional_gids = sgids;
    if !additional_gids.contains(&gid) {
        additional_gids.insert(0, gid);
    }
    // runc's setupUser resolves "uid:gid" again with a default home of "/".
    let home = parse_passwd(passwd)
        .into_iter()
        .find(|u| u.uid == i64::from(uid))
        .map_or_else(|| "/".to_string(), |u| u.home);
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Resolves a `--chown` value (also the user `WORKDIR` creates directories as) the way
/// BuildKit's file operations do: `uid`, `name`, `uid:gid`, `name:group`, `root` = 0.
/// A user name without a passwd entry gives `0:0`, a group name without an entry keeps the
/// user's gid; a numeric user alone means `uid:uid`.
pub fn resolve_chown(passwd: &[u8], group: &[u8], spec: &str) -> Result<(u32, u32), UserError> {
    let mut parts = spec.splitn(2, ':');
    let user_part = parts.next().unwrap_or("");
    let group_part = parts.next();
    let (mut uid, mut gid) = (0i64, 0i64);
    match parse_chown_id(user_part) {
        Some(id) => (uid, gid) = (id, id),
        None => {
            let users = scan_passwd(passwd, user_part)?;
            if let Some(u) = users.into_iter().find(|u| u.name == user_part) {
                (uid, gid) = (u.uid, u.gid);
            }
        }
    }
    if let Some(g) = group_part {
        match parse_chown_id(g) {
            Some(id) => gid = id,
            None => {
                if let Some(e) = parse_group(group).into_iter().find(|e| e.name == g) {
                    gid = e.gid;
                }
            }
        }
    }
    let check = |id: i64| {
        u32::try_from(id).map_err(|_| UserError::NegativeId {
            spec: spec.to_string(),
            id,
        })
    };
    Ok((check(uid)?, check(gid)?))
}

/// BuildKit `GetUser`: the `uid:gid` fast path, else `GetExecUser`.
fn get_user(passwd: &[u8], group: &[u8], spec: &str) -> Result<(u32, u32, Vec<u32>), UserError> {
    let (spec, is_default) = if spec.is_empty() {
        ("0", true)
    } else {
        (spec, false)
    };
    if let Some((u, g)) = spec.split_once(':') {
        if let (Some(uid), Some(gid)) = (parse_fast_id(u), parse_fast_id(g)) {
            return Ok((uid, gid, Vec::new()));
        }
    }
    match exec_user(passwd, group, spec) {
        Ok(r) => Ok(r),
        Err(_) if is_default => Ok((0, 0, Vec::new())),
        Err(e) => Err(e),
    }
}

/// `moby/sys/user.GetExecUser` with zero defaults; ids are converted like Go's `uint32(int)`.
fn exec_user(passwd: &[u8], group: &[u8], spec: &str) -> Result<(u32, u32, Vec<u32>), UserError> {
    let mut fields = spec.split(':');
    let user_arg = fields.next().unwrap_or("");
    let group_arg = fields.next().unwrap_or("");
    let uid_arg = go_atoi(user_arg);
    let gid_arg = go_atoi(group_arg);

    let (mut uid, mut gid) = (0i64, 0i64);
    let mut sgids: Vec<i64> = Vec::new();
    let users = scan_passwd(passwd, user_arg)?;
    let matched = users.into_iter().find(|u| {
        if user_arg.is_empty() {
            u.uid == 0
        } else if let Some(n) = uid_arg {
            u.uid == n
        } else {
            u.name == user_arg
        }
    });
    let matched_name = match matched {
        Some(u) => {
            (uid, gid) = (u.uid, u.gid);
            Some(u.name)
        }
        None if !user_arg.is_empty() => {
            let n = uid_arg.ok_or_else(|| UserError::UnknownUser(user_arg.to_string()))?;
            if !(0..=MAX_ID).contains(&n) {
                return Err(UserError::OutOfRange(n));
            }
            uid = n;
            None
        }
        None => None,
    };

    if !group_arg.is_empty() || matched_name.is_some() {
        let groups = parse_group(group);
        if !group_arg.is_empty() {
            let found = groups.iter().find(|g| match gid_arg {
                Some(n) => g.gid == n,
                None => g.name == group_arg,
            });
            match found {
                Some(g) => gid = g.gid,
                None => {
                    let n =
                        gid_arg.ok_or_else(|| UserError::UnknownGroup(group_arg.to_string()))?;
                    if !(0..=MAX_ID).contains(&n) {
                        return Err(UserError::OutOfRange(n));
                    }
                    gid = n;
                }
            }
        } else if let Some(name) = &matched_name {
            sgids = groups
                .iter()
                .filter(|g| g.members.iter().any(|m| m == name))
                .map(|g| g.gid)
                .collect();
        }
    }
    // Go converts with uint32(int): wrap, never fail.
    Ok((
        uid as u32,
        gid as u32,
        sgids.into_iter().map(|g| g as u32).collect(),
    ))
}

/// A passwd entry (only the fields used).
#[derive(Debug)]
struct PasswdEntry {
    name: String,
    uid: i64,
    gid: i64,
    home: String,
}

/// A group entry (only the fields used).
#[derive(Debug)]
struct GroupEntry {
    name: String,
    gid: i64,
    members: Vec<String>,
}

/// Go's `bufio.Scanner` refuses lines of 64 KiB or more.
const MAX_SCAN_LINE: usize = 64 * 1024;

/// `ParsePasswdFilter` semantics: lines split on `\n`, trimmed, empty lines skipped, *no*
/// comment handling; fails like Go's scanner on over-long lines.
fn scan_passwd(passwd: &[u8], user_arg: &str) -> Result<Vec<PasswdEntry>, UserError> {
    if passwd
        .split(|&b| b == b'\n')
        .any(|line| line.len() >= MAX_SCAN_LINE)
    {
        return Err(UserError::LineTooLong(user_arg.to_string()));
    }
    Ok(parse_passwd(passwd))
}

fn parse_passwd(passwd: &[u8]) -> Vec<PasswdEntry> {
    passwd
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .map(|line| {
            let f: Vec<&[u8]> = line.split(|&b| b == b':').collect();
            let field = |i: usize| f.get(i).copied().unwrap_or(b"");
            PasswdEntry {
                name: lossy(field(0)),
                uid: go_atoi_bytes(field(2)).unwrap_or(0),
                gid: go_atoi_bytes(field(3)).unwrap_or(0),
                home: lossy(field(5)),
            }
        })
        .collect()
}

/// `ParseGroupFilter` semantics: trimmed lines, empty and `#` lines skipped, members split on
/// `,` without trimming.
fn parse_group(group: &[u8]) -> Vec<GroupEntry> {
    group
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .map(|line| {
            let f: Vec<&[u8]> = line.split(|&b| b == b':').collect();
            let field = |i: usize| f.get(i).copied().unwrap_or(b"");
            let list = field(3);
            GroupEntry {
                name: lossy(field(0)),
                gid: go_atoi_bytes(field(2)).unwrap_or(0),
                members: if list.is_empty() {
                    Vec::new()
                } else {
                    list.split(|&b| b == b',').map(lossy).collect()
                },
            }
        })
        .collect()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Go `strconv.Atoi` (base 10, optional sign, 64-bit range).
fn go_atoi(s: &str) -> Option<i64> {
    go_atoi_bytes(s.as_bytes())
}

fn go_atoi_bytes(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        n = n.checked_mul(10)?;
        n = if neg {
            n.checked_sub(i64::from(d - b'0'))?
        } else {
            n.checked_add(i64::from(d - b'0'))?
        };
    }
    Some(n)
}

/// BuildKit `oci.parseUID` for the `uid:gid` fast path: `root` or `strconv.ParseUint(s, 10, 32)`.
fn parse_fast_id(s: &str) -> Option<u32> {
    if s == "root" {
        return Some(0);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `client/llb/fileop.go parseUID`: `root` or `strconv.ParseInt(s, 10, 32)`.
fn parse_chown_id(s: &str) -> Option<i64> {
    if s == "root" {
        return Some(0);
    }
    go_atoi(s).filter(|n| i32::try_from(*n).is_ok())
}

impl fmt::Display for ResolvedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
    const GROUP: &[u8] = b"root:x:0:\napp:x:1000:\n";

    fn r(spec: &str) -> Result<ResolvedUser, UserError> {
        resolve(PASSWD, GROUP, spec)
    }

    #[test]
    fn busybox_names_and_ids() {
        let app = r("app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids.clone()),
            (1000, 1000, vec![1000])
        );
        assert_eq!(app.home, "/home/app");
        assert_eq!(r("1000").unwrap(), app);
        assert_eq!(r("app:app").unwrap(), app);
        let root = r("").unwrap();
        assert_eq!((root.uid, root.gid, root.additional_gids), (0, 0, vec![0]));
        assert_eq!(root.home, "/root");
    }

    #[test]
    fn numeric_ids_need_no_entries() {
        let u = r("1234:5678").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1234, 5678, vec![5678]));
        assert_eq!(u.home, "/");
        // A numeric uid alone: gid stays 0 without an entry.
        let u = r("4321").unwrap();
        assert_eq!((u.uid, u.gid), (4321, 0));
        // "root" is accepted by the fast path on both sides, whatever /etc/group says.
        let u = resolve(PASSWD, b"root:x:7:\n", "root:root").unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
    }

    #[test]
    fn unknown_names_are_errors_naming_them() {
        assert_eq!(
            r("nobody").unwrap_err(),
            UserError::UnknownUser("nobody".into())
        );
        assert_eq!(
            r("app:staff").unwrap_err().to_string(),
            "unable to find group staff: no matching entries in group file"
        );
        assert_eq!(
            r("3000000000").unwrap_err(),
            UserError::OutOfRange(3_000_000_000)
        );
        // A missing passwd file behaves like an empty one.
        assert!(matches!(
            resolve(b"", b"", "app"),
            Err(UserError::UnknownUser(_))
        ));
        assert_eq!(resolve(b"", b"", "55").unwrap().uid, 55);
    }

    #[test]
    fn supplementary_groups_in_file_order() {
        let group = b"# comment\nwheel:x:10:root,app\napp:x:1000:\n  docker:x:999:bob,app  \ny:x:6:app ,bob\n";
        let u = resolve(PASSWD, group, "app").unwrap();
        // primary gid first (not listed as member), then wheel and docker; "app " (y) does not match.
        assert_eq!(u.additional_gids, vec![1000, 10, 999]);
        // An explicit group disables supplementary groups.
        let u = resolve(PASSWD, group, "app:wheel").unwrap();
        assert_eq!((u.gid, u.additional_gids), (10, vec![10]));
    }

    #[test]
    fn go_parsing_quirks() {
        // Unparsable numbers count as 0; passwd has no comment syntax; first match wins.
        let passwd = b"#c:x:7:7::/c:\nbad:x:abc:1:::\napp:x:1:1::/one:\napp:x:2:2::/two:\n";
        assert_eq!(resolve(passwd, b"", "#c").unwrap().uid, 7);
        assert_eq!(resolve(passwd, b"", "bad").unwrap().uid, 0);
        let u = resolve(passwd, b"", "app").unwrap();
        assert_eq!((u.uid, u.home.as_str()), (1, "/one"));
        // "1:2:3" misses the fast path but the slow path ignores the third field.
        assert_eq!(resolve(b"", b"", "1:2:3").unwrap().gid, 2);
        // Signs are accepted by Atoi: "+5" is uid 5.
        assert_eq!(resolve(b"", b"", "+5").unwrap().uid, 5);
        let long = vec![b'a'; 70_000];
        assert!(matches!(
            resolve(&long, b"", "app"),
            Err(UserError::LineTooLong(_))
        ));
    }

    #[test]
    fn chown_rules_differ_from_run_rules() {
        assert_eq!(
            resolve_chown(PASSWD, GROUP, "app:app").unwrap(),
            (1000, 1000)
        );
        assert_eq!(resolve_chown(PASSWD, GROUP, "app").unwrap(), (1000, 1000));
        assert_eq!(resolve_chown(PASSWD, GROUP, "1001").unwrap(), (1001, 1001));
        assert_eq!(resolve_chown(PASSWD, GROUP, "1001:7").unwrap(), (1001, 7));
        // Unknown names are silently 0 / unchanged, unlike RUN's USER.
        assert_eq!(resolve_chown(PASSWD, GROUP, "ghost").unwrap(), (0, 0));
        assert_eq!(
            resolve_chown(PASSWD, GROUP, "app:ghosts").unwrap(),
            (1000, 1000)
        );
        assert_eq!(resolve_chown(PASSWD, GROUP, "root:app").unwrap(), (0, 1000));
        assert!(matches!(
            resolve_chown(PASSWD, GROUP, "-1"),
            Err(UserError::NegativeId { id: -1, .. })
        ));
    }
}
