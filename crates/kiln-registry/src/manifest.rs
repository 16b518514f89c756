//! Just enough of the OCI / Docker manifest formats to move images: media types, descriptors,
//! and the blob lists of manifests and indexes. The full image model (config JSON, history,
//! writing manifests) lives in kiln-image; here manifests stay raw bytes that are parsed only to
//! find what to fetch next.

use std::collections::BTreeMap;
use std::fmt;

use kiln_digest::Digest;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::platform::Platform;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The manifest media types kiln reads and writes. Docker schema 1 manifests are not among
/// them: they are signed JSON without stable digests, and BuildKit no longer produces them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MediaType {
    OciManifest,
    OciIndex,
    DockerManifest,
    DockerManifestList,
}

impl MediaType {
    pub const ALL: [MediaType; 4] = [
        MediaType::OciManifest,
        MediaType::OciIndex,
        MediaType::DockerManifest,
        MediaType::DockerManifestList,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::OciManifest => OCI_MANIFEST,
            MediaType::OciIndex => OCI_INDEX,
            MediaType::DockerManifest => DOCKER_MANIFEST,
            MediaType::DockerManifestList => DOCKER_MANIFEST_LIST,
        }
    }

    /// Recognizes a media type, ignoring parameters (`; charset=utf-8`) and case, as HTTP
    /// Content-Type values may carry them.
    pub fn parse(s: &str) -> Option<MediaType> {
        let essence = s.split(';').next().unwrap_or("").trim();
        MediaType::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(essence))
    }

    /// True for indexes / manifest lists (which point at per-platform manifests).
    pub fn is_index(self) -> bool {
        matches!(self, MediaType::OciIndex | MediaType::DockerManifestList)
    }

    /// The HTTP `Accept` value asking for any of these types.
    pub fn accept_header() -> String {
        MediaType::ALL.map(MediaType::as_str).join(", ")
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A manifest or index as fetched: its raw bytes (whose digest is the image's identity), its
/// media type and that digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: MediaType,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

impl Manifest {
    /// Wraps bytes, computing their digest.
    pub fn new(media_type: MediaType, bytes: Vec<u8>) -> Manifest {
        Manifest {
            media_type,
            digest: Digest::of(&bytes),
            bytes,
        }
    }

    /// Parses an image manifest (errors for an index).
    pub fn image(&self) -> Result<ImageManifest, ManifestError> {
        if self.media_type.is_index() {
            return Err(ManifestError::Kind {
                expected: "an image manifest",
                found: self.media_type,
            });
        }
        ImageManifest::parse(&self.bytes)
    }

    /// Parses an index / manifest list (errors for an image manifest).
    pub fn index(&self) -> Result<ImageIndex, ManifestError> {
        if !self.media_type.is_index() {
            return Err(ManifestError::Kind {
                expected: "an index or manifest list",
                found: self.media_type,
            });
        }
        ImageIndex::parse(&self.bytes)
    }
}

/// An OCI content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    #[serde(serialize_with = "ser_digest", deserialize_with = "de_digest")]
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn de_digest<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

fn ser_digest<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.to_string())
}

/// The parts of an image manifest that name blobs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

impl ImageManifest {
    pub fn parse(bytes: &[u8]) -> Result<ImageManifest, ManifestError> {
        let m: ImageManifest = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        if m.schema_version != 2 {
            return Err(ManifestError::SchemaVersion(m.schema_version));
        }
        Ok(m)
    }

    /// Every blob the manifest needs: the config first, then the layers in order.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        std::iter::once(&self.config).chain(&self.layers)
    }
}

/// The parts of an index / manifest list that name manifests.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

impl ImageIndex {
    pub fn parse(bytes: &[u8]) -> Result<ImageIndex, ManifestError> {
        let m: ImageIndex = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        if m.schema_version != 2 {
            return Err(ManifestError::SchemaVersion(m.schema_version));
        }
        Ok(m)
    }
}

/// The media type a manifest body declares, for registries that answer with a generic
/// Content-Type: its `mediaType` field, else (that field is optional in OCI) OCI's by
/// structure: `manifests` makes an index, `config` an image manifest. `None` when the body is
/// not JSON or neither.
pub fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
    }
    let p = serde_json::from_slice::<Probe>(bytes).ok()?;
    match (p.media_type, p.manifests, p.config) {
        (Some(m), _, _) => Some(m),
        (None, Some(_), None) => Some(OCI_INDEX.to_string()),
        (None, None, Some(_)) => Some(OCI_MANIFEST.to_string()),
        _ => None,
    }
}

/// Why manifest bytes could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid manifest JSON: {0}")]
    Json(serde_json::Error),
    #[error("unsupported manifest schemaVersion {0} (only 2 is supported)")]
    SchemaVersion(u32),
    #[error("expected {expected}, found {found}")]
    Kind {
        expected: &'static str,
        found: MediaType,
    },
    #[error("no manifest for platform {wanted} (the index has: {})", available.join(", "))]
    NoPlatform {
        wanted: String,
        available: Vec<String>,
    },
    #[error("index {index} nests another index ({nested}), which kiln does not follow")]
    NestedIndex { index: Digest, nested: Digest },
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUSYBOX_MANIFEST: &[u8] = include_bytes!(
        "../../../testdata/base/busybox/blobs/sha256/3f0408471efe0ab36280f5435d6851b5d1ad275341c84ab21349f03cd4f4e9c6"
    );

    #[test]
    fn media_types_parse_with_parameters_and_case() {
        assert_eq!(MediaType::parse(OCI_INDEX), Some(MediaType::OciIndex));
        assert_eq!(
            MediaType::parse("Application/VND.docker.distribution.manifest.v2+json; charset=utf-8"),
            Some(MediaType::DockerManifest)
        );
        assert_eq!(MediaType::parse("application/json"), None);
        assert_eq!(
            MediaType::parse("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            None
        );
        assert!(MediaType::DockerManifestList.is_index());
        assert!(!MediaType::OciManifest.is_index());
        assert_eq!(MediaType::accept_header().matches(", ").count(), 3);
    }

    #[test]
    fn busybox_manifest_lists_config_then_layer() {
        let m = Manifest::new(MediaType::OciManifest, BUSYBOX_MANIFEST.to_vec());
        assert_eq!(
            m.digest.to_string(),
            "sha256:3f0408471efe0ab36280f5435d6851b5d1ad275341c84ab21349f03cd4f4e9c6"
        );
        let image = m.image().unwrap();
        let blobs: Vec<String> = image
            .blobs()
            .map(|d| format!("{} {} {}", d.media_type, d.digest, d.size))
            .collect();
        assert_eq!(
            blobs,
            [
                "application/vnd.oci.image.config.v1+json sha256:c4a8d26b93b117b8867fa41b7961402798568299b71cdb535c52cc513dc52e93 528",
                "application/vnd.oci.image.layer.v1.tar+gzip sha256:bd12cd9dfdc46f65a573432ffaf203725a958eac3cd08f3c73a31974a58ed607 1084724",
            ]
        );
        // This manifest has no mediaType field: only its structure tells what it is.
        assert_eq!(
            sniff_media_type(BUSYBOX_MANIFEST).as_deref(),
            Some(OCI_MANIFEST)
        );
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(
            sniff_media_type(
                format!(r#"{{"mediaType":"{DOCKER_MANIFEST}","config":{{}}}}"#).as_bytes()
            )
            .as_deref(),
            Some(DOCKER_MANIFEST)
        );
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":1,"fsLayers":[]}"#),
            None
        );
        assert!(matches!(m.index(), Err(ManifestError::Kind { .. })));
    }

    #[test]
    fn bad_manifests_are_errors_not_panics() {
        let err = ImageManifest::parse(b"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:00\",\"size\":1}}")
            .unwrap_err();
        assert!(err.to_string().contains("sha256:00"), "{err}");
        let err = ImageManifest::parse(b"{\"schemaVersion\":1}").unwrap_err();
        assert!(err.to_string().contains("config"), "{err}");
        let err = ImageIndex::parse(b"{\"schemaVersion\":3,\"manifests\":[]}").unwrap_err();
        assert!(matches!(err, ManifestError::SchemaVersion(3)));
        assert!(ImageIndex::parse(b"[").is_err());
        assert_eq!(sniff_media_type(b"not json"), None);
    }
}
