//! `kiln pull`, `kiln push` and `kiln build FROM host/name@sha256:...` against a real registry
//! (Debian's docker-registry on a free loopback port): digests agree with the registry's and
//! skopeo's, outputs are byte-identical across runs, a second build is served from the cache
//! without a single blob download, and floating tags are refused unless allowed.

mod registry_common;

use std::path::Path;

use registry_common::registry::Registry;
use registry_common::*;

/// Pushes the fixtures' busybox layout to `addr/busybox:latest` with `kiln push` and checks the
/// digest kiln and skopeo report.
fn push_busybox(s: &Scratch, reference: &str, creds: Option<&str>) {
    let r = Run::ok(
        s.kiln()
            .args(["push", "--progress", "plain"])
            .arg(busybox_layout())
            .arg(reference),
    );
    assert_eq!(r.image_digest(), BUSYBOX_MANIFEST, "{}", r.stdout);
    if let Some(json) = skopeo_inspect(&format!("docker://{reference}"), creds) {
        assert_eq!(json["Digest"], BUSYBOX_MANIFEST);
    }
}

/// `kiln analyze --json` of an image.
fn analyze(s: &Scratch, image: &Path) -> serde_json::Value {
    let r = Run::ok(s.kiln().args(["analyze", "--json"]).arg(image));
    serde_json::from_str(&r.stdout).expect("analyze JSON")
}

fn build(s: &Scratch, ctx: &Path, out: &Path, cache: &Path, extra: &[&str]) -> Run {
    Run::of(
        s.kiln()
            .args(["build", "--progress", "plain", "--sde", "1677619260"])
            .arg("--cache-dir")
            .arg(cache)
            .arg("-o")
            .arg(out)
            .args(extra)
            .arg(ctx),
    )
}

#[test]
fn push_pull_build_push_round_trip_through_a_real_registry() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let s = Scratch::new();
    let busybox = format!("{}/busybox", reg.addr);
    push_busybox(&s, &format!("{busybox}:latest"), None);
    // A second push finds every blob there already and uploads nothing.
    let again = Run::ok(
        s.kiln()
            .args(["push", "--progress", "plain"])
            .arg(busybox_layout())
            .arg(format!("{busybox}:latest")),
    );
    assert!(
        again.stdout.contains("0 uploaded, 2 already there"),
        "{}",
        again.stdout
    );
    assert!(
        !again.stderr.contains("uploaded sha256:"),
        "{}",
        again.stderr
    );

    // Pull by digest, twice into fresh caches: byte-identical tarballs, the original blobs.
    let pinned = format!("{busybox}@{BUSYBOX_MANIFEST}");
    let mut tarballs = Vec::new();
    for (i, format) in [(1, "docker"), (2, "docker"), (3, "oci")] {
        let out = s.path(&format!("pulled-{i}.tar"));
        let r = Run::ok(
            s.kiln()
                .args(["pull", "--progress", "plain", "--format", format])
                .arg("--cache-dir")
                .arg(s.path(&format!("pull-cache-{i}")))
                .arg("-o")
                .arg(&out)
                .arg(&pinned),
        );
        assert_eq!(r.image_digest(), BUSYBOX_MANIFEST);
        for blob in [BUSYBOX_CONFIG, BUSYBOX_LAYER] {
            assert!(
                r.stderr.contains(&format!("downloaded {blob}")),
                "progress lines name every download: {}",
                r.stderr
            );
        }
        let a = analyze(&s, &out);
        assert_eq!(a["imageDigest"], BUSYBOX_MANIFEST, "{a}");
        tarballs.push(std::fs::read(&out).unwrap());
    }
    assert!(tarballs[0] == tarballs[1], "two pulls gave different bytes");
    assert!(tarballs[0] != tarballs[2], "docker and OCI tarballs differ");
    if let Some(json) = skopeo_inspect(
        &format!("oci-archive:{}", s.path("pulled-3.tar").display()),
        None,
    ) {
        assert_eq!(json["Digest"], BUSYBOX_MANIFEST);
    }

    // An OCI layout directory holds exactly the original blobs.
    let layout = s.path("pulled-layout");
    Run::ok(
        s.kiln()
            .args(["pull", "--progress", "quiet", "--format", "oci-dir"])
            .arg("--cache-dir")
            .arg(s.path("pull-cache-1"))
            .arg("-o")
            .arg(&layout)
            .arg(&pinned),
    );
    for blob in [BUSYBOX_MANIFEST, BUSYBOX_CONFIG, BUSYBOX_LAYER] {
        let hex = blob.strip_prefix("sha256:").unwrap();
        let got = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
        assert!(got == busybox_blob(blob), "blob {blob} differs");
    }
    // What kiln pulled pushes back under the same digest, from either form (monolithic and
    // chunked uploads into new repositories).
    for (i, (image, chunk)) in [(s.path("pulled-3.tar"), "1000000"), (layout, "0")]
        .into_iter()
        .enumerate()
    {
        let mut c = s.kiln();
        c.args(["push", "--progress", "quiet"]);
        if chunk != "0" {
            c.args(["--chunk-size", chunk]);
        }
        let to = format!("{}/copy{i}:v1", reg.addr);
        let r = Run::ok(c.arg(&image).arg(&to));
        assert_eq!(r.image_digest(), BUSYBOX_MANIFEST, "{}", image.display());
        assert!(
            r.stdout.contains("2 uploaded, 0 already there"),
            "{}",
            r.stdout
        );
    }

    // Build FROM the registry, through an empty cache.
    let cache = s.path("build-cache");
    let ctx = s.copy_context("ctx", &pinned);
    let first = s.path("first.tar");
    let before = reg.blob_gets().len();
    let b1 = build(&s, &ctx, &first, &cache, &[]);
    assert_eq!(b1.code, 0, "{}", b1.stderr);
    assert_eq!(
        reg.blob_gets().len() - before,
        2,
        "config and layer downloaded once: {:?}",
        reg.blob_gets()
    );
    let cached = assert_cache_clean(&cache);
    for blob in [BUSYBOX_MANIFEST, BUSYBOX_CONFIG, BUSYBOX_LAYER] {
        assert!(cached.contains(&blob.to_string()), "{blob} not cached");
    }
    let built = analyze(&s, &first);
    let layers = built["manifest"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(
        layers[0]["digest"], BUSYBOX_LAYER,
        "the base layer is carried unchanged"
    );
    assert_eq!(
        built["manifest"]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    // The second build is served from the cache: no blob GETs at all, same bytes.
    let requests_before = reg.requests().len();
    let second = s.path("second.tar");
    let b2 = build(&s, &ctx, &second, &cache, &[]);
    assert_eq!(b2.code, 0, "{}", b2.stderr);
    let new_requests = reg.requests()[requests_before..].to_vec();
    assert!(
        new_requests.iter().all(|r| !r.contains("/blobs/")),
        "the cached build fetched blobs: {new_requests:?}"
    );
    assert!(!b2.stderr.contains("downloaded"), "{}", b2.stderr);
    assert_eq!(sha256_file(&first), sha256_file(&second));
    // Offline works from the same cache too.
    let third = s.path("third.tar");
    let b3 = build(&s, &ctx, &third, &cache, &["--offline"]);
    assert_eq!(b3.code, 0, "{}", b3.stderr);
    assert_eq!(sha256_file(&first), sha256_file(&third));

    // Push the result (docker media types, chunked): the registry's digest is ours.
    let result = format!("{}/result:v1", reg.addr);
    let p = Run::ok(
        s.kiln()
            .args(["push", "--progress", "quiet", "--chunk-size", "65536"])
            .arg("--digest-file")
            .arg(s.path("digest.txt"))
            .arg(&first)
            .arg(&result),
    );
    assert_eq!(p.image_digest(), b1.image_digest());
    assert_eq!(
        std::fs::read_to_string(s.path("digest.txt")).unwrap(),
        format!("{}\n", b1.image_digest())
    );
    assert!(
        p.stdout.contains("3 uploaded, 0 already there"),
        "{}",
        p.stdout
    );
    assert!(reg
        .requests()
        .iter()
        .any(|r| r.starts_with("PATCH /v2/result/blobs/uploads/")));
    if let Some(json) = skopeo_inspect(&format!("docker://{result}"), None) {
        assert_eq!(json["Digest"], b1.image_digest().as_str());
    }
    // And by digest (a reference naming another digest is refused before any upload).
    let by_digest = format!("{}/result@{}", reg.addr, b1.image_digest());
    let p2 = Run::ok(
        s.kiln()
            .args(["push", "--progress", "quiet"])
            .arg(&first)
            .arg(&by_digest),
    );
    assert_eq!(p2.image_digest(), b1.image_digest());
    assert!(
        p2.stdout.contains("0 uploaded, 3 already there"),
        "{}",
        p2.stdout
    );
    Run::refused(
        s.kiln()
            .args(["push", "--progress", "quiet"])
            .arg(&first)
            .arg(format!("{}/result@{BUSYBOX_MANIFEST}", reg.addr)),
        &[BUSYBOX_MANIFEST],
    );

    // The pushed image pulls back to the same bytes kiln built.
    let back = s.path("back.tar");
    Run::ok(
        s.kiln()
            .args(["pull", "--progress", "quiet"])
            .arg("--cache-dir")
            .arg(s.path("back-cache"))
            .arg("-o")
            .arg(&back)
            .arg(format!("{}/result@{}", reg.addr, b1.image_digest())),
    );
    let pulled = analyze(&s, &back);
    assert_eq!(pulled["imageDigest"], built["imageDigest"]);
    assert_eq!(pulled["configDigest"], built["configDigest"]);
}

#[test]
fn floating_tags_are_refused_with_the_pinned_line_unless_allowed() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let s = Scratch::new();
    let tagged = format!("{}/debian:bookworm", reg.addr);
    push_busybox(&s, &tagged, None);
    let pinned_line = format!("FROM {tagged}@{BUSYBOX_MANIFEST}");
    let ctx = s.copy_context("ctx", &tagged);
    let cache = s.path("cache");

    // (skopeo inspect has fetched the config: count from here.)
    let gets = reg.blob_gets().len();
    let refused = build(&s, &ctx, &s.path("refused.tar"), &cache, &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&pinned_line),
        "the error shows the line to write: {}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--allow-floating-tags"));
    assert!(!s.path("refused.tar").exists());
    assert_eq!(
        reg.blob_gets().len(),
        gets,
        "nothing downloaded for a refused tag"
    );
    assert!(assert_cache_clean(&cache).is_empty());

    let allowed = build(
        &s,
        &ctx,
        &s.path("allowed.tar"),
        &cache,
        &["--allow-floating-tags"],
    );
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    assert!(
        allowed
            .stderr
            .contains(&format!("{tagged}@{BUSYBOX_MANIFEST}")),
        "the digest used is printed: {}",
        allowed.stderr
    );
    // The same as building from the pinned line.
    let pinned_ctx = s.copy_context("pinned-ctx", &format!("{tagged}@{BUSYBOX_MANIFEST}"));
    let pinned = build(&s, &pinned_ctx, &s.path("pinned.tar"), &cache, &[]);
    assert_eq!(pinned.code, 0, "{}", pinned.stderr);
    assert_eq!(
        sha256_file(&s.path("allowed.tar")),
        sha256_file(&s.path("pinned.tar"))
    );

    // `kiln pull` follows the same rule.
    let pull = |extra: &[&str], out: &str| {
        Run::of(
            s.kiln()
                .args(["pull", "--progress", "quiet"])
                .args(extra)
                .arg("--cache-dir")
                .arg(&cache)
                .arg("-o")
                .arg(s.path(out))
                .arg(&tagged),
        )
    };
    let refused = pull(&[], "p-refused.tar");
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains(&format!("{tagged}@{BUSYBOX_MANIFEST}")),
        "{}",
        refused.stderr
    );
    assert!(!s.path("p-refused.tar").exists());
    let allowed = pull(&["--allow-floating-tags"], "p-allowed.tar");
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    assert_eq!(allowed.image_digest(), BUSYBOX_MANIFEST);
    // Offline, a tag cannot be resolved at all.
    let offline = pull(&["--offline", "--allow-floating-tags"], "p-offline.tar");
    assert_eq!(offline.code, 2, "{}", offline.stderr);
    assert!(
        offline.stderr.contains("pin it by digest"),
        "{}",
        offline.stderr
    );
}

#[test]
fn progress_is_plain_lines_off_a_terminal_and_nothing_when_quiet() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let s = Scratch::new();
    let reference = format!("{}/busybox:latest", reg.addr);
    let pinned = format!("{}/busybox@{BUSYBOX_MANIFEST}", reg.addr);
    let push = Run::ok(s.kiln().arg("push").arg(busybox_layout()).arg(&reference));
    // `auto` off a terminal: one plain line per blob moved, no bars or control characters.
    assert_eq!(
        push.stderr,
        format!(
            "uploaded {BUSYBOX_CONFIG} (528 bytes)\nuploaded {BUSYBOX_LAYER} (1084724 bytes)\n"
        )
    );
    let pull = Run::ok(
        s.kiln()
            .arg("pull")
            .arg("--cache-dir")
            .arg(s.path("c1"))
            .arg("-o")
            .arg(s.path("a.tar"))
            .arg(&pinned),
    );
    assert_eq!(
        pull.stderr,
        format!(
            "downloaded {BUSYBOX_CONFIG} (528 bytes)\ndownloaded {BUSYBOX_LAYER} (1084724 bytes)\n"
        )
    );
    let quiet = Run::ok(
        s.kiln()
            .args(["pull", "--progress", "quiet"])
            .arg("--cache-dir")
            .arg(s.path("c2"))
            .arg("-o")
            .arg(s.path("b.tar"))
            .arg(&pinned),
    );
    assert_eq!(quiet.stderr, "");

    // On a terminal (util-linux `script` gives kiln a pty), `auto` draws bars.
    let Some(script) = tool("script", "bsdutils") else {
        return;
    };
    let cmdline = format!(
        "DOCKER_CONFIG={} {} pull --cache-dir {} -o {} {pinned}",
        s.path("docker-config").display(),
        env!("CARGO_BIN_EXE_kiln"),
        s.path("c3").display(),
        s.path("c.tar").display()
    );
    let out = std::process::Command::new(script)
        .args(["-q", "-e", "-c", &cmdline, "/dev/null"])
        .output()
        .expect("run script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("downloaded {BUSYBOX_LAYER} (1084724 bytes)")),
        "{text:?}"
    );
    assert!(
        text.contains('\u{1b}'),
        "bars are drawn with terminal control sequences: {text:?}"
    );
    assert_eq!(sha256_file(&s.path("a.tar")), sha256_file(&s.path("c.tar")));
}

#[path = "common/multi.rs"]
mod multi;

#[test]
fn a_multi_platform_layout_is_pushed_whole_with_all_platforms() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let s = Scratch::new();
    let (multi, index_digest, entries) = multi::layout(s.dir.path(), false);
    let reference = format!("{}/multi:v1", reg.addr);

    // Without a choice: refused, and the message says how to push it all.
    Run::refused(
        s.kiln()
            .args(["push", "--progress", "quiet"])
            .arg(&multi)
            .arg(&reference),
        &["--all-platforms"],
    );

    let pushed = Run::ok(
        s.kiln()
            .args(["push", "--progress", "quiet", "--all-platforms"])
            .arg(&multi)
            .arg(&reference),
    );
    assert_eq!(pushed.image_digest(), index_digest);
    // The registry serves the index under the tag, and each platform's image by digest.
    if let Some(raw) = skopeo_raw(&format!("docker://{reference}")) {
        assert_eq!(format!("sha256:{}", sha256_hex(&raw)), index_digest);
    }
    for (platform, entry) in multi::PLATFORMS.iter().zip(&entries) {
        let pulled = Run::ok(
            s.kiln()
                .args(["pull", "--progress", "quiet", "--platform", platform])
                .arg("-o")
                .arg(s.path(&format!("pulled-{}.tar", platform.replace('/', "-"))))
                .arg(format!("{}/multi@{index_digest}", reg.addr)),
        );
        assert_eq!(pulled.image_digest(), entry["digest"].as_str().unwrap());
    }

    // The whole image back: the same index (the registry's digest) over the same images, so
    // normalizing it gives what normalizing the original layout gives.
    let pulled = s.path("pulled-all");
    let all = Run::ok(
        s.kiln()
            .args([
                "pull",
                "--progress",
                "quiet",
                "--all-platforms",
                "--format",
                "oci-dir",
            ])
            .arg("--cache-dir")
            .arg(s.path("all-cache"))
            .arg("-o")
            .arg(&pulled)
            .arg(format!("{}/multi@{index_digest}", reg.addr)),
    );
    assert_eq!(all.image_digest(), index_digest);
    let served = std::fs::read(pulled.join("blobs/sha256").join(&index_digest[7..])).unwrap();
    assert_eq!(format!("sha256:{}", sha256_hex(&served)), index_digest);
    let normalized = |input: &Path, out: &str| {
        Run::ok(
            s.kiln()
                .args(["normalize", "--progress", "quiet", "--all-platforms"])
                .args(["--format", "oci", "--sde", "1700000000", "-o"])
                .arg(s.path(out))
                .arg(input),
        )
        .image_digest()
    };
    assert_eq!(normalized(&pulled, "n1.tar"), normalized(&multi, "n2.tar"));
    assert_eq!(
        sha256_file(&s.path("n1.tar")),
        sha256_file(&s.path("n2.tar"))
    );
}
