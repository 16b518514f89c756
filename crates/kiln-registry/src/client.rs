//! A blocking client for the OCI distribution API: manifests and blobs down, blobs and
//! manifests up. Every byte that comes down is checked against the digest it was asked for;
//! auth (anonymous or credentialed bearer tokens, basic auth), retries with backoff, and the
//! http-only-for-loopback rule are handled here so callers only name what they want.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use kiln_digest::{Digest, Hasher, HashingReader, HashingWriter};
use serde::Deserialize;
use ureq::http::{self, Method, Response};
use ureq::{Agent, AsSendBody, Body, SendBody};
use url::Url;

use crate::auth::{
    self, parse_challenges, repository_scope, AuthState, Challenge, Credentials, DockerConfig,
    HostAuth, Scheme, Token, TokenResponse,
};
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
                .max_redirects(10)
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

    // ---------------------------------------------------------------- blobs up

    /// Whether the registry has blob `digest`; its size when it does.
    pub fn blob_exists(&self, repo: &Repository, digest: &Digest) -> Result<Option<u64>> {
        self.head_blob(repo, digest, false)
    }

    fn head_blob(&self, repo: &Repository, digest: &Digest, push: bool) -> Result<Option<u64>> {
        let site = Site::new(repo, format!("blob {digest}"));
        let req = Req {
            method: Method::HEAD,
            url: self.url(repo, &format!("blobs/{digest}")),
            headers: Vec::new(),
            registry: repo.registry(),
            scope: repository_scope(repo.path(), push),
            site: &site,
        };
        let resp = self.send(&req, ())?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        let resp = self.expect(resp, &site, &[200])?;
        Ok(Some(content_length(&resp).unwrap_or(0)))
    }

    /// Uploads blob `digest` of `size` bytes from `source` (read from its start), unless the
    /// registry has it already. The bytes are hashed on the way out: content that does not
    /// match `digest` is an error, whatever the registry says.
    pub fn push_blob<R: Read + Seek>(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        source: &mut R,
        mode: UploadMode,
    ) -> Result<PushOutcome> {
        let site = Site::new(repo, format!("blob {digest}"));
        if self.head_blob(repo, digest, true)?.is_some() {
            return Ok(PushOutcome::Exists);
        }
        let local_error = |e: io::Error| Error::Source {
            site: site.clone(),
            source: e,
        };
        let len = source.seek(SeekFrom::End(0)).map_err(local_error)?;
        if len != size {
            return Err(Error::SizeMismatch {
                site,
                expected: size,
                actual: len,
            });
        }
        let progress = self.opts.progress.as_deref();
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            source.seek(SeekFrom::Start(0)).map_err(local_error)?;
            if let Some(p) = progress {
                p.update(Direction::Push, digest, 0, Some(size));
            }
            let r = match mode {
                UploadMode::Monolithic => self.upload_monolithic(repo, digest, size, source, &site),
                UploadMode::Chunked(chunk) => {
                    self.upload_chunked(repo, digest, size, source, chunk.max(1), &site)
                }
            };
            match r {
                // A streamed body cannot be replayed by the request layer, so a monolithic
                // upload that broke starts over with a new session here.
                Err(e)
                    if mode == UploadMode::Monolithic
                        && e.is_transient()
                        && attempt < self.opts.max_attempts =>
                {
                    std::thread::sleep(self.backoff(attempt, None));
                }
                r => break r,
            }
        };
        if let Some(p) = progress {
            p.finish(Direction::Push, digest, result.is_ok());
        }
        result.map(|()| PushOutcome::Uploaded)
    }

    /// Asks the registry to link blob `digest` from repository `from` (same registry) into
    /// `repo` without uploading it. `Ok(false)` when it would not (the caller then uploads).
    pub fn mount_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        from: &Repository,
    ) -> Result<bool> {
        if from.registry() != repo.registry() {
            return Ok(false);
        }
        let site = Site::new(repo, format!("blob {digest} (mount from {})", from.path()));
        let mut url = parse_url(&self.url(repo, "blobs/uploads/"), &site)?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from.path());
        let req = Req {
            method: Method::POST,
            url: url.to_string(),
            headers: Vec::new(),
            registry: repo.registry(),
            scope: format!(
                "{} {}",
                repository_scope(repo.path(), true),
                repository_scope(from.path(), false)
            ),
            site: &site,
        };
        let resp = self.send(&req, &[][..])?;
        let resp = self.expect(resp, &site, &[201, 202])?;
        if resp.status().as_u16() == 201 {
            check_registry_digest(&resp, digest, &site)?;
            return Ok(true);
        }
        // Not mounted: close the upload session the registry opened instead (best effort;
        // abandoned sessions expire anyway).
        if let Ok(location) = self.location(&resp, &url, &site) {
            let cancel = Req {
                method: Method::DELETE,
                url: location.to_string(),
                headers: Vec::new(),
                registry: repo.registry(),
                scope: repository_scope(repo.path(), true),
                site: &site,
            };
            let _ = self.send(&cancel, ());
        }
        Ok(false)
    }

    /// POST to open an upload session; returns its URL.
    fn start_upload(&self, repo: &Repository, site: &Site) -> Result<Url> {
        let url = parse_url(&self.url(repo, "blobs/uploads/"), site)?;
        let req = Req {
            method: Method::POST,
            url: url.to_string(),
            headers: Vec::new(),
            registry: repo.registry(),
            scope: repository_scope(repo.path(), true),
            site,
        };
        let resp = self.send(&req, &[][..])?;
        let resp = self.expect(resp, site, &[202])?;
        self.location(&resp, &url, site)
    }

    fn upload_monolithic(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        source: &mut dyn Read,
        site: &Site,
    ) -> Result<()> {
        let mut url = self.start_upload(repo, site)?;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let req = Req {
            method: Method::PUT,
            url: url.to_string(),
            headers: vec![
                ("content-type", OCTET_STREAM.to_string()),
                ("content-length", size.to_string()),
            ],
            registry: repo.registry(),
            scope: repository_scope(repo.path(), true),
            site,
        };
        let mut reader = HashingReader::new(ProgressReader {
            inner: source.take(size),
            progress: self.opts.progress.as_deref(),
            digest,
            done: 0,
            total: size,
        });
        let sent = self.send_once(&req, SendBody::from_reader(&mut reader));
        let (_, actual, n) = reader.finish();
        // The content is checked first: when it is wrong, that is the error to report, not
        // the registry's rejection of it.
        if n == size && actual != *digest {
            return Err(Error::DigestMismatch {
                site: site.clone(),
                actual,
            });
        }
        let resp = self.expect(sent?, site, &[201])?;
        check_registry_digest(&resp, digest, site)
    }

    fn upload_chunked(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        source: &mut dyn Read,
        chunk: usize,
        site: &Site,
    ) -> Result<()> {
        let mut location = self.start_upload(repo, site)?;
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; chunk];
        let mut offset = 0u64;
        loop {
            let n = read_full(source, &mut buf).map_err(|e| Error::Source {
                site: site.clone(),
                source: e,
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            let end = offset + n as u64 - 1;
            let req = Req {
                method: Method::PATCH,
                url: location.to_string(),
                headers: vec![
                    ("content-type", OCTET_STREAM.to_string()),
                    ("content-range", format!("{offset}-{end}")),
                ],
                registry: repo.registry(),
                scope: repository_scope(repo.path(), true),
                site,
            };
            let resp = self.send(&req, &buf[..n])?;
            let resp = self.expect(resp, site, &[202])?;
            if let Some(range) = header(&resp, "range") {
                let held = range
                    .trim_start_matches("bytes=")
                    .split_once('-')
                    .and_then(|(_, e)| e.trim().parse::<u64>().ok());
                if held != Some(end) {
                    return Err(Error::Protocol {
                        site: site.clone(),
                        reason: format!(
                            "after sending bytes {offset}-{end} the registry reports Range {range:?}"
                        ),
                    });
                }
            }
            location = self.location(&resp, &location, site)?;
            offset += n as u64;
            if let Some(p) = self.opts.progress.as_deref() {
                p.update(Direction::Push, digest, offset, Some(size));
            }
        }
        let (actual, n) = hasher.finish();
        if n != size {
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
        location
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let req = Req {
            method: Method::PUT,
            url: location.to_string(),
            headers: vec![("content-type", OCTET_STREAM.to_string())],
            registry: repo.registry(),
            scope: repository_scope(repo.path(), true),
            site,
        };
        let resp = self.send(&req, &[][..])?;
        let resp = self.expect(resp, site, &[201])?;
        check_registry_digest(&resp, digest, site)
    }

    /// The upload URL a response's `Location` names, resolved against the request URL.
    fn location(&self, resp: &Response<Body>, base: &Url, site: &Site) -> Result<Url> {
        let loc = header(resp, "location").ok_or_else(|| Error::Protocol {
            site: site.clone(),
            reason: format!("HTTP {} without a Location header", resp.status().as_u16()),
        })?;
        base.join(&loc).map_err(|e| Error::Protocol {
            site: site.clone(),
            reason: format!("bad Location {loc:?}: {e}"),
        })
    }

    // ---------------------------------------------------------------- transport

    /// Sends a request whose body can be replayed: authenticates (answering one 401
    /// challenge), and retries connection failures, 429 and 5xx with exponential backoff.
    /// Any other status is returned for the caller to judge.
    fn send<B: AsSendBody + Copy>(&self, req: &Req<'_>, body: B) -> Result<Response<Body>> {
        let mut challenged = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let auth = self.authorization(req)?;
            let result = self.execute(req, auth.as_deref(), body);
            let resp = match result {
                Ok(resp) => resp,
                Err(e) => {
                    let err = transport_error(e, req.site);
                    if err.is_transient() && attempt < self.opts.max_attempts {
                        std::thread::sleep(self.backoff(attempt, None));
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = resp.status().as_u16();
            if status == 401 && !challenged {
                challenged = true;
                attempt -= 1;
                self.answer_challenge(&resp, req)?;
                continue;
            }
            if status == 429 || status >= 500 {
                if attempt < self.opts.max_attempts {
                    let retry_after = header(&resp, "retry-after")
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    std::thread::sleep(self.backoff(attempt, retry_after));
                    continue;
                }
                return Err(Error::Server {
                    site: req.site.clone(),
                    status,
                    attempts: attempt,
                    detail: error_detail(resp),
                });
            }
            return Ok(resp);
        }
    }

    /// Sends a request with a streamed body, once: the body cannot be replayed, so retrying
    /// is the caller's business. Auth must already be established (the upload session's POST
    /// did that).
    fn send_once(&self, req: &Req<'_>, body: SendBody<'_>) -> Result<Response<Body>> {
        let auth = self.authorization(req)?;
        let resp = self
            .execute(req, auth.as_deref(), body)
            .map_err(|e| transport_error(e, req.site))?;
        let status = resp.status().as_u16();
        if status == 429 || status >= 500 {
            return Err(Error::Server {
                site: req.site.clone(),
                status,
                attempts: 1,
                detail: error_detail(resp),
            });
        }
        Ok(resp)
    }

    fn execute(
        &self,
        req: &Req<'_>,
        auth: Option<&str>,
        body: impl AsSendBody,
    ) -> Result<Response<Body>, ureq::Error> {
        let mut b = http::Request::builder()
            .method(req.method.clone())
            .uri(req.url.as_str());
        for (name, value) in &req.headers {
            b = b.header(*name, value.as_str());
        }
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        self.agent_for(req.registry).run(b.body(body)?)
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .opts
            .backoff
            .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16));
        match retry_after {
            // Honour the registry's wish, within reason.
            Some(r) => r.min(Duration::from_secs(30)).max(exp),
            None => exp,
        }
    }

    /// Judges a final response: one of `ok`, or the error its status means.
    fn expect(&self, resp: Response<Body>, site: &Site, ok: &[u16]) -> Result<Response<Body>> {
        if ok.contains(&resp.status().as_u16()) {
            Ok(resp)
        } else {
            Err(self.status_error(resp, site))
        }
    }

    fn status_error(&self, resp: Response<Body>, site: &Site) -> Error {
        let status = resp.status().as_u16();
        let site = site.clone();
        match status {
            404 => Error::NotFound { site },
            401 | 403 => Error::Auth {
                site,
                reason: format!("HTTP {status}{}", error_detail(resp)),
            },
            429 | 500..=599 => Error::Server {
                site,
                status,
                attempts: 1,
                detail: error_detail(resp),
            },
            _ => Error::Rejected {
                site,
                status,
                detail: error_detail(resp),
            },
        }
    }

    // ---------------------------------------------------------------- auth

    fn lock_auth(&self) -> MutexGuard<'_, AuthState> {
        // The state is a cache: a panic elsewhere cannot leave it inconsistent.
        self.auth.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Authorization header for a request, fetching a token up front when the host is
    /// known to want bearer tokens and none is cached for this scope.
    fn authorization(&self, req: &Req<'_>) -> Result<Option<String>> {
        let bearer = {
            let state = self.lock_auth();
            if let Some(h) = state.header(req.registry, &req.scope) {
                return Ok(Some(h));
            }
            match state.hosts.get(req.registry) {
                Some(HostAuth::Bearer { realm, service, .. }) => (realm.clone(), service.clone()),
                _ => return Ok(None),
            }
        };
        let scopes: Vec<&str> = req.scope.split(' ').collect();
        let token = self.fetch_token(&bearer.0, bearer.1.as_deref(), &scopes, req)?;
        Ok(Some(self.store_token(req, bearer.0, bearer.1, token)))
    }

    fn store_token(
        &self,
        req: &Req<'_>,
        realm: String,
        service: Option<String>,
        token: Token,
    ) -> String {
        let header = format!("Bearer {}", token.value);
        let mut state = self.lock_auth();
        let entry = state
            .hosts
            .entry(req.registry.to_string())
            .or_insert_with(|| HostAuth::Bearer {
                realm: realm.clone(),
                service: service.clone(),
                tokens: Default::default(),
            });
        match entry {
            HostAuth::Bearer { tokens, .. } => {
                tokens.insert(req.scope.clone(), token);
            }
            other => {
                let mut tokens = std::collections::BTreeMap::new();
                tokens.insert(req.scope.clone(), token);
                *other = HostAuth::Bearer {
                    realm,
                    service,
                    tokens,
                };
            }
        }
        header
    }

    /// Answers a 401: a bearer challenge gets a token from its realm, a basic one gets the
    /// configured credentials.
    fn answer_challenge(&self, resp: &Response<Body>, req: &Req<'_>) -> Result<()> {
        let challenges: Vec<Challenge> = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        let auth_error = |reason: String| Error::Auth {
            site: req.site.clone(),
            reason,
        };
        if let Some(c) = challenges.iter().find(|c| c.scheme == Scheme::Bearer) {
            let realm = c
                .params
                .get("realm")
                .ok_or_else(|| auth_error("bearer challenge without a realm".into()))?
                .clone();
            let service = c.params.get("service").cloned();
            let mut scopes: Vec<&str> = req.scope.split(' ').collect();
            if let Some(extra) = c.params.get("scope") {
                for s in extra.split(' ') {
                    if !scopes.contains(&s) {
                        scopes.push(s);
                    }
                }
            }
            let token = self.fetch_token(&realm, service.as_deref(), &scopes, req)?;
            self.store_token(req, realm, service, token);
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == Scheme::Basic) {
            let creds = self.credentials(req)?.ok_or_else(|| {
                auth_error(format!(
                    "the registry requires credentials and none are configured for {} in {}",
                    req.registry,
                    self.config_path_text()
                ))
            })?;
            self.lock_auth().hosts.insert(
                req.registry.to_string(),
                HostAuth::Basic(creds.basic_header()),
            );
            return Ok(());
        }
        Err(auth_error(
            "HTTP 401 without a usable WWW-Authenticate challenge".into(),
        ))
    }

    /// Gets a bearer token from `realm`, with basic credentials when configured (the
    /// "basic auth via the token endpoint" registries use), anonymously otherwise.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[&str],
        req: &Req<'_>,
    ) -> Result<Token> {
        let auth_error = |reason: String| Error::Auth {
            site: req.site.clone(),
            reason,
        };
        let mut url = Url::parse(realm)
            .map_err(|e| auth_error(format!("token realm {realm:?} is not a URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes.iter().filter(|s| !s.is_empty()) {
                q.append_pair("scope", s);
            }
        }
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(auth_error(format!("token realm {realm:?} has no host"))),
        };
        let creds = self.credentials(req)?;
        let token_req = Req {
            method: Method::GET,
            url: url.to_string(),
            headers: Vec::new(),
            registry: &host,
            scope: String::new(),
            site: req.site,
        };
        let basic = creds.as_ref().map(Credentials::basic_header);
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let agent = self.agent_for(&host);
            let mut b = http::Request::builder()
                .method(Method::GET)
                .uri(token_req.url.as_str());
            if let Some(h) = &basic {
                b = b.header("authorization", h.as_str());
            }
            let result = b
                .body(())
                .map_err(ureq::Error::from)
                .and_then(|r| agent.run(r));
            match result {
                Ok(r)
                    if (r.status().as_u16() == 429 || r.status().as_u16() >= 500)
                        && attempt < self.opts.max_attempts => {}
                Ok(r) => break r,
                Err(e) => {
                    let err = transport_error(e, req.site);
                    if !(err.is_transient() && attempt < self.opts.max_attempts) {
                        return Err(err);
                    }
                }
            }
            std::thread::sleep(self.backoff(attempt, None));
        };
        let status = resp.status().as_u16();
        if status != 200 {
            let who = match &creds {
                Some(c) => format!("as {:?}", c.username),
                None => "anonymously".to_string(),
            };
            return Err(auth_error(format!(
                "token server {realm} refused {who} for scope {:?}: HTTP {status}{}",
                scopes.join(" "),
                error_detail(resp)
            )));
        }
        let mut bytes = Vec::new();
        resp.into_body()
            .into_reader()
            .take(1024 * 1024)
            .read_to_end(&mut bytes)
            .map_err(|e| auth_error(format!("reading the token from {realm}: {e}")))?;
        serde_json::from_slice::<TokenResponse>(&bytes)
            .ok()
            .and_then(TokenResponse::into_token)
            .ok_or_else(|| auth_error(format!("token server {realm} sent no token")))
    }

    fn config_dir(&self) -> Option<std::path::PathBuf> {
        self.opts
            .docker_config_dir
            .clone()
            .or_else(auth::docker_config_dir)
    }

    fn config_path_text(&self) -> String {
        match self.config_dir() {
            Some(d) => d.join("config.json").display().to_string(),
            None => "the Docker config (neither DOCKER_CONFIG nor HOME is set)".to_string(),
        }
    }

    /// Credentials for the request's registry from Docker's config, loaded once.
    fn credentials(&self, req: &Req<'_>) -> Result<Option<Credentials>> {
        let loaded = self.docker_config.get_or_init(|| match self.config_dir() {
            None => Ok(None),
            Some(dir) => {
                DockerConfig::load(&dir).map_err(|e| (dir.join("config.json"), e.to_string()))
            }
        });
        match loaded {
            Ok(Some(config)) => config.credentials_for(req.registry),
            Ok(None) => Ok(None),
            Err((path, reason)) => Err(Error::Credentials {
                path: path.clone(),
                reason: reason.clone(),
            }),
        }
    }
}

/// Counts bytes flowing into an upload for the progress callback.
struct ProgressReader<'a, R> {
    inner: R,
    progress: Option<&'a dyn Progress>,
    digest: &'a Digest,
    done: u64,
    total: u64,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if let Some(p) = self.progress {
            p.update(Direction::Push, self.digest, self.done, Some(self.total));
        }
        Ok(n)
    }
}

/// Reads until `buf` is full or the reader is exhausted.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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

fn check_registry_digest(resp: &Response<Body>, local: &Digest, site: &Site) -> Result<()> {
    match header(resp, DOCKER_CONTENT_DIGEST) {
        // Registries need not send it; when they do, it must be ours.
        None => Ok(()),
        Some(h) if h == local.to_string() => Ok(()),
        Some(h) => Err(Error::RegistryDigest {
            site: site.clone(),
            local: *local,
            registry: h,
        }),
    }
}

fn transport_error(e: ureq::Error, site: &Site) -> Error {
    use ureq::Error as U;
    let site = site.clone();
    let reason = e.to_string();
    match e {
        U::Tls(_) | U::Rustls(_) | U::Pem(_) | U::TlsRequired => Error::Tls { site, reason },
        U::RequireHttpsOnly(url) => Error::Tls {
            site,
            reason: format!(
                "refusing plain http ({url}): only loopback hosts and insecure registries may \
                 use http"
            ),
        },
        U::Io(_) | U::Timeout(_) | U::HostNotFound | U::ConnectionFailed => {
            Error::Unreachable { site, reason }
        }
        U::ConnectProxyFailed(_) => Error::Unreachable { site, reason },
        _ => Error::Protocol { site, reason },
    }
}

/// `": CODE: message; ..."` from a registry error body, or a short excerpt of it.
fn error_detail(resp: Response<Body>) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let mut buf = Vec::new();
    let _ = resp
        .into_body()
        .into_reader()
        .take(ERROR_BODY_LIMIT)
        .read_to_end(&mut buf);
    if let Ok(errs) = serde_json::from_slice::<Errors>(&buf) {
        let parts: Vec<String> = errs
            .errors
            .iter()
            .map(|e| match (&e.code, &e.message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(x), None) | (None, Some(x)) => x.clone(),
                (None, None) => String::new(),
            })
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            return format!(": {}", parts.join("; "));
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        let short: String = text.chars().take(200).collect();
        format!(": {short}")
    }
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

fn parse_url(s: &str, site: &Site) -> Result<Url> {
    Url::parse(s).map_err(|e| Error::Protocol {
        site: site.clone(),
        reason: format!("bad URL {s:?}: {e}"),
    })
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
        assert!(c.backoff(u32::MAX, None) > Duration::ZERO, "no overflow");
    }

    #[test]
    fn small_parsers() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes=1-2"), None);
        assert_eq!(host_of("[::1]:5000"), "::1");
        assert_eq!(host_of("a.b:1"), "a.b");
        let mut r = &b"abcdef"[..];
        let mut buf = [0u8; 4];
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 4);
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 2);
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 0);
    }
}
