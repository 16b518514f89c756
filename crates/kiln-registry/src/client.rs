//! A blocking client for the OCI distribution API: manifests and blobs down, blobs and
//! manifests up. Every byte that comes down is checked against the digest it was asked for;
//! auth (anonymous or credentialed bearer tokens, basic auth), retries with backoff, and the
//! http-only-for-loopback rule are handled here so callers only name what they want.

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use kiln_digest::{Digest, HashingWriter};
use ureq::http::{Method, Response};
use ureq::{Agent, Body};

mod push;
mod transport;

use push::check_registry_digest;

use crate::auth::{repository_scope, AuthState, DockerConfig};
use crate::error::{Error, Result, Site};
use crate::manifest::{sniff_media_type, Manifest, MediaType};
use crate::progress::{Direction, Progress};
use crate::reference::{Reference, Repository, Target, DEFAULT_REGISTRY};

/// The largest manifest kiln accepts (the limit containerd and BuildKit use).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// Docker Hub's API host; `docker.io` is only its name in references.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
const OCTET_STREAM: &str = "application/octet-stream";
const COPY_BUFFER: usize = 64 * 1024;
const MAX_REDIRECTS: usize = 10;
/// Bytes of an error response body kept for the message.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// How a client behaves. `Default` is what kiln uses: https everywhere but loopback,
/// credentials from Docker's config, four tries per request.
#[derive(Clone)]
pub struct ClientOptions {
    /// Registries (`host` or `host:port`) that may be reached over plain http. Loopback hosts
    /// (`localhost`, `127.0.0.0/8`, `::1`) always may.
    pub insecure_registries: Vec<String>,
    /// Directory holding Docker's `config.json`; `None` means `$DOCKER_CONFIG`, else
    /// `~/.docker`.
    pub docker_config_dir: Option<std::path::PathBuf>,
    /// Tries per request on connection failures, 429 and 5xx (at least 1).
    pub max_attempts: u32,
    /// Wait before the second try; it doubles for each further one.
    pub backoff: Duration,
    pub connect_timeout: Duration,
    /// Longest wait for any single read from the network.
    pub read_timeout: Duration,
    pub user_agent: String,
    /// Receives per-blob progress; none by default.
    pub progress: Option<Arc<dyn Progress>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            docker_config_dir: None,
            max_attempts: 4,
            backoff: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
            user_agent: concat!("kiln/", env!("CARGO_PKG_VERSION")).to_string(),
            progress: None,
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("insecure_registries", &self.insecure_registries)
            .field("docker_config_dir", &self.docker_config_dir)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("user_agent", &self.user_agent)
            .field("progress", &self.progress.as_ref().map(|_| "<callback>"))
            .finish()
    }
}

/// How a blob is uploaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadMode {
    /// One PUT carrying the whole blob.
    Monolithic,
    /// PATCH requests of at most this many bytes each, then a closing PUT.
    Chunked(usize),
}

/// What [`Client::push_blob`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// The registry already had the blob; nothing was sent.
    Exists,
    Uploaded,
}

/// A tag resolved to the manifest it points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub digest: Digest,
    pub media_type: MediaType,
    pub size: u64,
}

/// The registry client. It is `Sync`: share one between threads to download blobs in
/// parallel with one token cache.
pub struct Client {
    opts: ClientOptions,
    /// For everything that must be https.
    secure: Agent,
    /// For loopback and insecure registries (http allowed).
    plain: Agent,
    auth: Mutex<AuthState>,
    docker_config: OnceLock<Result<Option<DockerConfig>, (std::path::PathBuf, String)>>,
}

/// One registry request, before auth is added.
struct Req<'a> {
    method: Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    /// The registry host whose auth state applies.
    registry: &'a str,
    /// The token scope the request needs.
    scope: String,
    site: &'a Site,
}

impl Client {
    pub fn new(mut opts: ClientOptions) -> Client {
        opts.max_attempts = opts.max_attempts.max(1);
        let config = |https_only: bool| {
            Agent::config_builder()
                .http_status_as_error(false)
                .https_only(https_only)
                .user_agent(opts.user_agent.as_str())
                .timeout_connect(Some(opts.connect_timeout))
                .timeout_per_read(Some(opts.read_timeout))
                .timeout_recv_response(Some(opts.read_timeout))
                // Redirects are followed by `send`, which checks every hop.
                .max_redirects(0)
                .max_redirects_will_error(false)
        };
        let secure = config(true).build().new_agent();
        // Loopback must not go through an environment proxy.
        let plain = config(false).proxy(None).build().new_agent();
        Client {
            opts,
            secure,
            plain,
            auth: Mutex::new(AuthState::default()),
            docker_config: OnceLock::new(),
        }
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Whether plain http is allowed for `registry` (`host` or `host:port`).
    pub fn allows_http(&self, registry: &str) -> bool {
        let host = host_of(registry);
        is_loopback(host)
            || self
                .opts
                .insecure_registries
                .iter()
                .any(|r| r == registry || r == host)
    }

    fn base_url(&self, registry: &str) -> String {
        let scheme = if self.allows_http(registry) {
            "http"
        } else {
            "https"
        };
        let host = if registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API
        } else {
            registry
        };
        format!("{scheme}://{host}")
    }

    fn url(&self, repo: &Repository, rest: &str) -> String {
        format!(
            "{}/v2/{}/{rest}",
            self.base_url(repo.registry()),
            repo.path()
        )
    }

    fn agent_for(&self, host_port: &str) -> &Agent {
        if self.allows_http(host_port) {
            &self.plain
        } else {
            &self.secure
        }
    }

    // ---------------------------------------------------------------- manifests

    /// Fetches a manifest or index by tag or digest. Fetched by digest, its bytes are
    /// verified against that digest; fetched by tag, against the registry's
    /// `Docker-Content-Digest` when it sends one.
    pub fn get_manifest(&self, repo: &Repository, target: &Target<'_>) -> Result<Manifest> {
        let site = Site::new(repo, format!("manifest {target}"));
        let req = self.manifest_req(Method::GET, repo, target, &site);
        let resp = self.send(&req, ())?;
        let resp = self.expect(resp, &site, &[200])?;
        let header_type = header(&resp, "content-type");
        let header_digest = header(&resp, DOCKER_CONTENT_DIGEST);
        if let Some(len) = content_length(&resp) {
            if len > MAX_MANIFEST_SIZE {
                return Err(Error::ManifestTooLarge {
                    site,
                    limit: MAX_MANIFEST_SIZE,
                    size: format!("{len} bytes"),
                });
            }
        }
        let mut bytes = Vec::new();
        resp.into_body()
            .into_reader()
            .take(MAX_MANIFEST_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Truncated {
                site: site.clone(),
                received: 0,
                expected: "the whole manifest".into(),
                reason: e.to_string(),
            })?;
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(Error::ManifestTooLarge {
                site,
                limit: MAX_MANIFEST_SIZE,
                size: format!("more than {MAX_MANIFEST_SIZE} bytes"),
            });
        }
        let media_type = manifest_media_type(header_type.as_deref(), &bytes, &site)?;
        let manifest = Manifest::new(media_type, bytes);
        let expected = match target {
            Target::Digest(d) => Some(*d),
            // A registry digest in another algorithm cannot be checked; ignore it.
            Target::Tag(_) => header_digest.and_then(|h| h.parse::<Digest>().ok()),
        };
        if let Some(expected) = expected {
            if expected != manifest.digest {
                return Err(Error::DigestMismatch {
                    site: Site::new(repo, format!("manifest {expected}")),
                    actual: manifest.digest,
                });
            }
        }
        Ok(manifest)
    }

    /// Resolves a tag to the digest of the manifest it names, with a HEAD request (falling
    /// back to GET when the registry does not send `Docker-Content-Digest`).
    pub fn resolve_tag(&self, repo: &Repository, tag: &str) -> Result<Resolved> {
        let target = Target::Tag(tag);
        let site = Site::new(repo, format!("manifest {tag}"));
        let req = self.manifest_req(Method::HEAD, repo, &target, &site);
        let resp = self.send(&req, ())?;
        let resp = self.expect(resp, &site, &[200])?;
        let digest = header(&resp, DOCKER_CONTENT_DIGEST).and_then(|d| d.parse::<Digest>().ok());
        let media_type = header(&resp, "content-type").and_then(|t| MediaType::parse(&t));
        match (digest, media_type, content_length(&resp)) {
            (Some(digest), Some(media_type), Some(size)) => Ok(Resolved {
                digest,
                media_type,
                size,
            }),
            _ => {
                let m = self.get_manifest(repo, &target)?;
                Ok(Resolved {
                    digest: m.digest,
                    media_type: m.media_type,
                    size: m.bytes.len() as u64,
                })
            }
        }
    }

    /// The digest a reference names: its own when pinned, else its tag's, resolved.
    pub fn resolve(&self, reference: &Reference) -> Result<Digest> {
        match reference.target() {
            Target::Digest(d) => Ok(d),
            Target::Tag(t) => Ok(self.resolve_tag(reference.repository(), t)?.digest),
        }
    }

    fn manifest_req<'a>(
        &self,
        method: Method,
        repo: &'a Repository,
        target: &Target<'_>,
        site: &'a Site,
    ) -> Req<'a> {
        Req {
            method,
            url: self.url(repo, &format!("manifests/{target}")),
            headers: vec![("accept", MediaType::accept_header())],
            registry: repo.registry(),
            scope: repository_scope(repo.path(), false),
            site,
        }
    }

    /// Uploads a manifest under a tag or its digest and returns its digest, after checking
    /// that the registry stored exactly these bytes (its `Docker-Content-Digest` must match).
    pub fn put_manifest(
        &self,
        repo: &Repository,
        target: &Target<'_>,
        manifest: &Manifest,
    ) -> Result<Digest> {
        let site = Site::new(repo, format!("manifest {target}"));
        let local = Digest::of(&manifest.bytes);
        if local != manifest.digest {
            return Err(Error::DigestMismatch {
                site: Site::new(repo, format!("manifest {}", manifest.digest)),
                actual: local,
            });
        }
        if let Target::Digest(d) = target {
            if *d != local {
                return Err(Error::DigestMismatch {
                    site,
                    actual: local,
                });
            }
        }
        if manifest.bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(Error::ManifestTooLarge {
                site,
                limit: MAX_MANIFEST_SIZE,
                size: format!("{} bytes", manifest.bytes.len()),
            });
        }
        let req = Req {
            method: Method::PUT,
            url: self.url(repo, &format!("manifests/{target}")),
            headers: vec![("content-type", manifest.media_type.as_str().to_string())],
            registry: repo.registry(),
            scope: repository_scope(repo.path(), true),
            site: &site,
        };
        let resp = self.send(&req, manifest.bytes.as_slice())?;
        let resp = self.expect(resp, &site, &[201])?;
        check_registry_digest(&resp, &local, &site)?;
        Ok(local)
    }

    // ---------------------------------------------------------------- blobs down

    /// Streams blob `digest` into `out`, hashing as it goes, and checks size (when given) and
    /// digest at the end. Redirects to blob storage are followed, and a transfer cut short is
    /// resumed with a Range request when the registry supports it.
    ///
    /// On error, `out` may have received some (or wrong) bytes: the caller must discard them.
    /// [`crate::Cache`] does so by writing into a temporary file that is renamed into place
    /// only after the digest checked out.
    pub fn get_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let site = Site::new(repo, format!("blob {digest}"));
        let progress = self.opts.progress.as_deref();
        if let Some(p) = progress {
            p.update(Direction::Pull, digest, 0, size);
        }
        let mut w = HashingWriter::new(out);
        let result = self
            .download(repo, digest, size, &mut w, &site)
            .and_then(|()| {
                w.flush().map_err(|e| Error::Sink {
                    site: site.clone(),
                    source: e,
                })
            });
        let (_, actual, n) = w.finish();
        let result = result.and_then(|()| {
            if let Some(size) = size.filter(|&s| s != n) {
                return Err(Error::SizeMismatch {
                    site: site.clone(),
                    expected: size,
                    actual: n,
                });
            }
            if actual != *digest {
                return Err(Error::DigestMismatch {
                    site: site.clone(),
                    actual,
                });
            }
            Ok(n)
        });
        if let Some(p) = progress {
            p.finish(Direction::Pull, digest, result.is_ok());
        }
        result
    }

    fn download(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: Option<u64>,
        w: &mut HashingWriter<&mut dyn Write>,
        site: &Site,
    ) -> Result<()> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let progress = self.opts.progress.as_deref();
        let mut interruptions = 0;
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            let offset = w.bytes_written();
            let mut headers = Vec::new();
            if offset > 0 {
                headers.push(("range", format!("bytes={offset}-")));
            }
            let req = Req {
                method: Method::GET,
                url: url.clone(),
                headers,
                registry: repo.registry(),
                scope: repository_scope(repo.path(), false),
                site,
            };
            let resp = self.send(&req, ())?;
            let resp = if offset == 0 {
                self.expect(resp, site, &[200])?
            } else {
                match resp.status().as_u16() {
                    206 => {
                        let start = header(&resp, "content-range").and_then(|r| range_start(&r));
                        if start != Some(offset) {
                            return Err(Error::Protocol {
                                site: site.clone(),
                                reason: format!(
                                    "asked to resume at byte {offset}, got Content-Range {:?}",
                                    header(&resp, "content-range").unwrap_or_default()
                                ),
                            });
                        }
                        resp
                    }
                    200 => {
                        return Err(Error::Truncated {
                            site: site.clone(),
                            received: offset,
                            expected: expected_text(size),
                            reason: "the transfer broke and the registry cannot resume it \
                                     (it ignored the Range request)"
                                .into(),
                        })
                    }
                    _ => return Err(self.status_error(resp, site)),
                }
            };
            let total = content_length(&resp).map(|l| offset + l);
            if let (Some(size), Some(total)) = (size, total) {
                if size != total {
                    return Err(Error::SizeMismatch {
                        site: site.clone(),
                        expected: size,
                        actual: total,
                    });
                }
            }
            let limit = size.or(total);
            let mut body = resp.into_body().into_reader();
            let broke = loop {
                match body.read(&mut buf) {
                    Ok(0) => break None,
                    Ok(n) => {
                        let done = w.bytes_written() + n as u64;
                        if let Some(limit) = limit.filter(|&l| done > l) {
                            return Err(Error::SizeMismatch {
                                site: site.clone(),
                                expected: limit,
                                actual: done,
                            });
                        }
                        w.write_all(&buf[..n]).map_err(|e| Error::Sink {
                            site: site.clone(),
                            source: e,
                        })?;
                        if let Some(p) = progress {
                            p.update(Direction::Pull, digest, done, limit);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Some(e.to_string()),
                }
            };
            let got = w.bytes_written();
            let reason = match (broke, total) {
                (None, Some(t)) if got < t => format!("the body ended after {got} of {t} bytes"),
                (None, _) => return Ok(()),
                (Some(reason), _) => reason,
            };
            interruptions += 1;
            if interruptions >= self.opts.max_attempts {
                return Err(Error::Truncated {
                    site: site.clone(),
                    received: got,
                    expected: expected_text(limit),
                    reason,
                });
            }
            std::thread::sleep(self.backoff(interruptions, None));
        }
    }
}

/// The manifest media type from the Content-Type header, or from the body's `mediaType`
/// when the registry answered with a generic type (or none).
fn manifest_media_type(header: Option<&str>, bytes: &[u8], site: &Site) -> Result<MediaType> {
    if let Some(m) = header.and_then(MediaType::parse) {
        return Ok(m);
    }
    let generic = match header {
        None => true,
        Some(h) => {
            let essence = h
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            matches!(
                essence.as_str(),
                "" | "application/json" | "text/plain" | "application/octet-stream"
            )
        }
    };
    let sniffed = if generic {
        sniff_media_type(bytes)
    } else {
        None
    };
    if let Some(m) = sniffed.as_deref().and_then(MediaType::parse) {
        return Ok(m);
    }
    Err(Error::UnknownMediaType {
        site: site.clone(),
        media_type: sniffed
            .or(header.map(str::to_string))
            .unwrap_or_else(|| "(none)".into()),
    })
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn content_length(resp: &Response<Body>) -> Option<u64> {
    header(resp, "content-length").and_then(|v| v.trim().parse().ok())
}

/// The first byte of a `Content-Range: bytes start-end/total` value.
fn range_start(v: &str) -> Option<u64> {
    let v = v.trim().strip_prefix("bytes")?.trim_start();
    v.split('-').next()?.trim().parse().ok()
}

fn expected_text(size: Option<u64>) -> String {
    match size {
        Some(s) => s.to_string(),
        None => "unknown".to_string(),
    }
}

/// The host of `host[:port]` (brackets kept off IPv6 literals).
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_for_loopback_and_named_insecure_registries() {
        let c = Client::new(ClientOptions {
            insecure_registries: vec!["reg.lan:5000".into(), "other.lan".into()],
            ..ClientOptions::default()
        });
        for r in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "LOCALHOST",
        ] {
            assert!(c.allows_http(r), "{r}");
        }
        assert!(c.allows_http("reg.lan:5000"));
        assert!(
            c.allows_http("other.lan:443"),
            "a host without port covers all ports"
        );
        assert!(!c.allows_http("reg.lan:5001"));
        assert!(!c.allows_http("docker.io"));
        assert!(!c.allows_http("10.0.0.1:5000"));
        let repo = Repository::parse("busybox").unwrap();
        assert_eq!(
            c.url(&repo, "manifests/latest"),
            "https://registry-1.docker.io/v2/library/busybox/manifests/latest"
        );
        let local = Repository::parse("127.0.0.1:5000/a/b").unwrap();
        assert_eq!(
            c.url(&local, "blobs/uploads/"),
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/"
        );
    }

    #[test]
    fn media_type_comes_from_header_or_generic_body() {
        let site = Site::new("r/x", "manifest latest");
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#;
        assert_eq!(
            manifest_media_type(Some(crate::manifest::DOCKER_MANIFEST), body, &site).unwrap(),
            MediaType::DockerManifest
        );
        assert_eq!(
            manifest_media_type(Some("application/json"), body, &site).unwrap(),
            MediaType::OciIndex
        );
        assert_eq!(
            manifest_media_type(None, body, &site).unwrap(),
            MediaType::OciIndex
        );
        let e = manifest_media_type(Some("application/x-weird"), body, &site).unwrap_err();
        assert!(
            matches!(e, Error::UnknownMediaType { ref media_type, .. } if media_type == "application/x-weird")
        );
        let e = manifest_media_type(Some("application/json"), b"{}", &site).unwrap_err();
        assert!(
            e.to_string().contains("(none)") || e.to_string().contains("application/json"),
            "{e}"
        );
    }

    #[test]
    fn backoff_doubles_and_honours_retry_after_within_limits() {
        let c = Client::new(ClientOptions {
            backoff: Duration::from_millis(100),
            ..ClientOptions::default()
        });
        assert_eq!(c.backoff(1, None), Duration::from_millis(100));
        assert_eq!(c.backoff(3, None), Duration::from_millis(400));
        assert_eq!(
            c.backoff(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            c.backoff(1, Some(Duration::from_secs(999))),
            Duration::from_secs(30)
        );
        assert_eq!(
            c.backoff(u32::MAX, None),
            Duration::from_secs(30),
            "capped, no overflow"
        );
    }

    #[test]
    fn client_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Client>();
    }

    #[test]
    fn small_parsers() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes=1-2"), None);
        assert_eq!(host_of("[::1]:5000"), "::1");
        assert_eq!(host_of("a.b:1"), "a.b");
    }
}
