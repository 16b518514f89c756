//! `kiln analyze`: what an image is (index, every manifest, config, platform, layers,
//! digests), and whether it is the image you expected.

use std::collections::BTreeMap;

use clap::Args;
use kiln_digest::Digest;
use kiln_image::import::ImageSource;
use kiln_image::spec::{media, Descriptor, Index};
use kiln_normalize::OpenedImage;
use serde_json::{json, Value};

use crate::cmd::args::RegistryArgs;
use crate::cmd::diff::print;
use crate::fail::{CliResult, Failure};

#[derive(Args, Debug)]
#[command(after_long_help = ANALYZE_HELP)]
pub struct AnalyzeArgs {
    /// Image: a docker/OCI tarball, an OCI layout directory, or docker://HOST/NAME@sha256:...
    pub image: String,

    /// Exit 1 unless the image digest is this one (`sha256:` may be left out)
    #[arg(long = "expected-image-digest", value_name = "sha256:...")]
    pub expected_image_digest: Option<String>,

    /// Show index, manifests and config in full (they are cut at 600 characters otherwise)
    #[arg(long = "show-contents")]
    pub show_contents: bool,

    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,

    /// Read every layer: its blob must have the manifest's digest and size and decompress to
    /// a tar with the config's diff_id (a corrupt blob is exit 2, naming it)
    #[arg(long = "verify-layers")]
    pub verify_layers: bool,

    /// The image to take from a multi-platform input, os/arch[/variant] (default: this
    /// machine's)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

const ANALYZE_HELP: &str = "\
The image digest is the digest of what index.json points to (for a single-platform image,
its manifest; for a multi-platform one, its index): the digest a registry shows for the
image and BuildKit prints. --expected-image-digest also accepts the digest of the selected
platform's manifest.

Examples:
  kiln analyze image.tar
  kiln analyze --expected-image-digest sha256:9959a9bb... image.tar   (exit 1 on mismatch)";

/// Characters of a document shown without --show-contents.
const SNIP: usize = 600;

/// One JSON document of the image, as shown.
struct Doc {
    title: String,
    path: String,
    digest: Digest,
    media_type: String,
    platform: Option<String>,
    bytes: Vec<u8>,
    /// For a manifest listed again: the number of the manifest shown first (its contents,
    /// and what a nested index lists, are not repeated).
    same_as: Option<usize>,
}

fn is_index(mt: &str) -> bool {
    mt == media::OCI_INDEX || mt == media::DOCKER_LIST
}

fn platform_of(d: &Descriptor) -> Option<String> {
    d.platform.as_ref().map(|p| p.display())
}

/// Every manifest and index reachable from `index`, depth first, as repro-build lists them.
/// `seen` maps each digest shown to its manifest number: a digest listed again is shown as
/// a reference (an index may list one manifest thousands of times, and nested indexes that
/// do so would otherwise multiply).
fn walk(
    source: &ImageSource,
    index: &Index,
    depth: usize,
    seen: &mut BTreeMap<Digest, usize>,
    out: &mut Vec<Doc>,
) {
    for d in &index.manifests {
        // Numbered from 1 in the order shown, nested ones included (`out` holds the index
        // document, then one per manifest).
        let number = out.len();
        let path = format!("blobs/sha256/{}", d.digest.hex());
        let title = if is_index(&d.media_type) {
            format!("Manifest {number} (index)")
        } else {
            format!("Manifest {number}")
        };
        let first = seen.get(&d.digest).copied();
        // Multi-platform layouts may carry only some platforms' blobs.
        let bytes = match first {
            Some(_) => Vec::new(),
            None => source.read_blob_verified(&d.digest).unwrap_or_default(),
        };
        seen.entry(d.digest).or_insert(number);
        let nested = first.is_none() && is_index(&d.media_type) && depth < 4;
        let child = nested
            .then(|| serde_json::from_slice::<Index>(&bytes).ok())
            .flatten();
        out.push(Doc {
            title,
            path,
            digest: d.digest,
            media_type: d.media_type.clone(),
            platform: platform_of(d),
            bytes,
            same_as: first,
        });
        if let Some(child) = child {
            walk(source, &child, depth + 1, seen, out);
        }
    }
}

fn documents(o: &OpenedImage) -> Vec<Doc> {
    let img = &o.image;
    let mut docs = Vec::new();
    match (&o.registry_index, &img.index) {
        (Some((d, mt, bytes)), _) => docs.push(Doc {
            title: "Index (registry)".into(),
            path: o.name.clone(),
            digest: *d,
            media_type: mt.clone(),
            platform: None,
            bytes: bytes.clone(),
            same_as: None,
        }),
        (None, Some((bytes, index)))
            if o.registry_index.is_none() && !o.name.starts_with("docker://") =>
        {
            docs.push(Doc {
                title: "Index".into(),
                path: "index.json".into(),
                digest: Digest::of(bytes),
                media_type: if index.media_type.is_empty() {
                    media::OCI_INDEX.into()
                } else {
                    index.media_type.clone()
                },
                platform: None,
                bytes: bytes.clone(),
                same_as: None,
            });
            walk(&o.source, index, 0, &mut BTreeMap::new(), &mut docs);
        }
        _ => {}
    }
    if !docs.iter().any(|d| d.digest == img.manifest_digest) {
        docs.push(Doc {
            title: if img.index.is_none() {
                "Manifest (made from manifest.json)".into()
            } else {
                "Manifest".into()
            },
            path: format!("blobs/sha256/{}", img.manifest_digest.hex()),
            digest: img.manifest_digest,
            media_type: img.manifest_media_type.clone(),
            platform: Some(img.platform().display()),
            bytes: img.manifest_bytes.clone(),
            same_as: None,
        });
    }
    docs.push(Doc {
        title: "Config".into(),
        path: format!("blobs/sha256/{}", img.manifest.config.digest.hex()),
        digest: img.manifest.config.digest,
        media_type: img.manifest.config.media_type.clone(),
        platform: Some(img.platform().display()),
        bytes: img.config_bytes.clone(),
        same_as: None,
    });
    docs
}

/// The digest a registry would show: what the index points to (one image), else the
/// selected manifest.
pub fn image_digest(o: &OpenedImage) -> Digest {
    if let Some((d, _, _)) = &o.registry_index {
        return *d;
    }
    match &o.image.index {
        Some((_, index)) if !o.name.starts_with("docker://") => {
            let mut uniq: Vec<Digest> = index.manifests.iter().map(|m| m.digest).collect();
            uniq.dedup();
            match uniq.as_slice() {
                [one] => *one,
                _ => o.image.manifest_digest,
            }
        }
        _ => o.image.manifest_digest,
    }
}

fn snip(text: &str, full: bool) -> String {
    let text: String = text.chars().filter(|&c| c != '\n').collect();
    if full || text.chars().count() <= SNIP {
        return text;
    }
    let cut: String = text.chars().take(SNIP).collect();
    format!(
        "{cut}  [... {} characters omitted. Pass --show-contents to print them in their entirety]",
        text.chars().count() - SNIP
    )
}

pub fn parse_expected(s: &str) -> Result<Digest, Failure> {
    let full = if s.contains(':') {
        s.to_string()
    } else {
        format!("sha256:{s}")
    };
    full.parse()
        .map_err(|e| Failure::input(format!("--expected-image-digest: {e}")))
}

/// Streams every layer through kiln-normalize's verifying reader.
fn verify_layers(o: &OpenedImage) -> Result<(), Failure> {
    let img = &o.image;
    let layers = kiln_normalize::source::ImageLayers::new(&o.source);
    let diff_ids = img.config.diff_ids();
    if diff_ids.len() != img.manifest.layers.len() {
        return Err(Failure::input(format!(
            "{}: the config lists {} diff_ids for {} layers",
            o.name,
            diff_ids.len(),
            img.manifest.layers.len()
        )));
    }
    for (i, (l, d)) in img.manifest.layers.iter().zip(diff_ids).enumerate() {
        let expected = kiln_normalize::source::Expected::of(l, Some(*d));
        let raw = layers.open(l)?;
        kiln_normalize::source::read_layer(raw, &expected, |_| Ok(())).map_err(|e| {
            Failure::input(format!("{}: layer {} ({}): {e}", o.name, i + 1, l.digest))
        })?;
        eprintln!(
            "✓ layer {} {}: digest, size and diff_id verified",
            i + 1,
            l.digest
        );
    }
    Ok(())
}

pub fn run(a: AnalyzeArgs) -> CliResult {
    let expected = a
        .expected_image_digest
        .as_deref()
        .map(parse_expected)
        .transpose()?;
    let input = a.registry.input_options(a.platform.as_deref())?;
    let o = kiln_normalize::open_image(&a.image, &input)?;
    let img = &o.image;
    let digest = image_digest(&o);
    let ok = expected.map(|e| e == digest || e == img.manifest_digest);
    let docs = documents(&o);
    let diff_ids = img.config.diff_ids();
    if a.verify_layers {
        verify_layers(&o)?;
    }
    if a.json {
        let mut m = serde_json::Map::new();
        m.insert("image".into(), a.image.clone().into());
        m.insert("imageDigest".into(), digest.to_string().into());
        m.insert(
            "manifestDigest".into(),
            img.manifest_digest.to_string().into(),
        );
        m.insert("mediaType".into(), img.manifest_media_type.clone().into());
        m.insert("platform".into(), img.platform().display().into());
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
        let documents: Vec<Value> = docs
            .iter()
            .map(|d| {
                json!({
                    "title": d.title,
                    "path": d.path,
                    "digest": d.digest.to_string(),
                    "mediaType": d.media_type,
                    "platform": d.platform,
                    "contents": serde_json::from_slice::<Value>(&d.bytes).unwrap_or(Value::Null),
                    "sameAs": d.same_as,
                })
            })
            .collect();
        m.insert("documents".into(), documents.into());
        let layers: Vec<Value> = img
            .manifest
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                json!({
                    "digest": l.digest.to_string(),
                    "size": l.size,
                    "mediaType": l.media_type,
                    "diffId": diff_ids.get(i).map(|d| d.to_string()),
                })
            })
            .collect();
        m.insert("layers".into(), layers.into());
        if let Some(e) = expected {
            m.insert("expectedImageDigest".into(), e.to_string().into());
            m.insert("matches".into(), ok.unwrap_or(false).into());
        }
        let text = serde_json::to_string_pretty(&Value::Object(m))
            .map_err(|e| Failure::env(e.to_string()))?;
        print(&format!("{text}\n"));
    } else {
        let mut out = String::new();
        let manifests = docs
            .iter()
            .filter(|d| d.title.starts_with("Manifest"))
            .count();
        out.push_str(&format!("Image: {}\n", a.image));
        out.push_str(&format!("Image digest: {digest}\n"));
        if digest != img.manifest_digest {
            out.push_str(&format!(
                "Manifest digest ({}): {}\n",
                img.platform().display(),
                img.manifest_digest
            ));
        }
        out.push_str(&format!(
            "The image has {} and {manifests} manifest(s).\n",
            if docs.iter().any(|d| d.title.starts_with("Index")) {
                "an index"
            } else {
                "no index"
            }
        ));
        for d in &docs {
            out.push_str(&format!("\n{} ({}):\n", d.title, d.path));
            out.push_str(&format!("  Digest: {}\n", d.digest));
            out.push_str(&format!("  Media type: {}\n", d.media_type));
            out.push_str(&format!(
                "  Platform: {}\n",
                d.platform.as_deref().unwrap_or("-")
            ));
            let contents = if let Some(k) = d.same_as {
                format!("the same as manifest {k}")
            } else if d.bytes.is_empty() {
                "(not in this image)".to_string()
            } else {
                snip(&String::from_utf8_lossy(&d.bytes), a.show_contents)
            };
            out.push_str(&format!("  Contents: {contents}\n"));
        }
        out.push_str(&format!("\nLayers ({}):\n", img.manifest.layers.len()));
        for (i, l) in img.manifest.layers.iter().enumerate() {
            let diff = diff_ids.get(i).map(|d| d.to_string()).unwrap_or_default();
            out.push_str(&format!(
                "  [{}] {} {} bytes {}\n      diff_id {diff}\n",
                i + 1,
                l.digest,
                l.size,
                l.media_type
            ));
        }
        if let Some(e) = expected {
            if ok == Some(true) {
                out.push_str(&format!("\n✓ Image digest matches {e}\n"));
            } else {
                out.push_str(&format!(
                    "\n✗ Image digest {digest} does not match the expected {e}\n"
                ));
            }
        }
        print(&out);
    }
    Ok(if ok == Some(false) { 1 } else { 0 })
}
