//! Uploads: blob existence checks, monolithic and chunked uploads, cross-repository mounts.

use std::io::{self, Read, Seek, SeekFrom};

use kiln_digest::{Digest, Hasher, HashingReader};
use ureq::http::{Method, Response};
use ureq::{Body, SendBody};
use url::Url;

use super::transport::parse_url;
use super::{
    content_length, header, Client, PushOutcome, Req, UploadMode, DOCKER_CONTENT_DIGEST,
    OCTET_STREAM,
};
use crate::auth::repository_scope;
use crate::error::{Error, Result, Site};
use crate::progress::{Direction, Progress};
use crate::reference::Repository;

impl Client {
    /// Whether the registry has blob `digest`; its size when it does.
    pub fn blob_exists(&self, repo: &Repository, digest: &Digest) -> Result<Option<u64>> {
        self.head_blob(repo, digest, false)
    }

    pub(super) fn head_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        push: bool,
    ) -> Result<Option<u64>> {
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
        source.seek(SeekFrom::Start(0)).map_err(local_error)?;
        let result = match mode {
            UploadMode::Monolithic => self.upload_monolithic(repo, digest, size, source, &site),
            UploadMode::Chunked(chunk) => {
                self.upload_chunked(repo, digest, size, source, chunk.max(1), &site)
            }
        };
        if let Some(p) = self.opts.progress.as_deref() {
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

    /// POST, then one PUT streaming the whole blob. The request layer cannot replay a streamed
    /// body, so a PUT that breaks in transit starts over here, with a new session.
    fn upload_monolithic<R: Read + Seek>(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        source: &mut R,
        site: &Site,
    ) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut url = self.start_upload(repo, site)?;
            url.query_pairs_mut()
                .append_pair("digest", &digest.to_string());
            source.seek(SeekFrom::Start(0)).map_err(|e| Error::Source {
                site: site.clone(),
                source: e,
            })?;
            match self.put_blob_body(repo, digest, size, url, source, site) {
                Err(e) if e.is_transient() && attempt < self.opts.max_attempts => {
                    std::thread::sleep(self.backoff(attempt, None));
                }
                r => return r,
            }
        }
    }

    fn put_blob_body(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        url: Url,
        source: &mut dyn Read,
        site: &Site,
    ) -> Result<()> {
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
        let progress = self.opts.progress.as_deref();
        if let Some(p) = progress {
            p.update(Direction::Push, digest, 0, Some(size));
        }
        let mut reader = HashingReader::new(ProgressReader {
            inner: source.take(size),
            progress,
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
        if let Some(p) = self.opts.progress.as_deref() {
            p.update(Direction::Push, digest, 0, Some(size));
        }
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
    pub(super) fn location(&self, resp: &Response<Body>, base: &Url, site: &Site) -> Result<Url> {
        let loc = header(resp, "location").ok_or_else(|| Error::Protocol {
            site: site.clone(),
            reason: format!("HTTP {} without a Location header", resp.status().as_u16()),
        })?;
        base.join(&loc).map_err(|e| Error::Protocol {
            site: site.clone(),
            reason: format!("bad Location {loc:?}: {e}"),
        })
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

pub(super) fn check_registry_digest(
    resp: &Response<Body>,
    local: &Digest,
    site: &Site,
) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_full_fills_chunks_until_the_end() {
        let mut r = &b"abcdef"[..];
        let mut buf = [0u8; 4];
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"abcd");
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"ef");
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 0);
    }
}
