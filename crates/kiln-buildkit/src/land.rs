//! Landing BuildKit's result where a native build would put it: BuildKit writes into a
//! staging directory beside `-o`; kiln reads the image back (every JSON document and every
//! layer blob checked against its digest) and only then renames it into place, so a failed
//! or lying driver leaves no partial output.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use kiln_image::import::{self, ImageSource, LoadedImage};

use crate::driver::{self, OutputFormat, Request};
use crate::Error;

/// The staging directory of one build; removed when dropped.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// Creates the staging directory for `output`, removing a stale one left by a killed
    /// build. The output's directory must exist.
    pub fn prepare(output: &Path) -> Result<Staging, Error> {
        let dir = driver::staging_dir(output);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::env(format!(
                    "cannot remove the stale staging directory {}: {e}",
                    dir.display()
                )))
            }
        }
        fs::create_dir(&dir).map_err(|e| {
            Error::env(format!(
                "cannot create the staging directory {}: {e}",
                dir.display()
            ))
        })?;
        Ok(Staging { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Reads the image BuildKit wrote for `req`, checks it and moves it to `req.output`.
pub fn land(_staging: &Staging, req: &Request) -> Result<LoadedImage, Error> {
    let staged = driver::staged_output(&req.output);
    let bad = |m: String| {
        Error::env(format!(
            "BuildKit's output {} is not a usable image: {m}",
            staged.display()
        ))
    };
    let present = match req.format {
        OutputFormat::OciDir => staged.is_dir(),
        OutputFormat::Docker | OutputFormat::Oci => staged.is_file(),
    };
    if !present {
        return Err(Error::env(format!(
            "BuildKit reported success but wrote no image at {}",
            staged.display()
        )));
    }
    let src = ImageSource::open(&staged.display().to_string()).map_err(|e| bad(e.to_string()))?;
    let image = import::load(&src, None, None).map_err(|e| bad(e.to_string()))?;
    let docker = image.manifest_media_type == kiln_image::spec::media::DOCKER_MANIFEST;
    if docker != (req.format == OutputFormat::Docker) {
        return Err(bad(format!(
            "its manifest is {}, not the format kiln asked for",
            image.manifest_media_type
        )));
    }
    verify_layers(&src, &image).map_err(bad)?;
    drop(src);
    match req.format {
        OutputFormat::OciDir => {
            if req.output.exists() {
                return Err(Error::input(format!(
                    "{}: already exists; choose a new directory for an OCI layout",
                    req.output.display()
                )));
            }
        }
        OutputFormat::Docker | OutputFormat::Oci => {
            if req.output.is_dir() {
                return Err(Error::input(format!(
                    "{}: is a directory",
                    req.output.display()
                )));
            }
            set_mode_644(&staged).map_err(|e| bad(e.to_string()))?;
            fs::File::open(&staged)
                .and_then(|f| f.sync_all())
                .map_err(|e| bad(e.to_string()))?;
        }
    }
    fs::rename(&staged, &req.output).map_err(|e| {
        Error::env(format!(
            "cannot move {} to {}: {e}",
            staged.display(),
            req.output.display()
        ))
    })?;
    Ok(image)
}

/// Every layer blob is present, of the size and digest the manifest says.
pub fn verify_layers(src: &ImageSource, image: &LoadedImage) -> Result<(), String> {
    for (i, l) in image.manifest.layers.iter().enumerate() {
        let size = u64::try_from(l.size)
            .map_err(|_| format!("layer {}: negative size {} in the manifest", i + 1, l.size))?;
        let mut r = src
            .open_blob_verified(&l.digest, size)
            .map_err(|e| format!("layer {}: {e}", i + 1))?;
        io::copy(&mut r, &mut io::sink()).map_err(|e| format!("layer {}: {e}", i + 1))?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode_644(p: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_mode_644(_: &Path) -> io::Result<()> {
    Ok(())
}
