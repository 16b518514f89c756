//! Normalizing a whole image: every layer (in parallel, one worker per core), then the
//! config (times set to SOURCE_DATE_EPOCH, new diff_ids) and the manifest.

use std::collections::BTreeMap;
use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use kiln_digest::Digest;
use kiln_image::gojson;
use kiln_image::gotime::GoTime;
use kiln_image::import::{ImageSource, LoadedImage};
use kiln_image::spec::{media, Descriptor, ImageConfig, Manifest, RootFs};
use kiln_image::{BlobStore, Image};
use kiln_layer::Compression;

use crate::error::{Error, Result};
use crate::layer::{normalize_layer, Devices, LayerOptions, NormalizedLayer};
use crate::scrub::Scrubber;
use crate::source::{Expected, ImageLayers};

/// Media types of the output manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestFormat {
    /// Docker schema 2 (what BuildKit's `type=docker` exporter writes).
    Docker,
    /// OCI (BuildKit's `type=oci`).
    Oci,
}

/// How to normalize an image.
pub struct Options {
    /// SOURCE_DATE_EPOCH, seconds.
    pub epoch: i64,
    pub scrub: Scrubber,
    pub devices: Devices,
    pub compression: Compression,
    pub format: ManifestFormat,
    /// Layers normalized at once (at least 1).
    pub jobs: usize,
}

/// Which half of normalizing a layer [`Progress::layer_bytes`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading and checking the input blob, `total` bytes as stored (compressed).
    Reading { total: u64 },
    /// Writing the new blob, whose size is known only at the end.
    Writing,
}

/// Progress of a run, for the command line.
pub trait Progress: Sync {
    fn layer_done(&self, index: usize, total: usize, layer: &NormalizedLayer);

    /// Bytes of layer `index` done so far in `phase`: reported every [`REPORT_EVERY`]
    /// bytes and at the end of the phase.
    fn layer_bytes(&self, _index: usize, _phase: Phase, _done: u64) {}
}

/// How many bytes pass between two [`Progress::layer_bytes`] reports.
pub const REPORT_EVERY: u64 = 1 << 20;

/// A reader or writer that reports the bytes passed through it.
struct Counted<'a, T> {
    inner: T,
    done: u64,
    reported: u64,
    report: &'a (dyn Fn(u64) + Sync),
}

impl<'a, T> Counted<'a, T> {
    fn new(inner: T, report: &'a (dyn Fn(u64) + Sync)) -> Self {
        Counted {
            inner,
            done: 0,
            reported: 0,
            report,
        }
    }

    fn add(&mut self, n: usize) {
        self.done += n as u64;
        if self.done - self.reported >= REPORT_EVERY {
            self.reported = self.done;
            (self.report)(self.done);
        }
    }

    /// Reports the final count (once) and gives the inner value back.
    fn finish(self) -> T {
        if self.reported != self.done || self.done == 0 {
            (self.report)(self.done);
        }
        self.inner
    }
}

impl<T: std::io::Read> std::io::Read for Counted<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.add(n);
        if n == 0 && !buf.is_empty() && self.reported != self.done {
            self.reported = self.done;
            (self.report)(self.done);
        }
        Ok(n)
    }
}

impl<T: std::io::Write> std::io::Write for Counted<'_, T> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.add(n);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn layer_done(&self, _: usize, _: usize, _: &NormalizedLayer) {}
}

/// A normalized image; its layer blobs are in the store given to [`normalize_image`].
#[derive(Clone, Debug)]
pub struct NormalizedImage {
    pub image: Image,
    /// The input's descriptors, in order, and what became of each.
    pub layers: Vec<(Descriptor, NormalizedLayer)>,
}

/// Sets the config's times to the epoch and its diff_ids to the new layers'. Every time is
/// set, not clamped, so that images differing only in build times normalize alike.
pub fn normalize_config(config: &ImageConfig, diff_ids: Vec<Digest>, epoch: i64) -> ImageConfig {
    let t = GoTime::from_unix(epoch);
    let mut c = config.clone();
    c.created = Some(t);
    for h in &mut c.history {
        h.created = Some(t);
    }
    c.rootfs = RootFs {
        kind: "layers".into(),
        // Go writes a nil slice (null) for an image without layers, as BuildKit does.
        diff_ids: (!diff_ids.is_empty()).then_some(diff_ids),
    };
    c
}

fn layer_media_type(format: ManifestFormat, c: Compression) -> &'static str {
    match (format, c) {
        (ManifestFormat::Docker, Compression::Gzip) => media::DOCKER_LAYER_GZIP,
        (ManifestFormat::Docker, Compression::Uncompressed) => media::DOCKER_LAYER,
        (ManifestFormat::Oci, Compression::Gzip) => media::OCI_LAYER_GZIP,
        (ManifestFormat::Oci, Compression::Uncompressed) => media::OCI_LAYER,
    }
}

/// Normalizes `image` (read from `source`), writing the new layer blobs into `store` and
/// spill files into `work`. `what` names the image in messages.
pub fn normalize_image(
    what: &str,
    source: &ImageSource,
    image: &LoadedImage,
    opts: &Options,
    store: &BlobStore,
    work: &Path,
    progress: &dyn Progress,
) -> Result<NormalizedImage> {
    let layers = ImageLayers::new(source);
    let descs = &image.manifest.layers;
    let diff_ids = image.config.diff_ids();
    if diff_ids.len() != descs.len() {
        return Err(Error::input(format!(
            "{what}: the config lists {} diff_ids for {} layers",
            diff_ids.len(),
            descs.len()
        )));
    }
    let layer_opts = LayerOptions {
        epoch: opts.epoch,
        scrub: &opts.scrub,
        devices: opts.devices,
        compression: opts.compression,
    };
    let total = descs.len();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<NormalizedLayer>>>> =
        Mutex::new((0..total).map(|_| None).collect());
    let one = |i: usize| -> Result<NormalizedLayer> {
        let d = &descs[i];
        let ctx = format!("{what}: layer {} ({})", i + 1, d.digest);
        let run = || -> Result<NormalizedLayer> {
            let blob = layers.open(d)?;
            let spill = tempfile::tempfile_in(work).map_err(|e| {
                Error::env(format!(
                    "cannot create a spill file in {}: {e}",
                    work.display()
                ))
            })?;
            let tmp = store
                .temp_file()
                .map_err(|e| Error::env(format!("cannot create a blob in the store: {e}")))?;
            let total = u64::try_from(d.size).unwrap_or(0);
            let reading = |n| progress.layer_bytes(i, Phase::Reading { total }, n);
            let writing = |n| progress.layer_bytes(i, Phase::Writing, n);
            let out = BufWriter::with_capacity(1 << 20, tmp.as_file());
            let (out, layer) = normalize_layer(
                Counted::new(blob, &reading),
                &Expected::of(d, Some(diff_ids[i])),
                spill,
                &layer_opts,
                Counted::new(out, &writing),
            )?;
            out.finish()
                .into_inner()
                .map_err(|e| Error::env(format!("cannot write the layer blob: {}", e.error())))?;
            store
                .adopt(tmp, &layer.output.digest)
                .map_err(|e| Error::env(format!("cannot store the layer blob: {e}")))?;
            Ok(layer)
        };
        run().map_err(|e| e.context(ctx))
    };
    let jobs = opts.jobs.clamp(1, total.max(1));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let r = one(i);
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                if let Ok(l) = &r {
                    progress.layer_done(i, total, l);
                }
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(r);
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| Error::env("a layer worker panicked"))?;
    // The first failing layer in image order, whichever worker hit it first.
    let mut done = Vec::with_capacity(total);
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Some(Ok(l)) => done.push((descs[i].clone(), l)),
            Some(Err(e)) => return Err(e),
            // Not started because another layer failed; that error comes first or later.
            None => continue,
        }
    }
    if done.len() != total {
        return Err(Error::env(format!(
            "{what}: not every layer was normalized"
        )));
    }

    let new_diff_ids = done.iter().map(|(_, l)| l.output.diff_id).collect();
    let config = normalize_config(&image.config, new_diff_ids, opts.epoch);
    let config_bytes = gojson::to_vec(&config);
    let config_digest = Digest::of(&config_bytes);
    let (manifest_mt, config_mt) = match opts.format {
        ManifestFormat::Docker => (media::DOCKER_MANIFEST, media::DOCKER_CONFIG),
        ManifestFormat::Oci => (media::OCI_MANIFEST, media::OCI_CONFIG),
    };
    let layer_descs: Vec<Descriptor> = done
        .iter()
        .map(|(_, l)| {
            let mut d = Descriptor::new(
                layer_media_type(opts.format, opts.compression),
                l.output.digest,
                l.output.size,
            );
            if opts.format == ManifestFormat::Oci {
                // As BuildKit marks the layers its rewrite-timestamp produced.
                d.annotations.insert(
                    "buildkit/rewritten-timestamp".into(),
                    opts.epoch.to_string(),
                );
            }
            d
        })
        .collect();
    let created = GoTime::from_unix(opts.epoch).to_string();
    let mut annotations: BTreeMap<String, String> = image.manifest.annotations.clone();
    if let Some(v) = annotations.get_mut("org.opencontainers.image.created") {
        v.clone_from(&created);
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: manifest_mt.into(),
        artifact_type: String::new(),
        config: Descriptor::new(config_mt, config_digest, config_bytes.len() as u64),
        layers: layer_descs.clone(),
        subject: None,
        annotations,
    };
    let manifest_bytes = gojson::to_vec_indent(&manifest);
    Ok(NormalizedImage {
        image: Image {
            manifest_digest: Digest::of(&manifest_bytes),
            manifest: manifest_bytes,
            manifest_media_type: manifest_mt.into(),
            config: config_bytes,
            config_digest,
            layers: layer_descs,
            platform: config.platform(),
            created: Some(created),
        },
        layers: done,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_image::spec::History;
    use std::io::{Read, Write};

    /// Progress counts come every [`REPORT_EVERY`] bytes and once more at the end, ending
    /// at the exact byte count, for the reading and the writing side.
    #[test]
    fn counted_streams_report_every_mebibyte_and_the_total() {
        let seen = Mutex::new(Vec::new());
        let report = |n| seen.lock().unwrap().push(n);
        let data = vec![7u8; (REPORT_EVERY as usize) * 2 + 5];
        let mut r = Counted::new(&data[..], &report);
        let mut sink = Vec::new();
        r.read_to_end(&mut sink).unwrap();
        r.finish();
        assert_eq!(
            *seen.lock().unwrap(),
            [REPORT_EVERY, 2 * REPORT_EVERY, data.len() as u64]
        );

        seen.lock().unwrap().clear();
        let mut w = Counted::new(Vec::new(), &report);
        for chunk in data.chunks(300_000) {
            w.write_all(chunk).unwrap();
        }
        assert_eq!(w.finish(), data);
        // Four 300,000-byte writes pass the first mebibyte; the next report is the total.
        assert_eq!(*seen.lock().unwrap(), [1_200_000, data.len() as u64]);

        seen.lock().unwrap().clear();
        Counted::new(Vec::<u8>::new(), &report).finish();
        assert_eq!(
            *seen.lock().unwrap(),
            [0],
            "an empty stream reports its zero"
        );
    }

    #[test]
    fn config_times_are_set_not_clamped() {
        let old = GoTime::from_unix(100);
        let new = GoTime::from_unix(2_000_000_000);
        let cfg = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            created: Some(new),
            history: vec![
                History {
                    created: Some(old),
                    created_by: "a".into(),
                    ..History::default()
                },
                History {
                    created: None,
                    created_by: "b".into(),
                    empty_layer: true,
                    ..History::default()
                },
            ],
            ..ImageConfig::default()
        };
        let d = Digest::of(b"x");
        let out = normalize_config(&cfg, vec![d], 1000);
        assert_eq!(out.created, Some(GoTime::from_unix(1000)));
        assert!(out
            .history
            .iter()
            .all(|h| h.created == Some(GoTime::from_unix(1000))));
        assert_eq!(out.diff_ids(), &[d]);
        assert_eq!(out.history[1].created_by, "b");
        let none = normalize_config(&cfg, vec![], 1000);
        assert_eq!(none.rootfs.diff_ids, None);
    }
}
