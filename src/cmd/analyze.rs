//! `kiln analyze`: what an image is (index, manifest, config, digests), and whether it is
//! the image you expected.

use std::path::PathBuf;

use clap::Args;
use kiln_digest::Digest;
use kiln_image::import::{self, ImageSource};

use crate::fail::{CliResult, Failure};

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Image: a docker/OCI tarball or an OCI layout directory
    pub image: PathBuf,

    /// Exit 1 unless the image (manifest) digest is this one
    #[arg(long = "expected-image-digest", value_name = "sha256:...")]
    pub expected_image_digest: Option<String>,

    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: AnalyzeArgs) -> CliResult {
    let expected: Option<Digest> = match &a.expected_image_digest {
        Some(s) => Some(
            s.parse()
                .map_err(|e| Failure::input(format!("--expected-image-digest: {e}")))?,
        ),
        None => None,
    };
    let spec = a.image.display().to_string();
    let src = ImageSource::open(&spec)?;
    let img = import::load(&src, None, None)?;
    let ok = expected.map(|e| e == img.manifest_digest);
    if a.json {
        let mut m = serde_json::Map::new();
        m.insert("image".into(), spec.clone().into());
        m.insert("imageDigest".into(), img.manifest_digest.to_string().into());
        m.insert("mediaType".into(), img.manifest_media_type.clone().into());
        if let Some((_, index)) = &img.index {
            m.insert(
                "index".into(),
                serde_json::to_value(index).unwrap_or_default(),
            );
        }
        m.insert(
            "manifest".into(),
            serde_json::to_value(&img.manifest).unwrap_or_default(),
        );
        m.insert(
            "configDigest".into(),
            img.manifest.config.digest.to_string().into(),
        );
        m.insert(
            "config".into(),
            serde_json::to_value(&img.config).unwrap_or_default(),
        );
        m.insert("platform".into(), img.platform().display().into());
        if let Some(e) = expected {
            m.insert("expectedImageDigest".into(), e.to_string().into());
            m.insert("matches".into(), ok.unwrap_or(false).into());
        }
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(m))
            .map_err(|e| Failure::env(e.to_string()))?;
        println!("{text}");
    } else {
        println!("image:         {spec}");
        println!("image digest:  {}", img.manifest_digest);
        println!("media type:    {}", img.manifest_media_type);
        println!("platform:      {}", img.platform().display());
        println!("config digest: {}", img.manifest.config.digest);
        if let Some((bytes, _)) = &img.index {
            println!("\nindex.json:\n{}", String::from_utf8_lossy(bytes));
        }
        println!(
            "\nmanifest:\n{}",
            String::from_utf8_lossy(&img.manifest_bytes)
        );
        println!("\nconfig:\n{}", String::from_utf8_lossy(&img.config_bytes));
        println!("\nlayers:");
        let diff_ids = img.config.diff_ids();
        for (i, l) in img.manifest.layers.iter().enumerate() {
            let diff = diff_ids.get(i).map(|d| d.to_string()).unwrap_or_default();
            println!(
                "  [{i}] {} {} bytes {}\n      diff_id {diff}",
                l.digest, l.size, l.media_type
            );
        }
        if let Some(e) = expected {
            if ok == Some(true) {
                println!("\n✓ image digest matches {e}");
            } else {
                println!(
                    "\n✗ image digest {} does not match the expected {e}",
                    img.manifest_digest
                );
            }
        }
    }
    Ok(if ok == Some(false) { 1 } else { 0 })
}
