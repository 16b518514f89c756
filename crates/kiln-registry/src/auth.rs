//! Registry authentication: parsing `WWW-Authenticate` challenges, reading credentials from
//! Docker's `config.json`, and remembering what each registry host asked for (basic
//! credentials, or bearer tokens cached per scope) so later requests authenticate up front.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A username and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic` header.
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The authentication scheme a registry asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Basic,
    Bearer,
    Other(String),
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: Scheme,
    pub params: BTreeMap<String, String>,
}

/// Parses `WWW-Authenticate` values (RFC 7235): `Scheme k=v, k="quoted", Scheme2 ...`.
/// Anything that does not parse ends the list rather than failing: the caller reports
/// "no usable challenge".
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = header.trim_start();
    while !rest.is_empty() {
        let (token, after) = take_token(rest);
        if token.is_empty() {
            // Skip stray separators; stop on anything else.
            match after.strip_prefix(',') {
                Some(a) => {
                    rest = a.trim_start();
                    continue;
                }
                None => break,
            }
        }
        let after_ws = after.trim_start();
        if let (Some(value_start), Some(current)) = (after_ws.strip_prefix('='), out.last_mut()) {
            // A parameter of the current challenge.
            let (value, after_value) = match value_start.trim_start().strip_prefix('"') {
                Some(q) => take_quoted(q),
                None => {
                    let (v, a) = take_token(value_start.trim_start());
                    (v.to_string(), a)
                }
            };
            current.params.insert(token.to_ascii_lowercase(), value);
            rest = after_value.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        } else {
            let scheme = match token.to_ascii_lowercase().as_str() {
                "basic" => Scheme::Basic,
                "bearer" => Scheme::Bearer,
                other => Scheme::Other(other.to_string()),
            };
            out.push(Challenge {
                scheme,
                params: BTreeMap::new(),
            });
            rest = after_ws;
        }
    }
    out
}

fn take_token(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '"')
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// Reads a quoted-string body (after the opening quote), undoing backslash escapes.
fn take_quoted(s: &str) -> (String, &str) {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, &s[i + 1..]),
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    out.push(n);
                }
            }
            _ => out.push(c),
        }
    }
    (out, "")
}

/// The scope string a request needs (`repository:library/busybox:pull`).
pub(crate) fn repository_scope(path: &str, push: bool) -> String {
    let actions = if push { "pull,push" } else { "pull" };
    format!("repository:{path}:{actions}")
}

/// A bearer token and when it stops being usable.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub value: String,
    pub expires: Instant,
}

/// What a registry host asked for when it challenged us.
#[derive(Clone, Debug)]
pub(crate) enum HostAuth {
    Basic(String),
    Bearer {
        realm: String,
        service: Option<String>,
        tokens: BTreeMap<String, Token>,
    },
}

/// Per-host authentication state, shared by all requests of a client.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    pub hosts: BTreeMap<String, HostAuth>,
}

impl AuthState {
    /// The `Authorization` header to send up front, if one is known for this host and scope.
    pub fn header(&self, host: &str, scope: &str) -> Option<String> {
        match self.hosts.get(host)? {
            HostAuth::Basic(h) => Some(h.clone()),
            HostAuth::Bearer { tokens, .. } => tokens
                .get(scope)
                .filter(|t| t.expires > Instant::now())
                .map(|t| format!("Bearer {}", t.value)),
        }
    }
}

/// The token endpoint's answer (Docker's token spec; OAuth2 servers say `access_token`).
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token, valid for `expires_in` seconds (60 when unsaid, per the spec), less a
    /// margin so a token is not sent just as it expires.
    pub fn into_token(self) -> Option<Token> {
        let value = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        let secs = self.expires_in.unwrap_or(60).max(10);
        Some(Token {
            value,
            expires: Instant::now() + Duration::from_secs(secs - secs / 10),
        })
    }
}

/// Where Docker keeps its configuration: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    config_dir_from(std::env::var_os("DOCKER_CONFIG"), std::env::var_os("HOME"))
}

fn config_dir_from(
    docker_config: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    match docker_config.filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => home
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".docker")),
    }
}

/// The parts of Docker's `config.json` that hold credentials.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// Docker's `config.json`, loaded.
#[derive(Debug)]
pub struct DockerConfig {
    path: PathBuf,
    file: ConfigFile,
}

impl DockerConfig {
    /// Loads `<dir>/config.json`; `Ok(None)` when there is none.
    pub fn load(dir: &Path) -> Result<Option<DockerConfig>> {
        let path = dir.join("config.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let file = serde_json::from_slice(&bytes).map_err(|e| Error::Credentials {
            path: path.clone(),
            reason: format!("invalid JSON: {e}"),
        })?;
        Ok(Some(DockerConfig { path, file }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Credentials for a registry host, looked up the way Docker does (keys may carry a
    /// scheme and path, and Docker Hub answers to several names): a helper named for the
    /// host in `credHelpers`, else the `credsStore` helper, else `auths`. Helpers are run as
    /// Docker runs them (`docker-credential-NAME get`, the server on stdin).
    pub fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>> {
        let want = canonical_host(registry);
        let err = |reason: String| Error::Credentials {
            path: self.path.clone(),
            reason,
        };
        let helper = self
            .file
            .cred_helpers
            .iter()
            .find(|(k, _)| canonical_host(k) == want)
            .map(|(_, h)| h.as_str())
            .or(self.file.creds_store.as_deref())
            .filter(|h| !h.is_empty());
        if let Some(helper) = helper {
            // Docker asks its store for Docker Hub under the index server's URL.
            let server = if want == "docker.io" {
                "https://index.docker.io/v1/"
            } else {
                registry
            };
            if let Some(c) = run_helper(helper, server).map_err(err)? {
                return Ok(Some(c));
            }
        }
        let Some((key, entry)) = self
            .file
            .auths
            .iter()
            .find(|(k, _)| canonical_host(k) == want)
        else {
            return Ok(None);
        };
        if entry
            .identitytoken
            .as_deref()
            .is_some_and(|t| !t.is_empty())
            || entry
                .registrytoken
                .as_deref()
                .is_some_and(|t| !t.is_empty())
        {
            return Err(err(format!(
                "auths[{key:?}] holds an identity/registry token, which kiln does not support; \
                 log in with a username and password"
            )));
        }
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| err(format!("auths[{key:?}].auth is not valid base64: {e}")))?;
            let text = String::from_utf8(decoded)
                .map_err(|_| err(format!("auths[{key:?}].auth is not UTF-8")))?;
            let Some((user, pass)) = text.split_once(':') else {
                return Err(err(format!(
                    "auths[{key:?}].auth does not decode to \"user:password\""
                )));
            };
            return Ok(Some(Credentials {
                username: user.to_string(),
                password: pass.to_string(),
            }));
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }));
        }
        Ok(None)
    }
}

/// What a credential helper prints for `get`.
#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The message helpers print (exiting non-zero) when they hold nothing for the server.
const HELPER_NOT_FOUND: &str = "credentials not found in native keychain";

/// `docker-credential-<helper> get` for `server`, by the credential helper protocol:
/// `Ok(None)` when the helper has nothing for it.
fn run_helper(helper: &str, server: &str) -> std::result::Result<Option<Credentials>, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program} (named by the Docker config): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its output below.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if stdout.trim() == HELPER_NOT_FOUND {
            return Ok(None);
        }
        let said = [stdout.trim(), String::from_utf8_lossy(&out.stderr).trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(format!(
            "{program} get {server} failed ({}): {said}",
            out.status
        ));
    }
    let reply: HelperReply = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{program} get {server}: not the helper protocol's JSON: {e}"))?;
    if reply.username == "<token>" {
        return Err(format!(
            "{program} gives an identity token for {server}, which kiln does not support; \
             log in with a username and password"
        ));
    }
    if reply.username.is_empty() && reply.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: reply.username,
        password: reply.secret,
    }))
}

/// Docker's `ConvertToHostname` plus Docker Hub's aliases.
fn canonical_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io",
        h => h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_like_the_registries_send_them() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, Scheme::Bearer);
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/busybox:pull");

        let c = parse_challenges(
            r#"Basic realm="kiln \"test\"", Bearer realm=http://x/t , error=insufficient_scope"#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, Scheme::Basic);
        assert_eq!(c[0].params["realm"], "kiln \"test\"");
        assert_eq!(c[1].scheme, Scheme::Bearer);
        assert_eq!(c[1].params["realm"], "http://x/t");
        assert_eq!(c[1].params["error"], "insufficient_scope");

        let c = parse_challenges("Negotiate");
        assert_eq!(c[0].scheme, Scheme::Other("negotiate".into()));
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges("\"").is_empty());
        // Unterminated quotes and stray '=' do not panic.
        let _ = parse_challenges(r#"Bearer realm="abc"#);
        let _ = parse_challenges("= = ,,, Bearer ==");
    }

    fn config(json: &str) -> DockerConfig {
        DockerConfig {
            path: "/cfg/config.json".into(),
            file: serde_json::from_str(json).unwrap(),
        }
    }

    #[test]
    fn credentials_come_from_auth_or_username_password() {
        let c = config(
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},
                "127.0.0.1:5000":{"auth":"a2lsbjpwYXNzOndvcmQ="},
                "http://reg.example.com/v2/":{"username":"u","password":"p"},
                "empty.example.com":{}
            }}"#,
        );
        let hub = c.credentials_for("docker.io").unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret")
        );
        let local = c.credentials_for("127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            (local.username.as_str(), local.password.as_str()),
            ("kiln", "pass:word"),
            "split at the first colon only"
        );
        let other = c.credentials_for("reg.example.com").unwrap().unwrap();
        assert_eq!(other.username, "u");
        assert_eq!(c.credentials_for("empty.example.com").unwrap(), None);
        assert_eq!(c.credentials_for("127.0.0.1:5001").unwrap(), None);
        assert!(!format!("{local:?}").contains("pass:word"), "Debug redacts");
        assert_eq!(local.basic_header(), "Basic a2lsbjpwYXNzOndvcmQ=");
    }

    #[test]
    fn missing_helpers_and_bad_entries_are_clear_errors() {
        // (Helpers that exist are run in tests/registry_auth.rs.)
        let c = config(r#"{"credHelpers":{"gcr.io":"kiln-test-absent"},"auths":{"gcr.io":{}}}"#);
        let e = c.credentials_for("gcr.io").unwrap_err().to_string();
        assert!(
            e.contains("/cfg/config.json")
                && e.contains("cannot run docker-credential-kiln-test-absent"),
            "{e}"
        );
        assert_eq!(
            c.credentials_for("quay.io").unwrap(),
            None,
            "no helper for it"
        );

        let c = config(r#"{"credsStore":"kiln-test-absent"}"#);
        let e = c.credentials_for("quay.io").unwrap_err().to_string();
        assert!(e.contains("docker-credential-kiln-test-absent"), "{e}");

        let c = config(r#"{"auths":{"x.io":{"auth":"!!!"},"y.io":{"auth":"bm9jb2xvbg=="}}}"#);
        assert!(c
            .credentials_for("x.io")
            .unwrap_err()
            .to_string()
            .contains("base64"));
        assert!(c
            .credentials_for("y.io")
            .unwrap_err()
            .to_string()
            .contains("user:password"));
        let c = config(r#"{"auths":{"z.io":{"identitytoken":"tok"}}}"#);
        assert!(c
            .credentials_for("z.io")
            .unwrap_err()
            .to_string()
            .contains("identity"));
    }

    #[test]
    fn config_file_location_honours_docker_config() {
        assert_eq!(
            config_dir_from(Some("/etc/dc".into()), Some("/home/u".into())),
            Some(PathBuf::from("/etc/dc"))
        );
        assert_eq!(
            config_dir_from(None, Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.docker"))
        );
        assert_eq!(
            config_dir_from(Some("".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.docker"))
        );
        assert_eq!(config_dir_from(None, None), None);

        let dir = tempfile::tempdir().unwrap();
        assert!(DockerConfig::load(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let e = DockerConfig::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("config.json: invalid JSON"), "{e}");
    }

    #[test]
    fn tokens_are_cached_per_scope_until_they_expire() {
        let mut state = AuthState::default();
        let mut tokens = BTreeMap::new();
        let t: TokenResponse =
            serde_json::from_str(r#"{"access_token":"abc","expires_in":300}"#).unwrap();
        tokens.insert("repository:a:pull".to_string(), t.into_token().unwrap());
        tokens.insert(
            "repository:b:pull".to_string(),
            Token {
                value: "old".into(),
                expires: Instant::now() - Duration::from_secs(1),
            },
        );
        state.hosts.insert(
            "r.io".into(),
            HostAuth::Bearer {
                realm: "https://r.io/token".into(),
                service: None,
                tokens,
            },
        );
        assert_eq!(
            state.header("r.io", "repository:a:pull").as_deref(),
            Some("Bearer abc")
        );
        assert_eq!(state.header("r.io", "repository:b:pull"), None, "expired");
        assert_eq!(state.header("r.io", "repository:a:pull,push"), None);
        assert_eq!(state.header("other.io", "repository:a:pull"), None);
        let none: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(none.into_token().is_none());
    }
}
