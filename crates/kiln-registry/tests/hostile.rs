//! Registries that lie, break or fail, played by a scripted loopback server: each failure must
//! come back as the right kind of error, and leave nothing in the cache.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use common::hostile::{Hostile, Reply, Request};
use kiln_registry::manifest::{DOCKER_MANIFEST, OCI_MANIFEST};
use kiln_registry::{
    Cache, Client, ClientOptions, Digest, Error, ErrorClass, Manifest, MediaType, Repository,
    Target, MAX_MANIFEST_SIZE,
};
use tempfile::TempDir;

/// 3000 bytes of not-quite-repeating content.
fn blob() -> Vec<u8> {
    (0..3000u32).map(|i| (i * 7 + i / 256) as u8).collect()
}

struct Setup {
    server: Hostile,
    client: Client,
    cache: Cache,
    repo: Repository,
    _dir: TempDir,
}

/// A server running `handler`, a client with fast retries and no credentials, an empty cache.
fn setup(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let server = Hostile::start(handler);
    let client = Client::new(ClientOptions {
        backoff: Duration::from_millis(1),
        docker_config_dir: Some(dir.path().join("no-docker-config")),
        ..ClientOptions::default()
    });
    let cache = Cache::open(dir.path().join("cache")).unwrap();
    let repo = Repository::parse(&format!("{}/evil", server.addr)).unwrap();
    Setup {
        server,
        client,
        cache,
        repo,
        _dir: dir,
    }
}

/// Every file under the cache (partial or not), sorted.
fn cache_files(cache: &Cache) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(cache.root(), &mut out);
    out.sort();
    out
}

fn assert_bad_input(e: &Error) {
    assert_eq!(e.class(), ErrorClass::BadInput, "{e}");
    assert_eq!(e.class().exit_code(), 2);
}

fn assert_environment(e: &Error) {
    assert_eq!(e.class(), ErrorClass::Environment, "{e}");
    assert_eq!(e.class().exit_code(), 3);
}

#[test]
fn blob_that_does_not_match_its_digest() {
    let good = blob();
    let d = Digest::of(&good);
    let mut bad = good.clone();
    bad[1234] ^= 1;
    let s = setup(move |_| Reply::new(200).body(bad.clone()));
    for size in [Some(3000), None] {
        let e = s
            .cache
            .fetch_blob(&s.client, &s.repo, &d, size)
            .unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        assert_bad_input(&e);
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("{}/evil", s.server.addr)) && msg.contains(&d.to_string()),
            "message names registry, repository and digest: {msg}"
        );
    }
    assert!(
        cache_files(&s.cache).is_empty(),
        "{:?}",
        cache_files(&s.cache)
    );
}

#[test]
fn truncated_blob_from_a_registry_that_cannot_resume() {
    let data = blob();
    let d = Digest::of(&data);
    // Promises 3000 bytes, sends 1000, hangs up; ignores Range requests.
    let s = setup(move |_| Reply::new(200).body(data.clone()).cut_after(1000));
    let e = s
        .cache
        .fetch_blob(&s.client, &s.repo, &d, Some(3000))
        .unwrap_err();
    assert!(matches!(e, Error::Truncated { received: 1000, .. }), "{e}");
    assert_environment(&e);
    assert!(e.to_string().contains("ignored the Range request"), "{e}");
    let requests = s.server.log.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "one try, one resume attempt");
    assert_eq!(requests[1].header("range"), Some("bytes=1000-"));
    assert!(cache_files(&s.cache).is_empty());
}

/// Serves `data` honouring `Range: bytes=N-`, but never more than `cut` bytes per response.
fn ranged(data: Vec<u8>, cut: usize) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
    move |req| {
        let start: usize = req
            .header("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let status = if start > 0 { 206 } else { 200 };
        let mut reply = Reply::new(status)
            .body(data[start..].to_vec())
            .cut_after(cut);
        if start > 0 {
            reply = reply.header(
                "Content-Range",
                format!("bytes {start}-{}/{}", data.len() - 1, data.len()),
            );
        }
        reply
    }
}

#[test]
fn interrupted_download_resumes_with_range_requests() {
    let data = blob();
    let d = Digest::of(&data);
    let s = setup(ranged(data.clone(), 1200));
    let path = s
        .cache
        .fetch_blob(&s.client, &s.repo, &d, Some(3000))
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let ranges: Vec<Option<String>> = s
        .server
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.header("range").map(str::to_string))
        .collect();
    assert_eq!(
        ranges,
        [None, Some("bytes=1200-".into()), Some("bytes=2400-".into())]
    );
}

#[test]
fn download_that_keeps_breaking_gives_up() {
    let data = blob();
    let d = Digest::of(&data);
    let s = setup(ranged(data, 100));
    let e = s
        .cache
        .fetch_blob(&s.client, &s.repo, &d, Some(3000))
        .unwrap_err();
    assert!(matches!(e, Error::Truncated { received: 400, .. }), "{e}");
    assert_environment(&e);
    assert_eq!(
        s.server.requests().len(),
        4,
        "bounded: max_attempts transfers"
    );
    assert!(cache_files(&s.cache).is_empty());
}

#[test]
fn wrong_sizes_are_refused_before_and_while_reading() {
    let data = blob();
    let d = Digest::of(&data);
    let s = setup(move |_| Reply::new(200).body(data.clone()));
    // The registry announces 3000 bytes where the descriptor says 2999.
    let e = s
        .cache
        .fetch_blob(&s.client, &s.repo, &d, Some(2999))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::SizeMismatch {
                expected: 2999,
                actual: 3000,
                ..
            }
        ),
        "{e}"
    );
    assert_bad_input(&e);

    // Without a Content-Length, reading stops as soon as the stream overruns the size.
    let data = blob();
    let s2 = setup(move |_| Reply::new(200).body(data.clone()).no_length());
    let e = s2
        .cache
        .fetch_blob(&s2.client, &s2.repo, &d, Some(100))
        .unwrap_err();
    assert!(
        matches!(e, Error::SizeMismatch { expected: 100, .. }),
        "{e}"
    );
    assert!(cache_files(&s.cache).is_empty() && cache_files(&s2.cache).is_empty());
}

#[test]
fn not_found_is_bad_input() {
    let s = setup(|_| {
        Reply::new(404)
            .header("Content-Type", "application/json")
            .body(r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#)
    });
    let d = Digest::of(b"gone");
    let e = s
        .cache
        .fetch_blob(&s.client, &s.repo, &d, None)
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert_bad_input(&e);
    assert_eq!(
        e.to_string(),
        format!("blob {d} in {}/evil: not found", s.server.addr)
    );
    let e = s.cache.fetch_manifest(&s.client, &s.repo, &d).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert_eq!(s.server.requests().len(), 2, "404 is not retried");
    assert!(cache_files(&s.cache).is_empty());
}

/// A valid-looking manifest body of exactly `len` bytes.
fn padded_manifest(len: usize) -> Vec<u8> {
    let mut m = br#"{"schemaVersion":2,"config":{},"layers":[]}"#.to_vec();
    m.resize(len, b' ');
    m
}

#[test]
fn manifests_over_4_mib_are_refused() {
    let limit = MAX_MANIFEST_SIZE as usize;
    let s = setup(move |req| {
        let body = match req.path().rsplit('/').next() {
            Some("at-limit") => padded_manifest(limit),
            _ => padded_manifest(limit + 1),
        };
        let reply = Reply::new(200)
            .header("Content-Type", OCI_MANIFEST)
            .body(body);
        if req.path().ends_with("unsized") {
            reply.no_length()
        } else {
            reply
        }
    });
    let e = s
        .client
        .get_manifest(&s.repo, &Target::Tag("big"))
        .unwrap_err();
    assert!(matches!(e, Error::ManifestTooLarge { .. }), "{e}");
    assert!(e.to_string().contains("(4194305 bytes)"), "{e}");
    assert_bad_input(&e);
    // Without a Content-Length the limit applies to the bytes read.
    let e = s
        .client
        .get_manifest(&s.repo, &Target::Tag("unsized"))
        .unwrap_err();
    assert!(e.to_string().contains("more than 4194304 bytes"), "{e}");
    // Exactly 4 MiB is allowed.
    let m = s
        .client
        .get_manifest(&s.repo, &Target::Tag("at-limit"))
        .unwrap();
    assert_eq!(m.bytes.len(), limit);
    // Through the cache, by digest: refused and not cached.
    let d = Digest::of(&padded_manifest(limit + 1));
    let e = s.cache.fetch_manifest(&s.client, &s.repo, &d).unwrap_err();
    assert!(matches!(e, Error::ManifestTooLarge { .. }), "{e}");
    assert!(cache_files(&s.cache).is_empty());
}

#[test]
fn unknown_manifest_media_type_is_bad_input() {
    let body = br#"{"schemaVersion":1,"name":"evil","tag":"latest","fsLayers":[]}"#.to_vec();
    let d = Digest::of(&body);
    let s = setup(move |_| {
        Reply::new(200)
            .header(
                "Content-Type",
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
            )
            .body(body.clone())
    });
    let e = s.cache.fetch_manifest(&s.client, &s.repo, &d).unwrap_err();
    assert!(
        matches!(&e, Error::UnknownMediaType { media_type, .. }
            if media_type == "application/vnd.docker.distribution.manifest.v1+prettyjws"),
        "{e}"
    );
    assert_bad_input(&e);
    assert!(e.to_string().contains(&d.to_string()), "{e}");
    assert!(cache_files(&s.cache).is_empty());
}

#[test]
fn manifest_bytes_must_match_the_digest_asked_for() {
    let real = padded_manifest(100);
    let served = padded_manifest(101);
    let real_digest = Digest::of(&real);
    let s = setup(move |req| {
        let r = Reply::new(200)
            .header("Content-Type", DOCKER_MANIFEST)
            .body(served.clone());
        if req.path().ends_with("/latest") {
            // By tag: the registry's own digest header disagrees with the bytes.
            r.header("Docker-Content-Digest", real_digest.to_string())
        } else {
            r
        }
    });
    let e = s
        .cache
        .fetch_manifest(&s.client, &s.repo, &real_digest)
        .unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert_bad_input(&e);
    let e = s
        .client
        .get_manifest(&s.repo, &Target::Tag("latest"))
        .unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert!(cache_files(&s.cache).is_empty());
}

#[test]
fn server_errors_are_retried_until_success() {
    let data = blob();
    let d = Digest::of(&data);
    let hits = Arc::new(AtomicUsize::new(0));
    let s = setup({
        let hits = hits.clone();
        move |_| match hits.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::new(500),
            1 => Reply::new(429).header("Retry-After", "0"),
            2 => Reply::new(503),
            _ => Reply::new(200).body(data.clone()),
        }
    });
    let path = s
        .cache
        .fetch_blob(&s.client, &s.repo, &d, Some(3000))
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), blob());
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

#[test]
fn dropped_connections_are_retried() {
    let data = blob();
    let d = Digest::of(&data);
    let hits = Arc::new(AtomicUsize::new(0));
    let s = setup({
        let hits = hits.clone();
        move |_| match hits.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Reply::hang_up(),
            _ => Reply::new(200).body(data.clone()),
        }
    });
    let mut out = Vec::new();
    s.client
        .get_blob(&s.repo, &d, Some(3000), &mut out)
        .unwrap();
    assert!(out == blob());
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    // A registry that always hangs up is unreachable, after the bounded tries.
    let s = setup(|_| Reply::hang_up());
    let e = s
        .client
        .get_manifest(&s.repo, &Target::Tag("latest"))
        .unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e}");
    assert_environment(&e);
    assert_eq!(s.server.requests().len(), 4);
}

#[test]
fn persistent_server_errors_give_up_after_bounded_tries() {
    let s = setup(|_| {
        Reply::new(500)
            .header("Content-Type", "application/json")
            .body(r#"{"errors":[{"code":"UNKNOWN","message":"storage on fire"}]}"#)
    });
    let d = Digest::of(b"x");
    let e = s
        .cache
        .fetch_blob(&s.client, &s.repo, &d, None)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Server {
                status: 500,
                attempts: 4,
                ..
            }
        ),
        "{e}"
    );
    assert_environment(&e);
    assert!(
        e.to_string()
            .contains("HTTP 500: UNKNOWN: storage on fire) after 4 attempts"),
        "{e}"
    );
    assert_eq!(s.server.requests().len(), 4);
    assert!(cache_files(&s.cache).is_empty());
}

#[test]
fn client_errors_are_not_retried() {
    let s = setup(|req| match req.path().rsplit('/').next() {
        Some("forbidden") => Reply::new(403),
        _ => Reply::new(400).body("bad request"),
    });
    let e = s
        .client
        .get_manifest(&s.repo, &Target::Tag("bad"))
        .unwrap_err();
    assert!(matches!(e, Error::Rejected { status: 400, .. }), "{e}");
    assert_bad_input(&e);
    assert!(e.to_string().ends_with("HTTP 400: bad request"), "{e}");
    let e = s
        .client
        .get_manifest(&s.repo, &Target::Tag("forbidden"))
        .unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e}");
    assert_environment(&e);
    assert_eq!(s.server.requests().len(), 2);
}

#[test]
fn unreachable_registry_is_an_environment_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::new(ClientOptions {
        backoff: Duration::from_millis(1),
        ..ClientOptions::default()
    });
    let repo = Repository::parse(&format!("127.0.0.1:{port}/gone")).unwrap();
    let e = client
        .get_manifest(&repo, &Target::Tag("latest"))
        .unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e}");
    assert_environment(&e);
    assert!(
        e.to_string().contains(&format!("127.0.0.1:{port}/gone")),
        "{e}"
    );
}

#[test]
fn blob_redirects_are_followed_without_credentials() {
    let data = blob();
    let d = Digest::of(&data);
    let s = setup(move |req| {
        if req.path().starts_with("/storage/") {
            Reply::new(200).body(data.clone())
        } else {
            Reply::new(307).header("Location", "/storage/blob?sig=abc")
        }
    });
    let path = s
        .cache
        .fetch_blob(&s.client, &s.repo, &d, Some(3000))
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), blob());
    assert_eq!(
        s.server.requests(),
        [
            format!("GET /v2/evil/blobs/{d}"),
            "GET /storage/blob?sig=abc".to_string()
        ]
    );
}

#[test]
fn plain_http_is_refused_beyond_loopback() {
    // A redirect, and a token realm, to plain http on a non-loopback host: refused before any
    // connection is attempted.
    let s = setup(|req| {
        if req.path().contains("/blobs/") {
            Reply::new(302).header("Location", "http://storage.example.invalid/blob")
        } else {
            Reply::new(401).header(
                "WWW-Authenticate",
                r#"Bearer realm="http://auth.example.invalid/token",service="x""#,
            )
        }
    });
    let e = s
        .client
        .get_blob(&s.repo, &Digest::of(b"x"), None, &mut Vec::new())
        .unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("refusing a redirect to http://storage.example.invalid/blob"),
        "{e}"
    );
    let e = s
        .client
        .get_manifest(&s.repo, &Target::Tag("latest"))
        .unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e}");
    assert!(e.to_string().contains("refusing plain http"), "{e}");
    assert_environment(&e);
}

#[test]
fn registry_must_store_the_manifest_under_our_digest() {
    let s = setup(|_| {
        Reply::new(201).header(
            "Docker-Content-Digest",
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        )
    });
    let m = Manifest::new(MediaType::OciManifest, padded_manifest(60));
    let e = s
        .client
        .put_manifest(&s.repo, &Target::Tag("latest"), &m)
        .unwrap_err();
    assert!(matches!(e, Error::RegistryDigest { .. }), "{e}");
    assert!(e.to_string().contains(&m.digest.to_string()), "{e}");
    let put = s.server.log.lock().unwrap()[0].clone();
    assert_eq!(put.method, "PUT");
    assert_eq!(put.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(put.body, m.bytes);
}

/// A registry that wants bearer tokens from its own `/token` endpoint.
fn token_registry(
    data: Vec<u8>,
    addr: Arc<OnceLock<String>>,
    token_status: u16,
) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
    move |req| {
        if req.path() == "/token" {
            return Reply::new(token_status)
                .header("Content-Type", "application/json")
                .body(r#"{"token":"T1","expires_in":300}"#);
        }
        if req.header("authorization") != Some("Bearer T1") {
            let addr = addr.get().cloned().unwrap_or_default();
            return Reply::new(401).header(
                "WWW-Authenticate",
                format!(
                    r#"Bearer realm="http://{addr}/token",service="hostile",scope="repository:evil:pull""#
                ),
            );
        }
        Reply::new(200).body(data.clone())
    }
}

#[test]
fn bearer_tokens_are_fetched_once_per_scope_with_credentials() {
    let data = blob();
    let d = Digest::of(&data);
    let addr = Arc::new(OnceLock::new());
    let server = Hostile::start(token_registry(data.clone(), addr.clone(), 200));
    addr.set(server.addr.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("kiln:pw");
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, server.addr),
    )
    .unwrap();
    let client = Client::new(ClientOptions {
        backoff: Duration::from_millis(1),
        docker_config_dir: Some(dir.path().to_path_buf()),
        ..ClientOptions::default()
    });
    let repo = Repository::parse(&format!("{}/evil", server.addr)).unwrap();
    for _ in 0..3 {
        let mut out = Vec::new();
        client.get_blob(&repo, &d, Some(3000), &mut out).unwrap();
        assert!(out == data);
    }
    let log = server.log.lock().unwrap().clone();
    let token_requests: Vec<&Request> = log.iter().filter(|r| r.path() == "/token").collect();
    assert_eq!(token_requests.len(), 1, "{:?}", server.requests());
    assert_eq!(
        token_requests[0].target,
        "/token?service=hostile&scope=repository%3Aevil%3Apull"
    );
    assert_eq!(
        token_requests[0].header("authorization"),
        Some(format!("Basic {auth}").as_str()),
        "credentials go to the token endpoint"
    );
    // One 401, then three authenticated fetches.
    assert_eq!(log.iter().filter(|r| r.path() != "/token").count(), 4);
}

#[test]
fn anonymous_token_refused_is_an_auth_error() {
    let addr = Arc::new(OnceLock::new());
    let s = setup(token_registry(blob(), addr.clone(), 401));
    addr.set(s.server.addr.clone()).unwrap();
    let e = s
        .client
        .get_manifest(&s.repo, &Target::Tag("latest"))
        .unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e}");
    assert!(e.to_string().contains("refused anonymously"), "{e}");
    assert_environment(&e);
}

#[test]
fn monolithic_upload_restarts_after_a_dropped_put() {
    let data = blob();
    let d = Digest::of(&data);
    let puts = Arc::new(AtomicUsize::new(0));
    let s = setup({
        let puts = puts.clone();
        let d = d.to_string();
        move |req| match req.method.as_str() {
            "HEAD" => Reply::new(404),
            "POST" => Reply::new(202).header("Location", "/v2/evil/blobs/uploads/session"),
            "PUT" if puts.fetch_add(1, Ordering::SeqCst) == 0 => Reply::hang_up(),
            "PUT" => Reply::new(201).header("Docker-Content-Digest", d.clone()),
            _ => Reply::new(500),
        }
    });
    let outcome = s
        .client
        .push_blob(
            &s.repo,
            &d,
            3000,
            &mut std::io::Cursor::new(data.clone()),
            kiln_registry::UploadMode::Monolithic,
        )
        .unwrap();
    assert_eq!(outcome, kiln_registry::PushOutcome::Uploaded);
    let log = s.server.log.lock().unwrap().clone();
    let lines: Vec<String> = log
        .iter()
        .map(|r| format!("{} {}", r.method, r.path()))
        .collect();
    assert_eq!(
        lines,
        [
            format!("HEAD /v2/evil/blobs/{d}"),
            "POST /v2/evil/blobs/uploads/".to_string(),
            "PUT /v2/evil/blobs/uploads/session".to_string(),
            "POST /v2/evil/blobs/uploads/".to_string(),
            "PUT /v2/evil/blobs/uploads/session".to_string(),
        ]
    );
    // Both PUTs carried the whole blob, from its first byte.
    assert!(log[2].body == data && log[4].body == data);
    assert_eq!(
        log[4].target,
        format!("/v2/evil/blobs/uploads/session?digest=sha256%3A{}", d.hex())
    );
}
