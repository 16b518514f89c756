//! Debian's `docker-registry` (distribution 2.8) on a free loopback port, storage in a
//! temporary directory, optionally behind htpasswd basic auth, with its access log kept so
//! tests can count requests. Killed on drop.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    pub dir: TempDir,
}

impl Registry {
    /// Starts a registry; `auth` = (user, password) puts it behind basic auth. `None` when
    /// the binary cannot be had (the reason is printed).
    pub fn start(auth: Option<(&str, &str)>) -> Option<Registry> {
        let bin = crate::tool("docker-registry", "docker-registry")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let auth_section = match auth {
            None => String::new(),
            Some((user, pass)) => {
                let htpasswd = crate::tool("htpasswd", "apache2-utils")?;
                let out = Command::new(htpasswd)
                    .args(["-Bbn", user, pass])
                    .output()
                    .expect("run htpasswd");
                assert!(out.status.success(), "htpasswd failed: {out:?}");
                let path = dir.path().join("htpasswd");
                fs::write(&path, &out.stdout).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                    path.display()
                )
            }
        };
        // A port picked by binding :0 can be taken before the registry binds it: try again.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let addr = format!("127.0.0.1:{port}");
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {addr}\n  secret: kiln-test-secret\n{auth_section}",
                dir.path().join("data").display()
            );
            let config_path = dir.path().join("config.yml");
            fs::write(&config_path, config).expect("write config");
            let log = fs::File::create(dir.path().join("registry.log")).expect("log file");
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .spawn()
                .expect("spawn docker-registry");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if let Some(status) = probe(&addr) {
                    if status == 200 || status == 401 {
                        return Some(Registry { child, addr, dir });
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start; log:\n{}",
            fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Requests from the access log (`"GET /v2/... HTTP/1.1" 200`), in order.
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| {
                let start = l.find("\"")? + 1;
                let rest = &l[start..];
                let end = rest.find("\" ")?;
                let status = rest[end + 2..].split(' ').next().unwrap_or("");
                Some(format!("{} {status}", &rest[..end]))
            })
            .filter(|r| r.contains(" /v2/"))
            .collect()
    }

    /// Blob downloads (`GET .../blobs/sha256:...`) served so far.
    pub fn blob_gets(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.starts_with("GET ") && r.contains("/blobs/sha256:"))
            .collect()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// The status of `GET /v2/`, if the server answers.
fn probe(addr: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = std::str::from_utf8(&buf[..n]).ok()?;
    line.split(' ').nth(1)?.parse().ok()
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
