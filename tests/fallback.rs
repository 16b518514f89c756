//! The BuildKit fallback end to end: the plan (`--dry`), `--fallback auto|never|always`, and
//! each driver's exact commands.
//!
//! BuildKit cannot run on these machines (no daemon, no network to pull moby/buildkit), so
//! the drivers are stand-ins: testdata/fallback/standin.py, copied onto a temporary PATH as
//! `buildctl`, `docker` and `podman`, records every argument vector and writes one of
//! BuildKit's real fixture tarballs (testdata/fixtures/scratch-meta) where `--output` says.
//! What is checked is what kiln controls: the commands, the pinned image, SOURCE_DATE_EPOCH,
//! and that the result lands at `-o` with `--metadata-file` written from it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const PINNED: &str =
    "moby/buildkit:v0.19.0@sha256:14aa1b4dd92ea0a4cd03a54d0c6079046ea98cd0c0ae6176bdd7036ba370cbbe";
const SDE: &str = "1677619260";

/// A temporary PATH holding stand-ins, and their log.
struct Standins {
    dir: tempfile::TempDir,
}

impl Standins {
    fn new(programs: &[&str]) -> Standins {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        for p in programs {
            let dest = dir.path().join("bin").join(p);
            std::fs::copy(repo().join("testdata/fallback/standin.py"), &dest).unwrap();
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(dir.path().join("log"), "").unwrap();
        Standins { dir }
    }

    /// `kiln` with only the stand-ins on PATH.
    fn kiln(&self) -> Command {
        let mut c = kiln();
        c.env("PATH", self.dir.path().join("bin"))
            .env("STANDIN_LOG", self.dir.path().join("log"))
            .env("STANDIN_FIXTURES", fixture_dir("scratch-meta"))
            .env_remove("BUILDKIT_HOST")
            .env_remove("SOURCE_DATE_EPOCH")
            .env("KILN_CACHE_DIR", self.dir.path().join("cache"));
        c
    }

    /// Every recorded argument vector, in order.
    fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// An output directory beside the stand-ins.
    fn out(&self) -> PathBuf {
        let o = self.dir.path().join("out");
        std::fs::create_dir_all(&o).unwrap();
        o
    }
}

fn ctx() -> PathBuf {
    repo().join("testdata/fallback/cache-mount")
}

fn s(x: &Path) -> String {
    x.display().to_string()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn expected_digest(variant: &str) -> String {
    expected("scratch-meta")["outputs"][variant]["manifest_digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn builder() -> String {
    format!("kiln-{}", sha256_hex(PINNED.as_bytes()))
}

fn argv(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn docker_buildx_commands_and_the_landed_result() {
    let st = Standins::new(&["docker"]);
    let out = st.out().join("image.tar");
    let meta = st.out().join("meta.json");
    let r = st
        .kiln()
        .args(["build", "--sde", SDE, "--build-arg", "B=two words"])
        .args([
            "--platform",
            "linux/amd64",
            "-t",
            "fixture",
            "--metadata-file",
        ])
        .arg(&meta)
        .arg("-o")
        .arg(&out)
        .arg(ctx())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(0), "{stdout}\n{stderr}");
    let name = builder();
    let staged = s(&st.out().join(".image.tar.kiln-buildkit/image.tar"));
    assert_eq!(
        st.calls(),
        [
            argv(&["docker", "buildx", "version"]),
            argv(&["docker", "buildx", "inspect", &name]),
            argv(&[
                "docker",
                "buildx",
                "create",
                "--name",
                &name,
                "--driver",
                "docker-container",
                "--driver-opt",
                &format!("image={PINNED}"),
            ]),
            argv(&[
                "docker",
                "buildx",
                "--builder",
                &name,
                "build",
                "--progress",
                "plain",
                "--build-arg",
                "SOURCE_DATE_EPOCH=1677619260",
                "--build-arg",
                "B=two words",
                "--platform",
                "linux/amd64",
                "--provenance",
                "false",
                "--output",
                &format!(
                    "type=docker,dest={staged},rewrite-timestamp=true,name=docker.io/library/fixture:latest"
                ),
                "-f",
                &s(&ctx().join("Dockerfile")),
                &s(&ctx()),
            ]),
        ]
    );
    // The result is BuildKit's tarball, moved into place; the staging directory is gone.
    assert_eq!(
        sha256_file(&out),
        expected("scratch-meta")["outputs"]["docker"]["tarball_sha256"]
            .as_str()
            .unwrap()
    );
    assert!(!st.out().join(".image.tar.kiln-buildkit").exists());
    let digest = expected_digest("docker");
    assert!(
        stdout.contains(&format!("image digest:       {digest}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "built by:           BuildKit ({PINNED}) through docker buildx"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("source date epoch:  1677619260"),
        "{stdout}"
    );
    // auto says why it handed the build over.
    assert!(
        stderr.contains("Dockerfile:2: RUN --mount=type=cache"),
        "{stderr}"
    );
    assert!(stderr.contains("[run-mount-cache]"), "{stderr}");
    // --metadata-file as a native build writes it, from the produced tarball.
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["containerimage.digest"], digest.as_str());
    assert_eq!(
        m["containerimage.config.digest"],
        expected("scratch-meta")["outputs"]["docker"]["config_digest"]
    );
    assert_eq!(
        m["containerimage.descriptor"]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(m["image.name"], "docker.io/library/fixture:latest");
    // kiln analyze agrees.
    let a = run_ok(kiln().args(["analyze", "--json"]).arg(&out));
    let a: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(a["imageDigest"], digest.as_str());
}

#[test]
fn docker_buildx_reuses_its_builder() {
    let st = Standins::new(&["docker"]);
    let r = st
        .kiln()
        .env("STANDIN_BUILDER_EXISTS", "1")
        .args([
            "build",
            "--progress",
            "quiet",
            "--driver",
            "docker",
            "--sde",
            SDE,
            "-o",
        ])
        .arg(st.out().join("i.tar"))
        .arg(ctx())
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{:?}", text(&r));
    let calls = st.calls();
    // --driver skips detection's probe; the builder exists, so nothing is created.
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0], argv(&["docker", "buildx", "inspect", &builder()]));
    assert_eq!(
        calls[1][..5],
        argv(&["docker", "buildx", "--builder", &builder(), "build"])
    );
}

#[test]
fn buildctl_is_chosen_with_buildkit_host_and_checks_the_daemon_version() {
    let st = Standins::new(&["buildctl", "docker", "podman"]);
    let out = st.out().join("u.tar");
    let r = st
        .kiln()
        .env("BUILDKIT_HOST", "tcp://buildkitd.example:1234")
        .args(["build", "--sde", SDE, "--compression", "uncompressed"])
        .args(["--annotation", "org.opencontainers.image.title=x,y"])
        .arg("-o")
        .arg(&out)
        .arg(ctx())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(0), "{stdout}\n{stderr}");
    let staged = s(&st.out().join(".u.tar.kiln-buildkit/u.tar"));
    assert_eq!(
        st.calls(),
        [
            argv(&[
                "buildctl",
                "--addr",
                "tcp://buildkitd.example:1234",
                "debug",
                "info"
            ]),
            argv(&[
                "buildctl",
                "--addr",
                "tcp://buildkitd.example:1234",
                "build",
                "--progress=plain",
                "--frontend",
                "dockerfile.v0",
                "--local",
                &format!("context={}", s(&ctx())),
                "--local",
                &format!("dockerfile={}", s(&ctx())),
                "--opt",
                "build-arg:SOURCE_DATE_EPOCH=1677619260",
                "--output",
                &format!(
                    "type=docker,dest={staged},rewrite-timestamp=true,compression=uncompressed,\
                     \"annotation.org.opencontainers.image.title=x,y\""
                ),
            ]),
        ]
    );
    assert_eq!(
        sha256_file(&out),
        expected("scratch-meta")["outputs"]["docker-uncompressed"]["tarball_sha256"]
            .as_str()
            .unwrap()
    );
    assert!(
        stdout.contains(&expected_digest("docker-uncompressed")),
        "{stdout}"
    );
    assert!(
        stderr.contains("BUILDKIT_HOST is set and buildctl is on PATH"),
        "{stderr}"
    );
}

#[test]
fn buildctl_refuses_a_buildkitd_of_another_version() {
    let st = Standins::new(&["buildctl"]);
    let out = st.out().join("i.tar");
    let r = st
        .kiln()
        .env("BUILDKIT_HOST", "unix:///run/buildkit/buildkitd.sock")
        .env("STANDIN_VERSION", "v0.18.2")
        .args(["build", "--sde", SDE, "-o"])
        .arg(&out)
        .arg(ctx())
        .output()
        .unwrap();
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("is BuildKit v0.18.2, not v0.19.0"),
        "{stderr}"
    );
    assert_eq!(st.calls().len(), 1, "no build after the version check");
    assert!(!out.exists());
    assert!(!st.out().join(".i.tar.kiln-buildkit").exists());
}

#[test]
fn podman_runs_the_pinned_image_into_an_oci_layout() {
    let st = Standins::new(&["podman"]);
    let out = st.out().join("layout");
    let meta = st.out().join("m.json");
    let r = st
        .kiln()
        .args([
            "build",
            "--sde",
            SDE,
            "--format",
            "oci-dir",
            "--network",
            "none",
        ])
        .arg("--metadata-file")
        .arg(&meta)
        .arg("-f")
        .arg(ctx().join("Dockerfile"))
        .arg("-o")
        .arg(&out)
        .arg(ctx())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(0), "{stdout}\n{stderr}");
    let staging = s(&st.out().join(".layout.kiln-buildkit"));
    assert_eq!(
        st.calls(),
        [argv(&[
            "podman",
            "run",
            "--rm",
            "--privileged",
            "-v",
            &format!("{}:/tmp/work:ro", s(&ctx())),
            "-v",
            &format!("{}:/tmp/dockerfile:ro", s(&ctx())),
            "-v",
            &format!("{staging}:/tmp/image"),
            "--entrypoint",
            "buildctl-daemonless.sh",
            &format!("docker.io/{PINNED}"),
            "build",
            "--progress=plain",
            "--frontend",
            "dockerfile.v0",
            "--local",
            "context=/tmp/work",
            "--local",
            "dockerfile=/tmp/dockerfile",
            "--opt",
            "build-arg:SOURCE_DATE_EPOCH=1677619260",
            "--opt",
            "force-network-mode=none",
            "--output",
            "type=oci,dest=/tmp/image/layout,tar=false,rewrite-timestamp=true",
        ])]
    );
    assert!(out.join("index.json").is_file());
    assert!(!Path::new(&staging).exists());
    let digest = expected_digest("oci");
    assert!(stdout.contains(&digest), "{stdout}");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["containerimage.digest"], digest.as_str());
    // An OCI layout never overwrites an existing directory (the same check as a native build).
    let again = st
        .kiln()
        .args(["build", "--sde", SDE, "--format", "oci-dir", "-o"])
        .arg(&out)
        .arg(ctx())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2), "{:?}", text(&again));
    assert!(
        text(&again)
            .1
            .contains(&format!("{}: is a directory", s(&out))),
        "{:?}",
        text(&again)
    );
}

#[test]
fn a_failing_driver_exits_3_with_its_output() {
    let st = Standins::new(&["docker"]);
    let out = st.out().join("i.tar");
    let r = st
        .kiln()
        .env("STANDIN_FAIL", "build")
        .args(["build", "--progress", "quiet", "--sde", SDE, "-o"])
        .arg(&out)
        .arg(ctx())
        .output()
        .unwrap();
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "error: BuildKit driver command failed (exit status: 17): docker buildx --builder"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("docker stand-in: simulated failure"),
        "{stderr}"
    );
    assert!(!out.exists());
    assert!(!st.out().join(".i.tar.kiln-buildkit").exists());
}

#[test]
fn a_driver_that_writes_nothing_exits_3() {
    let st = Standins::new(&["podman"]);
    let out = st.out().join("i.tar");
    let r = st
        .kiln()
        .env("STANDIN_OUTPUT", "none")
        .args(["build", "--sde", SDE, "-o"])
        .arg(&out)
        .arg(ctx())
        .output()
        .unwrap();
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("BuildKit reported success but wrote no image"),
        "{stderr}"
    );
    assert!(!out.exists());
}

#[test]
fn a_result_in_the_wrong_format_is_refused() {
    // A driver answering a type=docker request with an OCI-format tarball.
    let st = Standins::new(&["docker"]);
    let fixtures = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture_dir("scratch-meta").join("oci.tar"),
        fixtures.path().join("docker.tar"),
    )
    .unwrap();
    let out = st.out().join("i.tar");
    let r = st
        .kiln()
        .env("STANDIN_FIXTURES", fixtures.path())
        .args(["build", "--sde", SDE, "-o"])
        .arg(&out)
        .arg(ctx())
        .output()
        .unwrap();
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("not the format kiln asked for"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn no_driver_exits_3() {
    let st = Standins::new(&[]);
    let r = st
        .kiln()
        .args(["build", "--sde", SDE, "-o"])
        .arg(st.out().join("i.tar"))
        .arg(ctx())
        .output()
        .unwrap();
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("no BuildKit driver found"), "{stderr}");
    // docker without buildx is not a driver either, and says so.
    let st = Standins::new(&["docker"]);
    let r = st
        .kiln()
        .env("STANDIN_NO_BUILDX", "1")
        .args(["build", "--sde", SDE, "-o"])
        .arg(st.out().join("i.tar"))
        .arg(ctx())
        .output()
        .unwrap();
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("`docker buildx version` fails"), "{stderr}");
}

#[test]
fn dry_prints_the_plan_and_the_commands_and_runs_no_build() {
    let st = Standins::new(&["buildctl", "docker"]);
    let out = st.out().join("image.tar");
    let r = st
        .kiln()
        .args(["build", "--dry", "--sde", SDE, "-o"])
        .arg(&out)
        .arg(ctx())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("Dockerfile:1  native    FROM 127.0.0.1:5000/busybox@sha256:"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(
            "Dockerfile:2  BuildKit  RUN --mount=type=cache,target=/root/.cache echo cached > /cached.txt  \
             <- a cache mount (--mount=type=cache,target=/root/.cache): "
        ),
        "{stdout}"
    );
    assert!(lines[1].ends_with("[run-mount-cache]"), "{stdout}");
    assert_eq!(lines[2], "Dockerfile:3  native    COPY a.txt /a.txt");
    assert_eq!(
        lines[3],
        format!("BuildKit builds this image (1 step needs it): {PINNED}")
    );
    assert_eq!(
        lines[4],
        "driver: docker buildx (docker with buildx is on PATH)"
    );
    let staged = s(&st.out().join(".image.tar.kiln-buildkit/image.tar"));
    assert!(
        stdout.contains(&format!(
            "  docker buildx --builder {} build --progress plain --build-arg SOURCE_DATE_EPOCH=1677619260 \
             --provenance false --output type=docker,dest={staged},rewrite-timestamp=true -f {} {}\n",
            builder(),
            s(&ctx().join("Dockerfile")),
            s(&ctx())
        )),
        "{stdout}"
    );
    // Only detection's probe ran.
    assert_eq!(st.calls(), [argv(&["docker", "buildx", "version"])]);
    assert!(!out.exists());

    // With BUILDKIT_HOST the buildctl commands are printed.
    let r = st
        .kiln()
        .env("BUILDKIT_HOST", "tcp://bk:1234")
        .args(["build", "--dry", "--sde", SDE, "-o"])
        .arg(&out)
        .arg(ctx())
        .output()
        .unwrap();
    let (stdout, _) = text(&r);
    assert_eq!(r.status.code(), Some(0));
    assert!(
        stdout.contains(
            "  buildctl --addr tcp://bk:1234 debug info    # must report BuildKit v0.19.0\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "  buildctl --addr tcp://bk:1234 build --progress=plain --frontend dockerfile.v0 --local context={} \
             --local dockerfile={} --opt build-arg:SOURCE_DATE_EPOCH=1677619260 --output \
             type=docker,dest={staged},rewrite-timestamp=true\n",
            s(&ctx()),
            s(&ctx())
        )),
        "{stdout}"
    );
    assert_eq!(st.calls().len(), 1, "--dry runs no build");
}

#[test]
fn fallback_never_exits_2_naming_the_step() {
    let st = Standins::new(&["docker", "podman"]);
    let r = st
        .kiln()
        .args(["build", "--fallback", "never", "--sde", SDE, "-o"])
        .arg(st.out().join("i.tar"))
        .arg(ctx())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with(
            "error: 1 step needs BuildKit, and --fallback never forbids it:\n  \
             Dockerfile:2: RUN --mount=type=cache,target=/root/.cache echo cached > /cached.txt: \
             a cache mount (--mount=type=cache,target=/root/.cache)"
        ),
        "{stderr}"
    );
    assert!(st.calls().is_empty());
}

#[test]
fn fallback_never_lists_every_step() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM 127.0.0.1:5000/busybox@sha256:3f0408471efe0ab36280f5435d6851b5d1ad275341c84ab21349f03cd4f4e9c6\n\
         RUN --mount=type=secret,id=token cat /run/secrets/token\n\
         ADD https://example.com/tool.tar.gz /opt/\n\
         RUN --mount=type=ssh git ls-remote git@example.com:x.git\n",
    )
    .unwrap();
    let r = kiln()
        .args(["build", "--fallback", "never", "-o"])
        .arg(dir.path().join("i.tar"))
        .arg(dir.path())
        .output()
        .unwrap();
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: 3 steps need BuildKit"),
        "{stderr}"
    );
    for (line, rule) in [
        ("Dockerfile:2:", "[run-mount-secret]"),
        ("Dockerfile:3:", "[add-url]"),
        ("Dockerfile:4:", "[run-mount-ssh]"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.trim_start().starts_with(line) && l.ends_with(rule)),
            "{line} {rule}: {stderr}"
        );
    }
}

#[test]
fn fallback_always_hands_a_native_dockerfile_to_buildkit() {
    let st = Standins::new(&["podman"]);
    let ctx = tempfile::tempdir().unwrap();
    let r = st
        .kiln()
        .args(["build", "--fallback", "always", "--sde", SDE, "-f"])
        .arg(fixture_dir("scratch-meta").join("Dockerfile"))
        .arg("-o")
        .arg(st.out().join("i.tar"))
        .arg(ctx.path())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("BuildKit builds this image (--fallback always)"),
        "{stderr}"
    );
    assert!(stdout.contains(&expected_digest("docker")), "{stdout}");
    let calls = st.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].contains(&format!(
        "{}:/tmp/dockerfile:ro",
        s(&fixture_dir("scratch-meta"))
    )));
}

#[test]
fn native_dockerfiles_never_reach_a_driver() {
    let st = Standins::new(&["buildctl", "docker", "podman"]);
    let r = st
        .kiln()
        .env("BUILDKIT_HOST", "tcp://bk:1")
        .args(["build", "--dry", "-f"])
        .arg(fixture_dir("scratch-meta").join("Dockerfile"))
        .arg(st.out())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.lines().all(|l| !l.contains("BuildKit  ")),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("kiln builds this image itself: every step is native\n"),
        "{stdout}"
    );
    assert!(st.calls().is_empty());
    if !is_root() {
        eprintln!("SKIPPED the native build: fixture contexts need root (chown to other uids)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("ctx");
    make_context("scratch-meta", &c);
    let out = tmp.path().join("o.tar");
    let r = st
        .kiln()
        .env("BUILDKIT_HOST", "tcp://bk:1")
        .args([
            "build",
            "--progress",
            "quiet",
            "--compression",
            "uncompressed",
            "--sde",
            SDE,
            "-f",
        ])
        .arg(fixture_dir("scratch-meta").join("Dockerfile"))
        .arg("-o")
        .arg(&out)
        .arg(&c)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{:?}", text(&r));
    assert!(st.calls().is_empty());
    assert!(!text(&r).0.contains("built by"));
    assert_eq!(
        sha256_file(&out),
        expected("scratch-meta")["outputs"]["docker-uncompressed"]["tarball_sha256"]
            .as_str()
            .unwrap()
    );
}

#[test]
fn floating_tags_are_refused_for_buildkit_too() {
    let st = Standins::new(&["docker"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM alpine:3.19\nRUN --mount=type=cache,target=/c true\n",
    )
    .unwrap();
    let r = st
        .kiln()
        .args(["build", "--sde", SDE, "-o"])
        .arg(st.out().join("i.tar"))
        .arg(dir.path())
        .output()
        .unwrap();
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("alpine:3.19: not pinned by digest"),
        "{stderr}"
    );
    assert!(st.calls().is_empty());
    let r = st
        .kiln()
        .args(["build", "--allow-floating-tags", "--sde", SDE, "-o"])
        .arg(st.out().join("i.tar"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{:?}", text(&r));
}

#[test]
fn a_conflicting_source_date_epoch_build_arg_is_refused() {
    let st = Standins::new(&["docker"]);
    let r = st
        .kiln()
        .args([
            "build",
            "--sde",
            "7",
            "--build-arg",
            "SOURCE_DATE_EPOCH=5",
            "-o",
        ])
        .arg(st.out().join("i.tar"))
        .arg(ctx())
        .output()
        .unwrap();
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("SOURCE_DATE_EPOCH=5 disagrees"), "{stderr}");
    assert_eq!(st.calls(), [argv(&["docker", "buildx", "version"])]);
}

#[test]
fn archives_cannot_be_named_contexts_for_buildkit() {
    let st = Standins::new(&["docker"]);
    let r = st
        .kiln()
        .args([
            "build",
            "--sde",
            SDE,
            "--build-context",
            "b=oci-archive:/x.tar",
            "-o",
        ])
        .arg(st.out().join("i.tar"))
        .arg(ctx())
        .output()
        .unwrap();
    let (_, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the BuildKit fallback takes oci-layout://"),
        "{stderr}"
    );
}

#[path = "normalize_images.rs"]
mod images;

/// A named-context OCI layout whose one layer GNU tar wrote in its own format, with a
/// sparse file when `sparse`: BuildKit (Go's archive/tar) reads sparse files, kiln does not.
fn gnu_base(dir: &Path, sparse: bool) -> PathBuf {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("etc/hostname"), "gnu\n").unwrap();
    if sparse {
        let f = std::fs::File::create(tree.join("etc/sparse")).unwrap();
        f.set_len(1 << 20).unwrap();
        use std::io::{Seek, SeekFrom, Write};
        let mut f = f;
        f.seek(SeekFrom::End(0)).unwrap();
        f.write_all(b"x").unwrap();
    }
    let layer = dir.join("layer.tar");
    run_ok(
        Command::new("tar")
            .args(["--format=gnu", "--sparse", "--owner=0", "--group=0", "-cf"])
            .arg(&layer)
            .arg("-C")
            .arg(&tree)
            .arg("etc"),
    );
    let bytes = std::fs::read(&layer).unwrap();
    let diff_id = kiln_digest::Digest::of(&bytes);
    let layout = dir.join(if sparse {
        "sparse-layout"
    } else {
        "gnu-layout"
    });
    images::oci_layout(
        &layout,
        &[bytes],
        &images::config(&[diff_id], "2020-01-01T00:00:00Z", &["PATH=/bin"]),
    );
    layout
}

/// `kiln build` of `FROM gnubase` + COPY with `gnubase` bound to `layout`, and `fallback`.
fn build_on(st: &Standins, layout: &Path, fallback: &str, out: &Path) -> (Output, String) {
    let ctx = st.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM gnubase\nCOPY Dockerfile /x\n").unwrap();
    let context = format!("gnubase=oci-layout://{}", layout.display());
    let r = st
        .kiln()
        .args([
            "build",
            "--sde",
            SDE,
            "--fallback",
            fallback,
            "--build-context",
        ])
        .arg(&context)
        .arg("-o")
        .arg(out)
        .arg(&ctx)
        .output()
        .unwrap();
    (r, context)
}

#[test]
fn a_gnu_format_named_context_is_rewritten_natively() {
    // BuildKit rewrites a named context's layers keeping GNU headers (see kiln-layer's
    // gnu_rewrite test for the bytes against Go); kiln does it without the fallback.
    let st = Standins::new(&["docker"]);
    let layout = gnu_base(st.dir.path(), false);
    let out = st.out().join("gnu.tar");
    let (r, _) = build_on(&st, &layout, "never", &out);
    let (stdout, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(st.calls().is_empty(), "{:?}", st.calls());
    // The base layer was rewritten and is still GNU tar, as BuildKit leaves it.
    let listing = run_ok(
        Command::new("tar")
            .arg("-xOf")
            .arg(&out)
            .arg("manifest.json"),
    );
    let records: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    let base = records[0]["Layers"][0].as_str().unwrap();
    let blob = run_ok(Command::new("tar").arg("-xOf").arg(&out).arg(base)).stdout;
    let mut layer = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut layer).unwrap();
    assert_eq!(&layer[257..265], b"ustar  \0");
}

#[test]
fn auto_hands_a_step_the_plan_did_not_foresee_to_buildkit() {
    let st = Standins::new(&["docker"]);
    let layout = gnu_base(st.dir.path(), true);

    // Natively only: the entry kiln cannot read is named, exit 2, nothing written.
    let out = st.out().join("never.tar");
    let (r, _) = build_on(&st, &layout, "never", &out);
    let (stdout, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("GNU sparse files are not supported"),
        "{stderr}"
    );
    assert!(!out.exists());
    assert!(st.calls().is_empty(), "{:?}", st.calls());

    // auto: the native engine gives up at that layer and BuildKit (the stand-in) builds it.
    let out = st.out().join("auto.tar");
    let (r, context) = build_on(&st, &layout, "auto", &out);
    let (stdout, stderr) = text(&r);
    assert_eq!(r.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("BuildKit builds this image (kiln met a step it cannot do natively)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("GNU sparse files are not supported"),
        "{stderr}"
    );
    let calls = st.calls();
    let build = calls.last().unwrap();
    assert_eq!(
        build[..4],
        argv(&["docker", "buildx", "--builder", &builder()])
    );
    assert!(
        build
            .windows(2)
            .any(|w| w[0] == "--build-context" && w[1] == context),
        "{build:?}"
    );
    assert_eq!(
        sha256_file(&out),
        expected("scratch-meta")["outputs"]["docker"]["tarball_sha256"]
            .as_str()
            .unwrap()
    );
}
