//! Against a real registry (Debian's docker-registry, distribution 2.8): push the busybox base
//! image blob by blob, pull it back by digest and compare every byte, resolve tags, pull
//! through the cache online and offline, and check the result with skopeo.

mod common;

use std::fs::File;
use std::io::Cursor;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::registry::Registry;
use common::*;
use kiln_registry::{
    Cache, Client, ClientOptions, Digest, Direction, Error, ErrorClass, Manifest, MediaType,
    Platform, PushOutcome, Reference, Repository, Source, Target, UploadMode,
};

fn client(reg: &Registry, progress: Option<Arc<Recorder>>) -> Client {
    Client::new(ClientOptions {
        backoff: Duration::from_millis(10),
        // No credentials (the directory does not exist): this registry is anonymous.
        docker_config_dir: Some(reg.dir.path().join("no-docker-config")),
        progress: progress.map(|p| p as Arc<dyn kiln_registry::Progress>),
        ..ClientOptions::default()
    })
}

fn digest(s: &str) -> Digest {
    s.parse().unwrap()
}

/// Pushes the busybox image into `repo`: config monolithic, layer with `layer_mode`.
fn push_busybox(c: &Client, repo: &Repository, layer_mode: UploadMode) -> Digest {
    let layout = busybox_layout().join("blobs/sha256");
    for (d, mode) in [
        (BUSYBOX_CONFIG, UploadMode::Monolithic),
        (BUSYBOX_LAYER, layer_mode),
    ] {
        let d = digest(d);
        let mut f = File::open(layout.join(d.hex())).unwrap();
        let size = f.metadata().unwrap().len();
        assert_eq!(
            c.push_blob(repo, &d, size, &mut f, mode).unwrap(),
            PushOutcome::Uploaded
        );
    }
    let manifest = Manifest::new(MediaType::OciManifest, busybox_blob(BUSYBOX_MANIFEST));
    c.put_manifest(repo, &Target::Tag("latest"), &manifest)
        .unwrap()
}

fn skopeo_digest(reference: &str, extra: &[&str]) -> Option<String> {
    let skopeo = tool("skopeo", "skopeo")?;
    let out = Command::new(skopeo)
        .args(["inspect", "--tls-verify=false"])
        .args(extra)
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect {reference} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("skopeo JSON");
    Some(json["Digest"].as_str().expect("Digest field").to_string())
}

#[test]
fn push_then_pull_busybox_byte_for_byte() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let progress = Recorder::new();
    let c = client(&reg, Some(progress.clone()));
    let repo = Repository::parse(&format!("{}/busybox", reg.addr)).unwrap();

    // Layer in 256 KiB chunks: five PATCH requests for its 1,084,724 bytes.
    let pushed = push_busybox(&c, &repo, UploadMode::Chunked(256 * 1024));
    assert_eq!(pushed.to_string(), BUSYBOX_MANIFEST);
    let layer = digest(BUSYBOX_LAYER);
    assert_eq!(
        progress.last_done(Direction::Push, &layer),
        Some((1084724, Some(1084724)))
    );

    // The same manifest again, by digest this time.
    let manifest = Manifest::new(MediaType::OciManifest, busybox_blob(BUSYBOX_MANIFEST));
    let by_digest = c
        .put_manifest(&repo, &Target::Digest(manifest.digest), &manifest)
        .unwrap();
    assert_eq!(by_digest, manifest.digest);

    // Everything is there now; a second push sends nothing.
    assert_eq!(c.blob_exists(&repo, &layer).unwrap(), Some(1084724));
    let mut f = File::open(busybox_layout().join("blobs/sha256").join(layer.hex())).unwrap();
    assert_eq!(
        c.push_blob(&repo, &layer, 1084724, &mut f, UploadMode::Monolithic)
            .unwrap(),
        PushOutcome::Exists
    );

    // Tag resolution (HEAD) and the manifest by digest, verified.
    let resolved = c.resolve_tag(&repo, "latest").unwrap();
    assert_eq!(resolved.digest.to_string(), BUSYBOX_MANIFEST);
    assert_eq!(resolved.media_type, MediaType::OciManifest);
    assert_eq!(resolved.size, 349);
    let reference = Reference::parse(&format!("{}/busybox", reg.addr)).unwrap();
    assert_eq!(c.resolve(&reference).unwrap().to_string(), BUSYBOX_MANIFEST);
    let got = c
        .get_manifest(&repo, &Target::Digest(digest(BUSYBOX_MANIFEST)))
        .unwrap();
    assert_eq!(got, manifest);
    let by_tag = c.get_manifest(&repo, &Target::Tag("latest")).unwrap();
    assert_eq!(by_tag.digest, manifest.digest);

    // Every blob, byte for byte.
    for d in [BUSYBOX_CONFIG, BUSYBOX_LAYER] {
        let expected = busybox_blob(d);
        let mut out = Vec::new();
        let n = c
            .get_blob(&repo, &digest(d), Some(expected.len() as u64), &mut out)
            .unwrap();
        assert_eq!(n, expected.len() as u64);
        assert!(out == expected, "blob {d} differs");
    }
    assert_eq!(
        progress.last_done(Direction::Pull, &layer),
        Some((1084724, Some(1084724)))
    );
    assert!(progress
        .finished
        .lock()
        .unwrap()
        .iter()
        .all(|(_, _, ok)| *ok));

    // What skopeo sees is what we pushed.
    if let Some(d) = skopeo_digest(&format!("{}/busybox@{BUSYBOX_MANIFEST}", reg.addr), &[]) {
        assert_eq!(d, BUSYBOX_MANIFEST);
    }
    if let Some(d) = skopeo_digest(&format!("{}/busybox:latest", reg.addr), &[]) {
        assert_eq!(d, BUSYBOX_MANIFEST);
    }

    // Missing things are bad input (exit 2), and say what and where.
    let e = c.get_manifest(&repo, &Target::Tag("nope")).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::BadInput);
    assert_eq!(
        e.to_string(),
        format!("manifest nope in {}/busybox: not found", reg.addr)
    );
    let absent = Digest::of(b"absent");
    let e = c
        .get_blob(&repo, &absent, None, &mut Vec::new())
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().contains(&absent.to_string()));
    assert_eq!(c.blob_exists(&repo, &absent).unwrap(), None);
}

#[test]
fn monolithic_upload_mount_and_content_checks() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let c = client(&reg, None);
    let mono = Repository::parse(&format!("{}/mono/busybox", reg.addr)).unwrap();
    assert_eq!(
        push_busybox(&c, &mono, UploadMode::Monolithic).to_string(),
        BUSYBOX_MANIFEST
    );
    let mut out = Vec::new();
    c.get_blob(&mono, &digest(BUSYBOX_LAYER), Some(1084724), &mut out)
        .unwrap();
    assert!(out == busybox_blob(BUSYBOX_LAYER));

    // Cross-repository mount: the layer appears in another repository without an upload.
    let other = Repository::parse(&format!("{}/other", reg.addr)).unwrap();
    let layer = digest(BUSYBOX_LAYER);
    assert_eq!(c.blob_exists(&other, &layer).unwrap(), None);
    assert!(c.mount_blob(&other, &layer, &mono).unwrap());
    assert_eq!(c.blob_exists(&other, &layer).unwrap(), Some(1084724));
    // Nothing to mount from: the registry declines and we are told so.
    let absent = Digest::of(b"not there");
    assert!(!c.mount_blob(&other, &absent, &mono).unwrap());

    // Content that does not match its digest is refused before the registry stores it, in
    // both upload modes, and the registry does not end up with it.
    let claimed = Digest::of(b"claimed content");
    for mode in [UploadMode::Monolithic, UploadMode::Chunked(4)] {
        let mut wrong = Cursor::new(b"other content!!".to_vec());
        let e = c
            .push_blob(&other, &claimed, 15, &mut wrong, mode)
            .unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{mode:?}: {e}");
        assert_eq!(e.class(), ErrorClass::BadInput);
        assert_eq!(c.blob_exists(&other, &claimed).unwrap(), None);
    }
    let e = c
        .push_blob(
            &other,
            &claimed,
            99,
            &mut Cursor::new(b"short".to_vec()),
            UploadMode::Monolithic,
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::SizeMismatch {
                expected: 99,
                actual: 5,
                ..
            }
        ),
        "{e}"
    );

    // An empty blob goes up (and comes down) in both modes.
    for (repo_name, mode) in [
        ("empty-mono", UploadMode::Monolithic),
        ("empty-chunked", UploadMode::Chunked(8)),
    ] {
        let repo = Repository::parse(&format!("{}/{repo_name}", reg.addr)).unwrap();
        let empty = Digest::of(b"");
        assert_eq!(
            c.push_blob(&repo, &empty, 0, &mut Cursor::new(Vec::new()), mode)
                .unwrap(),
            PushOutcome::Uploaded
        );
        let mut out = Vec::new();
        assert_eq!(c.get_blob(&repo, &empty, Some(0), &mut out).unwrap(), 0);
    }

    // A manifest pushed under a digest that is not its own is refused locally.
    let manifest = Manifest::new(MediaType::OciManifest, busybox_blob(BUSYBOX_MANIFEST));
    let e = c
        .put_manifest(&other, &Target::Digest(claimed), &manifest)
        .unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
}

#[test]
fn pull_through_cache_online_then_offline() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let c = client(&reg, None);
    let repo = Repository::parse(&format!("{}/busybox", reg.addr)).unwrap();
    push_busybox(&c, &repo, UploadMode::Chunked(1 << 20));

    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(cache_dir.path().join("kiln")).unwrap();
    // As a user may spell it, with skopeo's transport prefix.
    let spelled = format!("docker://{}/busybox:latest", reg.addr);
    let reference = Reference::parse(kiln_registry::strip_transport(&spelled)).unwrap();
    let image = cache
        .pull(Source::Online(&c), &reference, &Platform::linux_amd64())
        .unwrap();
    assert_eq!(
        image.reference.to_string(),
        format!("{}/busybox@{BUSYBOX_MANIFEST}", reg.addr)
    );
    assert!(image.index.is_none());
    assert_eq!(image.manifest.digest.to_string(), BUSYBOX_MANIFEST);
    assert_eq!(
        std::fs::read(&image.config.path).unwrap(),
        busybox_blob(BUSYBOX_CONFIG)
    );
    assert_eq!(image.layers.len(), 1);
    assert!(std::fs::read(&image.layers[0].path).unwrap() == busybox_blob(BUSYBOX_LAYER));
    assert_eq!(
        image.layers[0].path,
        cache_dir
            .path()
            .join("kiln/blobs/sha256")
            .join(&BUSYBOX_LAYER[7..])
    );

    // Stop the registry: the pinned image is still there offline, and online fetches come
    // from the cache without touching the network.
    let pinned = image.reference.clone();
    drop(reg);
    let offline = cache
        .pull(Source::Offline, &pinned, &Platform::linux_amd64())
        .unwrap();
    assert_eq!(offline.layers, image.layers);
    let again = cache
        .fetch_blob(
            &c,
            pinned.repository(),
            &digest(BUSYBOX_LAYER),
            Some(1084724),
        )
        .unwrap();
    assert_eq!(again, image.layers[0].path);

    // Lose the layer: offline names exactly that digest; online, the registry is gone.
    std::fs::remove_file(&image.layers[0].path).unwrap();
    let e = cache
        .pull(Source::Offline, &pinned, &Platform::linux_amd64())
        .unwrap_err();
    match &e {
        Error::Offline { missing, .. } => assert_eq!(missing, &vec![digest(BUSYBOX_LAYER)]),
        other => panic!("expected Offline, got {other}"),
    }
    assert!(e.to_string().contains(BUSYBOX_LAYER), "{e}");
    assert_eq!(e.class(), ErrorClass::Environment);
    let e = cache
        .pull(Source::Online(&c), &pinned, &Platform::linux_amd64())
        .unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e}");
    assert_eq!(e.class().exit_code(), 3);
}

#[test]
fn multi_platform_index_picks_the_platform_manifest() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let c = client(&reg, None);
    let repo = Repository::parse(&format!("{}/busybox", reg.addr)).unwrap();
    let amd64 = Manifest::new(MediaType::OciManifest, busybox_blob(BUSYBOX_MANIFEST));
    push_busybox(&c, &repo, UploadMode::Monolithic);
    // A second manifest for arm64 (same blobs, told apart by an annotation).
    let arm64 = Manifest::new(
        MediaType::OciManifest,
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{BUSYBOX_CONFIG}","size":528}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{BUSYBOX_LAYER}","size":1084724}}],"annotations":{{"kiln.test":"arm64"}}}}"#,
            MediaType::OciManifest
        )
        .into_bytes(),
    );
    let index = Manifest::new(
        MediaType::OciIndex,
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{m}","digest":"{}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}},{{"mediaType":"{m}","digest":"{}","size":{},"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#,
            MediaType::OciIndex,
            amd64.digest,
            amd64.bytes.len(),
            arm64.digest,
            arm64.bytes.len(),
            m = MediaType::OciManifest
        )
        .into_bytes(),
    );
    c.put_manifest(&repo, &Target::Digest(arm64.digest), &arm64)
        .unwrap();
    c.put_manifest(&repo, &Target::Tag("multi"), &index)
        .unwrap();
    let resolved = c.resolve_tag(&repo, "multi").unwrap();
    assert_eq!(resolved.digest, index.digest);
    assert_eq!(resolved.media_type, MediaType::OciIndex);

    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(cache_dir.path()).unwrap();
    let reference = Reference::parse(&format!("{}/busybox:multi", reg.addr)).unwrap();
    let amd = cache
        .pull(Source::Online(&c), &reference, &Platform::linux_amd64())
        .unwrap();
    assert_eq!(amd.index.as_ref().map(|i| i.digest), Some(index.digest));
    assert_eq!(amd.manifest, amd64);
    assert_eq!(amd.reference.digest(), Some(index.digest));
    let arm = cache
        .pull(
            Source::Online(&c),
            &reference,
            &Platform::parse("linux/aarch64").unwrap(),
        )
        .unwrap();
    assert_eq!(arm.manifest, arm64);
    assert_eq!(arm.layers, amd.layers, "same layer, cached once");
    let e = cache
        .pull(
            Source::Online(&c),
            &reference,
            &Platform::parse("linux/s390x").unwrap(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Manifest { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::BadInput);
    assert!(
        e.to_string().contains(
            "no manifest for platform linux/s390x (the index has: linux/amd64, linux/arm64/v8)"
        ),
        "{e}"
    );

    // Offline, from the cache alone.
    let offline = cache
        .pull(
            Source::Offline,
            &amd.reference,
            &Platform::parse("linux/arm64/v8").unwrap(),
        )
        .unwrap();
    assert_eq!(offline.manifest, arm64);

    // skopeo reads back the very index bytes.
    if let Some(skopeo) = tool("skopeo", "skopeo") {
        let out = Command::new(skopeo)
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/busybox:multi", reg.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, index.bytes);
    }
}
