//! Helpers for the registry end-to-end tests: a real registry, a hostile one, the fixtures'
//! busybox base, and `kiln` runs isolated from the machine's Docker credentials and caches.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

#[allow(unused_imports)]
pub use kiln_testkit::{
    busybox_blob, busybox_layout, hostile, registry, tool, BUSYBOX_CONFIG, BUSYBOX_LAYER,
    BUSYBOX_MANIFEST,
};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The registry the fixtures' Dockerfiles name; tests substitute their own.
pub const FIXTURE_REGISTRY: &str = "127.0.0.1:5000";

/// A scratch directory for one test, and `kiln` commands that see none of the machine's
/// Docker credentials, cache or SOURCE_DATE_EPOCH.
pub struct Scratch {
    pub dir: TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `kiln` with `$DOCKER_CONFIG` pointing at `docker-config/` in the scratch directory.
    pub fn kiln(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
        c.env("DOCKER_CONFIG", self.path("docker-config"))
            .env_remove("KILN_CACHE_DIR")
            .env_remove("SOURCE_DATE_EPOCH")
            .env("XDG_CACHE_HOME", self.path("xdg-cache"));
        c
    }

    /// Writes `$DOCKER_CONFIG/config.json` with credentials for `registry`.
    pub fn login(&self, registry: &str, user: &str, pass: &str) -> PathBuf {
        let dir = self.path("docker-config");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"{registry}":{{"username":"{user}","password":"{pass}"}}}}}}"#),
        )
        .unwrap();
        path
    }

    /// A build context with one file and a Dockerfile `FROM base` + `COPY` (no RUN, so no
    /// root needed).
    pub fn copy_context(&self, name: &str, base: &str) -> PathBuf {
        let ctx = self.path(name);
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("hello.txt"), "hello from kiln\n").unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM {base}\nCOPY hello.txt /hello.txt\n"),
        )
        .unwrap();
        ctx
    }
}

/// A finished command: exit code and text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(cmd: &mut Command) -> Run {
        let out: Output = cmd.output().expect("run kiln");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn ok(cmd: &mut Command) -> Run {
        let r = Run::of(cmd);
        assert_eq!(
            r.code, 0,
            "command failed: {cmd:?}\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r
    }

    /// Runs a command that must be refused as bad input: exit code 2, and each of `wants`
    /// in its error output.
    pub fn refused(cmd: &mut Command, wants: &[&str]) -> Run {
        let r = Run::of(cmd);
        assert_eq!(r.code, 2, "{cmd:?}\nstderr:\n{}", r.stderr);
        for w in wants {
            assert!(
                r.stderr.contains(w),
                "{w:?} not in the error:\n{}",
                r.stderr
            );
        }
        r
    }

    /// The digest on the `image digest:` line kiln prints.
    pub fn image_digest(&self) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix("image digest:"))
            .map(|d| d.trim().to_string())
            .unwrap_or_else(|| panic!("no image digest in {:?}", self.stdout))
    }
}

/// `skopeo inspect` of a plain-http image (with `user:pass` credentials): its parsed JSON (`Digest`, `Layers`, ...).
/// `None` when skopeo cannot be had.
pub fn skopeo_inspect(reference: &str, creds: Option<&str>) -> Option<serde_json::Value> {
    let skopeo = tool("skopeo", "skopeo")?;
    let mut c = Command::new(skopeo);
    c.args(["inspect", "--tls-verify=false"]);
    if let Some(creds) = creds {
        c.args(["--creds", creds]);
    }
    let out = c.arg(reference).output().expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("skopeo JSON"))
}

/// `skopeo inspect --raw` of a plain-http image: the manifest bytes as served. `None` when
/// skopeo cannot be had.
pub fn skopeo_raw(reference: &str) -> Option<Vec<u8>> {
    let skopeo = tool("skopeo", "skopeo")?;
    let out = Command::new(skopeo)
        .args(["inspect", "--raw", "--tls-verify=false", reference])
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect --raw {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

/// The sha256 of a file, as lowercase hex.
pub fn sha256_file(p: &Path) -> String {
    sha256_hex(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Checks a kiln cache: nothing but complete blobs (each hashing to its name) and their
/// manifest media-type notes. Returns the digests of the blobs present.
pub fn assert_cache_clean(cache: &Path) -> Vec<String> {
    let mut blobs = Vec::new();
    for f in files_under(cache) {
        if let Some(hex) = f.strip_prefix("blobs/sha256/") {
            let got = sha256_file(&cache.join(&f));
            assert_eq!(got, hex, "cache blob {f} does not hash to its name");
            blobs.push(format!("sha256:{hex}"));
        } else if let Some(hex) = f.strip_prefix("manifests/sha256/") {
            assert!(
                cache.join("blobs/sha256").join(hex).is_file(),
                "media type note {f} without its manifest"
            );
        } else {
            panic!("stray file in the cache: {f}");
        }
    }
    blobs
}
