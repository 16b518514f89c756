//! Basic auth against a real registry behind htpasswd, with credentials read from a temporary
//! `$DOCKER_CONFIG/config.json`. One test in this binary: it sets DOCKER_CONFIG for the
//! process.

mod common;

use std::fs::File;
use std::time::Duration;

use base64::Engine as _;
use common::registry::Registry;
use common::*;
use kiln_registry::{
    Client, ClientOptions, Digest, Error, ErrorClass, Manifest, MediaType, PushOutcome, Repository,
    Target, UploadMode,
};

fn write_config(dir: &std::path::Path, registry: &str, user: &str, pass: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
}

fn options(dir: Option<std::path::PathBuf>) -> ClientOptions {
    ClientOptions {
        backoff: Duration::from_millis(10),
        docker_config_dir: dir,
        ..ClientOptions::default()
    }
}

#[test]
fn basic_auth_with_docker_config_credentials() {
    let Some(reg) = Registry::start(Some(("kiln", "s3cret"))) else {
        return;
    };
    let repo = Repository::parse(&format!("{}/busybox", reg.addr)).unwrap();
    let layer: Digest = BUSYBOX_LAYER.parse().unwrap();

    // Without credentials: an authentication failure (environment, exit 3) that says where
    // credentials were looked for.
    let nowhere = reg.dir.path().join("empty-docker-config");
    let anonymous = Client::new(options(Some(nowhere.clone())));
    let e = anonymous.blob_exists(&repo, &layer).unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Environment);
    let msg = e.to_string();
    assert!(
        msg.contains(&reg.addr) && msg.contains(&nowhere.join("config.json").display().to_string()),
        "{msg}"
    );

    // A wrong password is refused.
    let wrong_dir = reg.dir.path().join("wrong");
    write_config(&wrong_dir, &reg.addr, "kiln", "nope");
    let wrong = Client::new(options(Some(wrong_dir)));
    let e = wrong.blob_exists(&repo, &layer).unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e}");
    assert!(e.to_string().contains("HTTP 401"), "{e}");

    // Right credentials through $DOCKER_CONFIG (the default lookup).
    let config_dir = reg.dir.path().join("docker-config");
    write_config(
        &config_dir,
        &format!("http://{}/v2/", reg.addr),
        "kiln",
        "s3cret",
    );
    std::env::set_var("DOCKER_CONFIG", &config_dir);
    let c = Client::new(options(None));
    let blobs = busybox_layout().join("blobs/sha256");
    for (d, mode) in [
        (BUSYBOX_CONFIG, UploadMode::Chunked(100)),
        (BUSYBOX_LAYER, UploadMode::Monolithic),
    ] {
        let d: Digest = d.parse().unwrap();
        let mut f = File::open(blobs.join(d.hex())).unwrap();
        let size = f.metadata().unwrap().len();
        assert_eq!(
            c.push_blob(&repo, &d, size, &mut f, mode).unwrap(),
            PushOutcome::Uploaded
        );
    }
    let manifest = Manifest::new(MediaType::OciManifest, busybox_blob(BUSYBOX_MANIFEST));
    let pushed = c
        .put_manifest(&repo, &Target::Tag("latest"), &manifest)
        .unwrap();
    assert_eq!(pushed.to_string(), BUSYBOX_MANIFEST);

    let got = c.get_manifest(&repo, &Target::Digest(pushed)).unwrap();
    assert_eq!(got.bytes, manifest.bytes);
    for d in [BUSYBOX_CONFIG, BUSYBOX_LAYER] {
        let mut out = Vec::new();
        c.get_blob(&repo, &d.parse().unwrap(), None, &mut out)
            .unwrap();
        assert!(out == busybox_blob(d), "blob {d} differs");
    }
    assert_eq!(c.resolve_tag(&repo, "latest").unwrap().digest, pushed);

    // skopeo, with the same config file, sees the same image.
    if let Some(skopeo) = tool("skopeo", "skopeo") {
        let out = std::process::Command::new(skopeo)
            .args(["inspect", "--tls-verify=false", "--authfile"])
            .arg(config_dir.join("config.json"))
            .arg(format!("docker://{}/busybox@{BUSYBOX_MANIFEST}", reg.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["Digest"], BUSYBOX_MANIFEST);
    }
}
