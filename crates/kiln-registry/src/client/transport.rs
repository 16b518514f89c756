//! The request layer: authentication (bearer tokens and basic credentials), retries with
//! backoff, checked redirects, and turning statuses and transport failures into [`Error`]s.

use std::io::Read;
use std::sync::MutexGuard;
use std::time::Duration;

use serde::Deserialize;
use ureq::http::{self, Method, Response};
use ureq::{AsSendBody, Body, SendBody};
use url::Url;

use super::{header, Client, Req, ERROR_BODY_LIMIT, MAX_REDIRECTS};
use crate::auth::{
    self, parse_challenges, AuthState, Challenge, Credentials, DockerConfig, HostAuth, Scheme,
    Token, TokenResponse,
};
use crate::error::{Error, Result, Site};

/// The longest wait between two tries, whatever the attempt count or `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Client {
    /// Sends a request whose body can be replayed: authenticates (answering one 401
    /// challenge), retries connection failures, 429 and 5xx with exponential backoff, and
    /// follows redirects of GET and HEAD (blob storage), checking each hop against the
    /// http-only-for-loopback rule and sending credentials only to the registry itself.
    /// Any other status is returned for the caller to judge.
    pub(super) fn send<B: AsSendBody + Copy>(
        &self,
        req: &Req<'_>,
        body: B,
    ) -> Result<Response<Body>> {
        let mut url = req.url.clone();
        let origin = origin_of(&url);
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.send_to(req, &url, origin_of(&url) == origin, body)?;
            let status = resp.status().as_u16();
            let follow = matches!(status, 301 | 302 | 303 | 307 | 308)
                && (req.method == Method::GET || req.method == Method::HEAD);
            if !follow {
                return Ok(resp);
            }
            let here = parse_url(&url, req.site)?;
            let next = self.location(&resp, &here, req.site)?;
            if next.scheme() != "https" {
                let host = origin_of(next.as_str()).unwrap_or_default();
                if next.scheme() != "http" || !self.allows_http(&host) {
                    return Err(Error::Tls {
                        site: req.site.clone(),
                        reason: format!(
                            "refusing a redirect to {next}: only https, or http to loopback \
                             hosts and insecure registries"
                        ),
                    });
                }
            }
            url = next.to_string();
        }
        Err(Error::Protocol {
            site: req.site.clone(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// One URL of [`Client::send`]: auth (when `registry_origin`) and retries.
    fn send_to<B: AsSendBody + Copy>(
        &self,
        req: &Req<'_>,
        url: &str,
        registry_origin: bool,
        body: B,
    ) -> Result<Response<Body>> {
        let mut challenged = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let auth = if registry_origin {
                self.authorization(req)?
            } else {
                None
            };
            let resp = match self.execute(req, url, auth.as_deref(), body) {
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
            if status == 401 && registry_origin && !challenged {
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
    pub(super) fn send_once(&self, req: &Req<'_>, body: SendBody<'_>) -> Result<Response<Body>> {
        let auth = self.authorization(req)?;
        let resp = self
            .execute(req, &req.url, auth.as_deref(), body)
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
        url: &str,
        auth: Option<&str>,
        body: impl AsSendBody,
    ) -> Result<Response<Body>, ureq::Error> {
        let mut b = http::Request::builder().method(req.method.clone()).uri(url);
        for (name, value) in &req.headers {
            b = b.header(*name, value.as_str());
        }
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        let host = origin_of(url).unwrap_or_default();
        self.agent_for(&host).run(b.body(body)?)
    }

    pub(super) fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .opts
            .backoff
            .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16))
            .min(MAX_BACKOFF);
        match retry_after {
            // Honour the registry's wish, within reason.
            Some(r) => r.min(MAX_BACKOFF).max(exp),
            None => exp,
        }
    }

    /// Judges a final response: one of `ok`, or the error its status means.
    pub(super) fn expect(
        &self,
        resp: Response<Body>,
        site: &Site,
        ok: &[u16],
    ) -> Result<Response<Body>> {
        if ok.contains(&resp.status().as_u16()) {
            Ok(resp)
        } else {
            Err(self.status_error(resp, site))
        }
    }

    pub(super) fn status_error(&self, resp: Response<Body>, site: &Site) -> Error {
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

pub(super) fn transport_error(e: ureq::Error, site: &Site) -> Error {
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
pub(super) fn error_detail(resp: Response<Body>) -> String {
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

pub(super) fn parse_url(s: &str, site: &Site) -> Result<Url> {
    Url::parse(s).map_err(|e| Error::Protocol {
        site: site.clone(),
        reason: format!("bad URL {s:?}: {e}"),
    })
}

/// `host[:port]` of a URL, as registries are named (the default port left out).
pub(super) fn origin_of(url: &str) -> Option<String> {
    let u = Url::parse(url).ok()?;
    let host = match u.host()? {
        url::Host::Ipv6(a) => format!("[{a}]"),
        h => h.to_string(),
    };
    Some(match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}
