//! `RUN --mount=...` specs, parsed like BuildKit v0.19.0's `parseMount`.

use crate::gocompat::strconv::{parse_bool, parse_uint, quote};
use crate::gocompat::suggest;

/// `type=` of a RUN mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MountType {
    /// A read-only (by default) bind of the context or another stage.
    Bind,
    /// A persistent cache directory.
    Cache,
    /// An empty tmpfs.
    Tmpfs,
    /// A build secret file or environment variable.
    Secret,
    /// An SSH agent socket.
    Ssh,
}

impl MountType {
    /// The name used in the Dockerfile.
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CacheSharing {
    /// Concurrent builds share the cache.
    Shared,
    /// Concurrent builds get their own copy.
    Private,
    /// Concurrent builds wait for each other.
    Locked,
}

/// One parsed `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount type (`bind` when not given).
    pub kind: MountType,
    /// `from=`: a stage name or image to mount from.
    pub from: Option<String>,
    /// `source=`/`src=`.
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`.
    pub target: Option<String>,
    /// Read-only; defaults to false for cache and tmpfs, true otherwise.
    pub read_only: bool,
    /// `size=` of a tmpfs in bytes (0 when not given).
    pub size_limit: i64,
    /// `id=`.
    pub cache_id: Option<String>,
    /// `sharing=` (cache mounts only).
    pub cache_sharing: Option<CacheSharing>,
    /// `required` (secret and ssh mounts only).
    pub required: bool,
    /// `env=` of a secret; `Some("")` means "use the default name".
    pub env: Option<String>,
    /// `mode=` (octal), `uid=`, `gid=`: cache, secret and ssh mounts only.
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The tonistiigi/go-csvvalue parser BuildKit splits mount specs with.
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let line = line
        .strip_suffix("\r\n")
        .or_else(|| line.strip_suffix('\n'))
        .unwrap_or(line);
    if line.is_empty() {
        return Err("EOF".into());
    }
    let err = |pos: usize, what: &str| format!("parse error on line 1, column {}: {what}", pos + 1);
    let mut fields: Vec<String> = Vec::new();
    let mut rest = line;
    let mut pos = 0;
    loop {
        if !rest.starts_with('"') {
            let (field, next) = match rest.find(',') {
                Some(i) => (&rest[..i], Some(i)),
                None => (rest, None),
            };
            if let Some(j) = field.find('"') {
                return Err(err(pos + j, "bare \" in non-quoted-field"));
            }
            fields.push(field.to_string());
            match next {
                Some(i) => {
                    rest = &rest[i + 1..];
                    pos += i + 1;
                    continue;
                }
                None => return Ok(fields),
            }
        }
        rest = &rest[1..];
        pos += 1;
        let mut half_open = false;
        loop {
            let Some(i) = rest.find('"') else {
                return Err(err(pos, "extraneous or missing \" in quoted-field"));
            };
            if half_open {
                if let Some(last) = fields.last_mut() {
                    last.push_str(&rest[..i]);
                }
            } else {
                fields.push(rest[..i].to_string());
            }
            rest = &rest[i + 1..];
            pos += i + 1;
            match rest.chars().next() {
                Some('"') => {
                    if let Some(last) = fields.last_mut() {
                        last.push('"');
                    }
                    rest = &rest[1..];
                    pos += 1;
                    half_open = true;
                }
                Some(',') => {
                    rest = &rest[1..];
                    pos += 1;
                    break;
                }
                None => return Ok(fields),
                Some(_) => return Err(err(pos - 1, "extraneous or missing \" in quoted-field")),
            }
        }
    }
}

/// docker/go-units `RAMInBytes`.
fn ram_in_bytes(s: &str) -> Option<i64> {
    let sep = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    let (num, sfx) = if s.as_bytes()[sep] != b' ' {
        (&s[..=sep], &s[sep + 1..])
    } else {
        (&s[..sep], &s[sep + 1..])
    };
    let size: f64 = num.parse().ok()?;
    if size < 0.0 || size.is_nan() {
        return None;
    }
    if sfx.is_empty() {
        return Some(size as i64);
    }
    if sfx.len() > 3 {
        return None;
    }
    let sfx = sfx.to_lowercase();
    let b = sfx.as_bytes();
    if b[0] == b'b' {
        return (b.len() == 1).then_some(size as i64);
    }
    let mul: f64 = match b[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0 * 1024.0 * 1024.0,
        b't' => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        b'p' => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &sfx[1..] != "ib") {
        return None;
    }
    Some((size * mul) as i64)
}

const ALL_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// Expands one mount value; the error is BuildKit's message.
pub(crate) type Expander<'a> = dyn FnMut(&str) -> Result<String, String> + 'a;

/// Parses one `--mount` value. With `expand = None` this is BuildKit's
/// parse-time pass, which only checks the CSV syntax and that `from` holds
/// no variable; with an expander every value is expanded and validated.
pub(crate) fn parse_mount(
    val: &str,
    mut expand: Option<&mut Expander<'_>>,
) -> Result<Mount, String> {
    let fields = csv_fields(val).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let mut m = Mount {
        kind: MountType::Bind,
        from: None,
        source: None,
        target: None,
        read_only: false,
        size_limit: 0,
        cache_id: None,
        cache_sharing: None,
        required: false,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let mut ro_auto = true;
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v)),
            None => (field.to_lowercase(), None),
        };
        let Some(value) = value else {
            if expand.is_none() {
                continue;
            }
            match key.as_str() {
                "readonly" | "ro" => {
                    m.read_only = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.read_only = false;
                    ro_auto = false;
                }
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                    m.required = true
                }
                "required" => {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.as_str()
                    ))
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let value = match expand.as_mut() {
            Some(f) => f(value)?,
            None if key == "from" => {
                if let Some(i) = value.find('$') {
                    if i != value.len() - 1 {
                        return Err(format!("'{key}' doesn't support variable expansion, define alias stage instead"));
                    }
                }
                value.to_string()
            }
            None => continue,
        };
        let bad = |key: &str, value: &str| format!("invalid value for {key}: {value}");
        match key.as_str() {
            "type" => {
                m.kind = match value.to_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(suggest::wrap(
                            format!("unsupported mount type {}", quote(&value)),
                            &value,
                            &["bind", "cache", "tmpfs", "secret", "ssh"],
                            true,
                        ))
                    }
                }
            }
            "from" => m.from = non_empty(value),
            "source" | "src" => m.source = non_empty(value),
            "target" | "dst" | "destination" => m.target = non_empty(value),
            "readonly" | "ro" => {
                m.read_only = parse_bool(&value).ok_or_else(|| bad(&key, &value))?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.read_only = !parse_bool(&value).ok_or_else(|| bad(&key, &value))?;
                ro_auto = false;
            }
            "required" => {
                if !matches!(m.kind, MountType::Secret | MountType::Ssh) {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.as_str()
                    ));
                }
                m.required = parse_bool(&value).ok_or_else(|| bad(&key, &value))?;
            }
            "size" => {
                if m.kind != MountType::Tmpfs {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.as_str()
                    ));
                }
                m.size_limit = ram_in_bytes(&value).ok_or_else(|| bad(&key, &value))?;
            }
            "id" => m.cache_id = non_empty(value),
            "sharing" => {
                m.cache_sharing = Some(match value.to_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => {
                        return Err(suggest::wrap(
                            format!("unsupported sharing value {}", quote(&value)),
                            &value,
                            &["shared", "private", "locked"],
                            true,
                        ))
                    }
                })
            }
            "mode" => {
                let v = parse_uint(&value, 8, 32)
                    .map_err(|_| format!("invalid value {value} for mode"))?;
                m.mode = Some(v as u32);
            }
            "uid" => {
                let v = parse_uint(&value, 10, 32)
                    .map_err(|_| format!("invalid value {value} for uid"))?;
                m.uid = Some(v as u32);
            }
            "gid" => {
                let v = parse_uint(&value, 10, 32)
                    .map_err(|_| format!("invalid value {value} for gid"))?;
                m.gid = Some(v as u32);
            }
            "env" => m.env = Some(value),
            _ => {
                return Err(suggest::wrap(
                    format!("unexpected key '{key}' in '{field}'"),
                    &key,
                    ALL_KEYS,
                    true,
                ));
            }
        }
    }
    if !matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    ) {
        for (name, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(format!(
                    "{name} not allowed for {} type mounts",
                    quote(m.kind.as_str())
                ));
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if m.cache_sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_none() && m.target.is_none() && m.cache_id.is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if m.source.is_some() && m.cache_id.is_some() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.cache_sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            m.kind.as_str()
        ));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(spec: &str) -> Result<Mount, String> {
        let mut id = |s: &str| Ok(s.to_string());
        parse_mount(spec, Some(&mut id))
    }

    #[test]
    fn csv_like_go_csvvalue() {
        assert_eq!(csv_fields("a,b").unwrap(), ["a", "b"]);
        assert_eq!(csv_fields("a,").unwrap(), ["a", ""]);
        assert_eq!(csv_fields("\"a,b\",c").unwrap(), ["a,b", "c"]);
        assert_eq!(csv_fields("\"a\"\"b\"").unwrap(), ["a\"b"]);
        assert_eq!(csv_fields("").unwrap_err(), "EOF");
        assert_eq!(
            csv_fields("a\"b").unwrap_err(),
            "parse error on line 1, column 2: bare \" in non-quoted-field"
        );
        assert_eq!(
            csv_fields("\"ab").unwrap_err(),
            "parse error on line 1, column 2: extraneous or missing \" in quoted-field"
        );
        assert_eq!(
            csv_fields("\"a\"b").unwrap_err(),
            "parse error on line 1, column 3: extraneous or missing \" in quoted-field"
        );
    }

    #[test]
    fn mounts() {
        let m = full("type=tmpfs,target=/scratch").unwrap();
        assert_eq!(
            (m.kind, m.target.as_deref(), m.read_only),
            (MountType::Tmpfs, Some("/scratch"), false)
        );
        let m = full("target=/src,from=build,rw").unwrap();
        assert_eq!(
            (m.kind, m.from.as_deref(), m.read_only),
            (MountType::Bind, Some("build"), false)
        );
        assert!(full("target=/x").unwrap().read_only);
        let m = full("type=cache,target=/c,id=x,sharing=LOCKED,mode=0700,uid=1,gid=2").unwrap();
        assert_eq!(
            (m.cache_sharing, m.mode, m.uid, m.gid),
            (Some(CacheSharing::Locked), Some(0o700), Some(1), Some(2))
        );
        let m = full("type=secret,id=tok,env=TOK,required").unwrap();
        assert_eq!((m.required, m.env.as_deref()), (true, Some("TOK")));
        assert_eq!(
            full("type=tmpfs,target=/t,size=64m").unwrap().size_limit,
            64 << 20
        );
        assert_eq!(full("type=tmpfs,size=1.5KiB").unwrap().size_limit, 1536);
        let errs = [
            ("type=foo", "unsupported mount type \"foo\""),
            (
                "type=bnd",
                "unsupported mount type \"bnd\" (did you mean bind?)",
            ),
            (
                "required,type=secret,id=x",
                "unexpected key 'required' for mount type 'bind'",
            ),
            (
                "type=bind,size=1",
                "unexpected key 'size' for mount type 'bind'",
            ),
            ("target", "invalid field 'target' must be a key=value pair"),
            (
                "tagret=/x",
                "unexpected key 'tagret' in 'tagret=/x' (did you mean target?)",
            ),
            (
                "type=bind,mode=0700",
                "mode not allowed for \"bind\" type mounts",
            ),
            (
                "type=tmpfs,uid=1",
                "uid not allowed for \"tmpfs\" type mounts",
            ),
            ("type=cache,mode=9", "invalid value 9 for mode"),
            (
                "type=secret",
                "invalid secret mount. one of source, target required",
            ),
            ("type=secret,id=a,src=b", "both source and id can't be set"),
            (
                "type=secret,id=a,from=x",
                "secret mount should not have a from",
            ),
            (
                "type=bind,sharing=shared",
                "invalid cache sharing set for bind mount",
            ),
            ("type=cache,sharing=x", "unsupported sharing value \"x\""),
            ("ro=maybe", "invalid value for ro: maybe"),
            ("type=tmpfs,size=1x", "invalid value for size: 1x"),
            ("", "failed to parse csv mounts: EOF"),
        ];
        for (spec, want) in errs {
            assert_eq!(full(spec).unwrap_err(), want, "{spec}");
        }
        // The parse-time pass only checks CSV syntax and variables in `from`.
        assert!(parse_mount("type=foo,bogus", None).is_ok());
        assert_eq!(
            parse_mount("from=$X,target=/x", None).unwrap_err(),
            "'from' doesn't support variable expansion, define alias stage instead"
        );
        assert_eq!(
            parse_mount("from=stage$", None).unwrap().from.as_deref(),
            Some("stage$")
        );
    }
}
