//! Options that several subcommands share.

use std::path::PathBuf;

use clap::Args;
use kiln_image::gotime::GoTime;
use kiln_normalize::InputOptions;

use crate::fail::Failure;

/// SOURCE_DATE_EPOCH options, as `kiln build` has them.
#[derive(Args, Debug, Clone)]
pub struct EpochArgs {
    /// SOURCE_DATE_EPOCH: clamp every timestamp to this many seconds since 1970
    /// [default: $SOURCE_DATE_EPOCH, else 0]
    #[arg(
        long = "sde",
        visible_alias = "source-date-epoch",
        value_name = "N",
        conflicts_with = "datetime"
    )]
    pub sde: Option<String>,

    /// SOURCE_DATE_EPOCH as an RFC 3339 time (2023-02-28T21:21:00Z)
    #[arg(long, value_name = "RFC3339")]
    pub datetime: Option<String>,
}

/// Options for images read from registries.
#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Cache of downloaded blobs [default: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln]
    #[arg(long = "cache-dir", value_name = "DIR", env = "KILN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Use only the local cache for registry images; fail naming every missing blob
    #[arg(long)]
    pub offline: bool,

    /// Registry (host[:port]) that may be reached over plain http (loopback always may)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
}

impl EpochArgs {
    /// SOURCE_DATE_EPOCH from --sde, --datetime, $SOURCE_DATE_EPOCH, else 0.
    pub fn resolve(&self) -> Result<i64, Failure> {
        let parse = |v: &str, from: &str| -> Result<i64, Failure> {
            let n: i64 = v.trim().parse().map_err(|_| {
                Failure::input(format!(
                    "{from}: {v:?} is not a SOURCE_DATE_EPOCH (a whole number of seconds since 1970)"
                ))
            })?;
            if n < 0 {
                return Err(Failure::input(format!(
                    "{from}: SOURCE_DATE_EPOCH must not be negative"
                )));
            }
            Ok(n)
        };
        if let Some(v) = &self.sde {
            return parse(v, "--sde");
        }
        if let Some(d) = &self.datetime {
            let t = GoTime::parse(d).map_err(|e| Failure::input(format!("--datetime: {e}")))?;
            if t.nanos != 0 || t.unix_secs < 0 {
                return Err(Failure::input(
                    "--datetime: SOURCE_DATE_EPOCH is whole seconds since 1970",
                ));
            }
            return Ok(t.unix_secs);
        }
        match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.is_empty() => parse(&v, "$SOURCE_DATE_EPOCH"),
            _ => Ok(0),
        }
    }
}

impl RegistryArgs {
    pub fn input_options(&self, platform: Option<&str>) -> Result<InputOptions, Failure> {
        let platform = match platform {
            Some(p) => kiln_build::platform::parse(p).map_err(Failure::input)?,
            None => kiln_build::platform::host(),
        };
        Ok(InputOptions {
            platform,
            cache_dir: self.cache_dir.clone(),
            offline: self.offline,
            insecure_registries: self.insecure_registries.clone(),
        })
    }
}
