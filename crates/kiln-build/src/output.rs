//! From a build's config and layers to the manifest of an output format, as BuildKit's
//! image writer assembles it.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;

use kiln_digest::Digest;
use kiln_image::gojson;
use kiln_image::spec::{media, Descriptor, Manifest};
use kiln_image::{BlobSource, Image};
use kiln_layer::Compression;

use crate::engine::{BuildOutput, LayerOrigin};

/// Media types of the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestFormat {
    /// Docker schema 2 (BuildKit's `type=docker` exporter).
    Docker,
    /// OCI (BuildKit's `type=oci` exporter).
    Oci,
}

/// A layer media type in the family of `format` (BuildKit's `ConvertAllLayerMediaTypes`).
pub fn convert_media_type(mt: &str, format: ManifestFormat) -> String {
    let pairs = [
        (media::OCI_LAYER_GZIP, media::DOCKER_LAYER_GZIP),
        (media::OCI_LAYER, media::DOCKER_LAYER),
    ];
    for (oci, docker) in pairs {
        if mt == oci || mt == docker {
            return match format {
                ManifestFormat::Docker => docker.to_string(),
                ManifestFormat::Oci => oci.to_string(),
            };
        }
    }
    mt.to_string()
}

fn new_layer_media_type(c: Compression, format: ManifestFormat) -> &'static str {
    match (format, c) {
        (ManifestFormat::Docker, Compression::Gzip) => media::DOCKER_LAYER_GZIP,
        (ManifestFormat::Docker, Compression::Uncompressed) => media::DOCKER_LAYER,
        (ManifestFormat::Oci, Compression::Gzip) => media::OCI_LAYER_GZIP,
        (ManifestFormat::Oci, Compression::Uncompressed) => media::OCI_LAYER,
    }
}

impl BuildOutput {
    /// The config blob bytes (Go `json.Marshal` of the patched config).
    pub fn config_bytes(&self) -> Vec<u8> {
        gojson::to_vec(&self.config)
    }

    /// The image in `format`, with `annotations` on the manifest.
    pub fn image(&self, format: ManifestFormat, annotations: &BTreeMap<String, String>) -> Image {
        let config = self.config_bytes();
        let config_digest = Digest::of(&config);
        let (manifest_mt, config_mt) = match format {
            ManifestFormat::Docker => (media::DOCKER_MANIFEST, media::DOCKER_CONFIG),
            ManifestFormat::Oci => (media::OCI_MANIFEST, media::OCI_CONFIG),
        };
        let layers: Vec<Descriptor> = self
            .layers
            .iter()
            .map(|l| match &l.origin {
                LayerOrigin::Base { media_type, .. } => {
                    Descriptor::new(&convert_media_type(media_type, format), l.digest, l.size)
                }
                LayerOrigin::New(c) => {
                    let mut d = Descriptor::new(new_layer_media_type(*c, format), l.digest, l.size);
                    if format == ManifestFormat::Oci {
                        d.annotations.insert(
                            "buildkit/rewritten-timestamp".into(),
                            self.epoch.to_string(),
                        );
                    }
                    d
                }
            })
            .collect();
        let manifest = Manifest {
            schema_version: 2,
            media_type: manifest_mt.into(),
            artifact_type: String::new(),
            config: Descriptor::new(config_mt, config_digest, config.len() as u64),
            layers: layers.clone(),
            subject: None,
            annotations: annotations.clone(),
        };
        let manifest_bytes = gojson::to_vec_indent(&manifest);
        Image {
            manifest_digest: Digest::of(&manifest_bytes),
            manifest: manifest_bytes,
            manifest_media_type: manifest_mt.into(),
            config,
            config_digest,
            layers,
            platform: self.platform.clone(),
            created: Some(kiln_image::gotime::GoTime::from_unix(self.epoch).to_string()),
        }
    }

    /// Where the base image layers carried into the result live.
    pub fn base_blobs(&self) -> BaseBlobs {
        BaseBlobs(
            self.layers
                .iter()
                .filter_map(|l| match &l.origin {
                    LayerOrigin::Base { path, .. } => Some((l.digest, path.clone())),
                    LayerOrigin::New(_) => None,
                })
                .collect(),
        )
    }
}

/// Base layer blobs by digest.
pub struct BaseBlobs(BTreeMap<Digest, PathBuf>);

impl BlobSource for BaseBlobs {
    fn open_blob(&self, digest: &Digest) -> io::Result<Option<Box<dyn Read + '_>>> {
        match self.0.get(digest) {
            Some(p) => Ok(Some(Box::new(std::fs::File::open(p)?))),
            None => Ok(None),
        }
    }
}
