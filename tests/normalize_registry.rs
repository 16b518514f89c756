//! Registry references as inputs (`docker://host/name@sha256:...`): pulled through the
//! verified cache, then normalized, analyzed and compared like local images. Uses Debian's
//! docker-registry on a free loopback port (skipped, with a message, without it or skopeo).

#[path = "normalize_images.rs"]
mod images;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use images::*;

#[path = "common/multi.rs"]
mod multi;

const BUSYBOX: &str = "sha256:3f0408471efe0ab36280f5435d6851b5d1ad275341c84ab21349f03cd4f4e9c6";

struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn answers(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(
        s,
        "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && &buf[9..12] == b"200")
}

fn start_registry() -> Option<Registry> {
    let have = |t: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("docker-registry") || !have("skopeo") {
        eprintln!(
            "SKIPPED: needs docker-registry and skopeo (apt-get install docker-registry skopeo)"
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if answers(&addr) {
                return Some(Registry {
                    child,
                    addr,
                    _dir: dir,
                });
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("docker-registry did not start");
}

fn busybox_layout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/base/busybox")
}

#[test]
fn registry_images_are_inputs_like_any_other() {
    let Some(reg) = start_registry() else { return };
    run_ok(
        Command::new("skopeo")
            .args([
                "copy",
                "-q",
                "--preserve-digests",
                "--dest-tls-verify=false",
            ])
            .arg(format!("oci:{}:latest", busybox_layout().display()))
            .arg(format!("docker://{}/busybox:latest", reg.addr)),
    );
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let reference = format!("docker://{}/busybox@{BUSYBOX}", reg.addr);
    let with_cache = |c: &mut Command| {
        c.arg("--cache-dir").arg(&cache);
    };

    let out = tmp.path().join("from-registry.tar");
    let mut c = kiln();
    c.args([
        "normalize",
        "--progress",
        "quiet",
        "--sde",
        "1700000000",
        "-o",
    ])
    .arg(&out);
    with_cache(&mut c);
    run_ok(c.arg(&reference));
    let local = normalize(
        &busybox_layout(),
        &tmp.path().join("local.tar"),
        &["--sde", "1700000000"],
    );
    assert_eq!(image_digest(&out), local);

    let mut c = kiln();
    c.args(["analyze", "--json", "--expected-image-digest", BUSYBOX]);
    with_cache(&mut c);
    let v: serde_json::Value = serde_json::from_slice(&run_ok(c.arg(&reference)).stdout).unwrap();
    assert_eq!(v["imageDigest"], BUSYBOX);
    assert_eq!(v["matches"], true);

    let mut c = kiln();
    c.args(["diff", "--semantic"]);
    with_cache(&mut c);
    let r = run(c.arg(&reference).arg(&out));
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );

    // Offline, from the cache alone.
    let mut c = kiln();
    c.args([
        "normalize",
        "--progress",
        "quiet",
        "--offline",
        "--sde",
        "1700000000",
        "-o",
    ])
    .arg(tmp.path().join("offline.tar"));
    with_cache(&mut c);
    drop(reg);
    run_ok(c.arg(&reference));
    assert_eq!(image_digest(&tmp.path().join("offline.tar")), local);
}

/// `--all-platforms` on a registry index: every platform's image is pulled through the cache
/// and normalized, giving the index digest that normalizing the same local layout gives;
/// offline, from the cache alone, too. A single image is refused with the way out.
#[test]
fn a_registry_index_is_normalized_platform_by_platform() {
    let Some(reg) = start_registry() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (multi, index_digest, _) = multi::layout(tmp.path(), true);
    let repo = format!("{}/multi", reg.addr);
    run_ok(
        Command::new("skopeo")
            .args(["copy", "-q", "--all", "--preserve-digests"])
            .arg("--dest-tls-verify=false")
            .arg(format!("oci:{}", multi.display()))
            .arg(format!("docker://{repo}:v1")),
    );
    let cache = tmp.path().join("cache");
    let norm = |input: &str, out: &str, extra: &[&str]| {
        let mut c = kiln();
        c.args(["normalize", "-q", "--sde", "1700000000", "--all-platforms"])
            .args(["--format", "oci-dir", "--cache-dir"])
            .arg(&cache)
            .args(extra)
            .arg("-o")
            .arg(tmp.path().join(out))
            .arg(input);
        run(&mut c)
    };
    let printed = |o: &std::process::Output| {
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("image digest:"))
            .map(|d| d.trim().to_string())
            .unwrap_or_else(|| panic!("no digest in {stdout}"))
    };
    let local = printed(&norm(multi.to_str().unwrap(), "local", &[]));
    let pinned = format!("docker://{repo}@{index_digest}");
    let remote = norm(&pinned, "remote", &[]);
    assert!(String::from_utf8_lossy(&remote.stdout).contains("attestations:       1 dropped"));
    assert_eq!(printed(&remote), local);
    assert_eq!(
        printed(&norm(&format!("docker://{repo}:v1"), "tagged", &[])),
        local
    );

    let single = format!("docker://{repo}@{}", {
        let index: serde_json::Value = serde_json::from_slice(
            &std::fs::read(multi.join("blobs/sha256").join(&index_digest[7..])).unwrap(),
        )
        .unwrap();
        index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    });
    let refused = norm(&single, "single", &[]);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("not a multi-platform index") && err.contains("without --all-platforms"),
        "{err}"
    );
    assert!(!tmp.path().join("single").exists());

    drop(reg);
    assert_eq!(printed(&norm(&pinned, "offline", &["--offline"])), local);
}
