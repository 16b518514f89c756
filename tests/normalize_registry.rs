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
