//! Platforms (`linux/arm64/v8`) and picking the manifest for one out of an index, following
//! containerd's `platforms` package: names are normalized (`aarch64` is `arm64`, `arm` means
//! `arm/v7`, arm64's `v8` is its default variant) and a platform also accepts the ones it can
//! run, best first (`arm/v7` takes `arm/v6` and `arm/v5`; `amd64` takes `386`; `arm64` takes
//! `arm/v8` down to `arm/v5`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::manifest::{Descriptor, ImageIndex, ManifestError};

/// An OCI platform, as found in index descriptors and image configs.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Why a platform string could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {input:?}: {reason}")]
pub struct ParsePlatformError {
    input: String,
    reason: &'static str,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            variant: variant.map(str::to_string),
            ..Platform::default()
        }
    }

    /// `linux/amd64`, the platform kiln builds for unless told otherwise.
    pub fn linux_amd64() -> Platform {
        Platform::new("linux", "amd64", None)
    }

    /// Parses `os[/arch[/variant]]`, or a lone architecture (meaning linux). The result is
    /// normalized.
    pub fn parse(s: &str) -> Result<Platform, ParsePlatformError> {
        let err = |reason| ParsePlatformError {
            input: s.to_string(),
            reason,
        };
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !parts.iter().all(valid) {
            return Err(err(
                "expected os[/arch[/variant]] of letters, digits, '_', '-', '.'",
            ));
        }
        let p = match parts[..] {
            [one] => {
                let lower = one.to_ascii_lowercase();
                let (arch, _) = normalize_arch(&lower, "");
                if is_known_os(&normalize_os(&lower)) {
                    return Err(err("an OS alone does not say which architecture"));
                } else if is_known_arch(&arch) {
                    Platform::new("linux", one, None)
                } else {
                    return Err(err("unknown architecture"));
                }
            }
            [os, arch] => Platform::new(os, arch, None),
            [os, arch, variant] => Platform::new(os, arch, Some(variant)),
            _ => return Err(err("more than three '/'-separated parts")),
        };
        Ok(p.normalize())
    }

    /// containerd's normalization: lowercase, OS and architecture aliases folded, variants
    /// given their canonical spelling (and arm64's default `v8` dropped).
    pub fn normalize(&self) -> Platform {
        let os = normalize_os(&self.os);
        let (arch, variant) = normalize_arch(
            &self.architecture,
            self.variant.as_deref().unwrap_or_default(),
        );
        Platform {
            architecture: arch,
            os,
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
            variant: (!variant.is_empty()).then_some(variant),
        }
    }

    /// The platforms this one accepts, best first (containerd's `platforms.Only`).
    pub fn compatible(&self) -> Vec<Platform> {
        platform_vector(self.normalize())
    }

    /// Whether `other` names the same platform as `self` once both are normalized (the OS
    /// version is compared only for Windows, where it decides compatibility).
    pub fn same_as(&self, other: &Platform) -> bool {
        let (a, b) = (self.normalize(), other.normalize());
        a.os == b.os
            && a.architecture == b.architecture
            && a.variant == b.variant
            && (a.os != "windows" || a.os_version.is_none() || a.os_version == b.os_version)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = ParsePlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

/// Picks the manifest for `wanted` from index bytes, as containerd does: descriptors whose
/// platform is compatible, ranked by preference; descriptors without a platform rank last (an
/// index made by hand may omit it).
pub fn select_manifest(index: &[u8], wanted: &Platform) -> Result<Descriptor, ManifestError> {
    select_from(&ImageIndex::parse(index)?, wanted)
}

/// [`select_manifest`] on an already parsed index.
pub fn select_from(index: &ImageIndex, wanted: &Platform) -> Result<Descriptor, ManifestError> {
    let vector = wanted.compatible();
    let rank = |d: &Descriptor| match &d.platform {
        None => Some(vector.len()),
        Some(p) => vector.iter().position(|v| v.same_as(p)),
    };
    // min_by_key keeps the first of equal ranks, so index order breaks ties (a stable sort).
    index
        .manifests
        .iter()
        .filter_map(|d| rank(d).map(|r| (r, d)))
        .min_by_key(|(r, _)| *r)
        .map(|(_, d)| d.clone())
        .ok_or_else(|| ManifestError::NoPlatform {
            wanted: wanted.to_string(),
            available: index
                .manifests
                .iter()
                .map(|d| match &d.platform {
                    Some(p) => p.to_string(),
                    None => "(no platform)".to_string(),
                })
                .collect(),
        })
}

fn platform_vector(p: Platform) -> Vec<Platform> {
    let with = |arch: &str, variant: Option<String>| Platform {
        architecture: arch.to_string(),
        variant,
        ..p.clone()
    };
    let version = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u32>().ok());
    let mut out = vec![p.clone()];
    match p.architecture.as_str() {
        "amd64" => {
            if let Some(n) = p.variant.as_deref().and_then(version) {
                for lower in (1..n).rev() {
                    // amd64/v1 normalizes to plain amd64.
                    let v = (lower > 1).then(|| format!("v{lower}"));
                    out.push(with("amd64", v));
                }
            }
            out.push(with("386", None));
        }
        "arm" => {
            if let Some(n) = p.variant.as_deref().and_then(version) {
                for lower in (5..n).rev() {
                    out.push(with("arm", Some(format!("v{lower}"))));
                }
            }
        }
        "arm64" => {
            let variant = p.variant.clone().unwrap_or_else(|| "v8".to_string());
            let (major, minor) = match variant.strip_prefix('v').map(|v| v.split_once('.')) {
                Some(Some((ma, mi))) => (ma.parse::<u32>().ok(), mi.parse::<u32>().ok()),
                Some(None) => (variant[1..].parse::<u32>().ok(), Some(0)),
                None => (None, None),
            };
            if let (Some(mut major), Some(mut minor)) = (major, minor) {
                if major >= 8 {
                    if major == 9 {
                        for m in (0..minor).rev() {
                            out.push(with("arm64", Some(arm64_variant(9, m))));
                        }
                        // v9.x descends from v8.(x+5).
                        minor += 5;
                        major = 8;
                        out.push(with("arm64", Some(arm64_variant(major, minor))));
                    }
                    for m in (0..minor).rev() {
                        let v = arm64_variant(major, m);
                        // arm64/v8 normalizes to plain arm64.
                        out.push(with("arm64", (v != "v8").then_some(v)));
                    }
                }
            }
            let arm = if variant.starts_with("v8.") || variant.starts_with("v9.") {
                "v8".to_string()
            } else {
                variant
            };
            out.extend(platform_vector(with("arm", Some(arm))));
        }
        _ => {}
    }
    out
}

fn arm64_variant(major: u32, minor: u32) -> String {
    if minor == 0 {
        format!("v{major}")
    } else {
        format!("v{major}.{minor}")
    }
}

fn normalize_os(os: &str) -> String {
    match os.to_ascii_lowercase().as_str() {
        "macos" => "darwin".to_string(),
        other => other.to_string(),
    }
}

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = (arch.to_ascii_lowercase(), variant.to_ascii_lowercase());
    let (a, v): (&str, &str) = match arch.as_str() {
        "i386" => ("386", ""),
        "x86_64" | "x86-64" | "amd64" => ("amd64", if variant == "v1" { "" } else { &variant }),
        "aarch64" | "arm64" => (
            "arm64",
            if variant == "8" || variant == "v8" {
                ""
            } else {
                &variant
            },
        ),
        "armhf" => ("arm", "v7"),
        "armel" => ("arm", "v6"),
        "arm" => (
            "arm",
            match variant.as_str() {
                "" | "7" => "v7",
                "5" => "v5",
                "6" => "v6",
                "8" => "v8",
                other => other,
            },
        ),
        other => (other, &variant),
    };
    (a.to_string(), v.to_string())
}

fn is_known_os(os: &str) -> bool {
    matches!(
        os,
        "aix"
            | "android"
            | "darwin"
            | "dragonfly"
            | "freebsd"
            | "hurd"
            | "illumos"
            | "ios"
            | "js"
            | "linux"
            | "nacl"
            | "netbsd"
            | "openbsd"
            | "plan9"
            | "solaris"
            | "windows"
            | "zos"
    )
}

fn is_known_arch(arch: &str) -> bool {
    matches!(
        arch,
        "386"
            | "amd64"
            | "amd64p32"
            | "arm"
            | "armbe"
            | "arm64"
            | "arm64be"
            | "ppc64"
            | "ppc64le"
            | "loong64"
            | "mips"
            | "mipsle"
            | "mips64"
            | "mips64le"
            | "mips64p32"
            | "mips64p32le"
            | "ppc"
            | "riscv"
            | "riscv64"
            | "s390"
            | "s390x"
            | "sparc"
            | "sparc64"
            | "wasm"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn parse_normalizes_aliases_and_default_variants() {
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("linux/amd64/v1").to_string(), "linux/amd64");
        assert_eq!(p("linux/amd64/v3").to_string(), "linux/amd64/v3");
        assert_eq!(p("linux/aarch64").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm64/8").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/armhf").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/armel").to_string(), "linux/arm/v6");
        assert_eq!(p("linux/arm/6").to_string(), "linux/arm/v6");
        assert_eq!(p("Linux/I386").to_string(), "linux/386");
        assert_eq!(p("macos/arm64").to_string(), "darwin/arm64");
        assert_eq!(p("arm64").to_string(), "linux/arm64");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
        assert!(Platform::parse("bogus").is_err());
        assert!(Platform::parse("").is_err());
    }

    fn vector(s: &str) -> Vec<String> {
        p(s).compatible().iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn compatibility_vectors_match_containerd() {
        assert_eq!(vector("linux/amd64"), ["linux/amd64", "linux/386"]);
        assert_eq!(
            vector("linux/amd64/v3"),
            [
                "linux/amd64/v3",
                "linux/amd64/v2",
                "linux/amd64",
                "linux/386"
            ]
        );
        assert_eq!(
            vector("linux/arm/v7"),
            ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
        );
        assert_eq!(vector("linux/arm/v5"), ["linux/arm/v5"]);
        assert_eq!(
            vector("linux/arm64"),
            [
                "linux/arm64",
                "linux/arm/v8",
                "linux/arm/v7",
                "linux/arm/v6",
                "linux/arm/v5"
            ]
        );
        assert_eq!(
            vector("linux/arm64/v8.2"),
            [
                "linux/arm64/v8.2",
                "linux/arm64/v8.1",
                "linux/arm64",
                "linux/arm/v8",
                "linux/arm/v7",
                "linux/arm/v6",
                "linux/arm/v5"
            ]
        );
        assert_eq!(
            vector("linux/arm64/v9.1")[..5],
            [
                "linux/arm64/v9.1",
                "linux/arm64/v9",
                "linux/arm64/v8.6",
                "linux/arm64/v8.5",
                "linux/arm64/v8.4"
            ]
        );
        assert_eq!(vector("linux/riscv64"), ["linux/riscv64"]);
    }

    fn index(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
        let manifests: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(i, (platform, variant))| {
                let (os, arch) = platform.split_once('/').unwrap();
                let variant = variant
                    .map(|v| format!(",\"variant\":\"{v}\""))
                    .unwrap_or_default();
                format!(
                    "{{\"mediaType\":\"{}\",\"digest\":\"sha256:{:064x}\",\"size\":{i},\
                     \"platform\":{{\"os\":\"{os}\",\"architecture\":\"{arch}\"{variant}}}}}",
                    crate::manifest::OCI_MANIFEST,
                    i
                )
            })
            .collect();
        format!(
            "{{\"schemaVersion\":2,\"manifests\":[{}]}}",
            manifests.join(",")
        )
        .into_bytes()
    }

    fn pick(entries: &[(&str, Option<&str>)], wanted: &str) -> Result<u64, ManifestError> {
        select_manifest(&index(entries), &p(wanted)).map(|d| d.size)
    }

    #[test]
    fn selection_prefers_exact_then_compatible_platforms() {
        let multi = [
            ("linux/386", None),
            ("linux/amd64", None),
            ("linux/arm", Some("v6")),
            ("linux/arm", Some("v7")),
            ("linux/arm64", Some("v8")),
            ("unknown/unknown", None),
        ];
        assert_eq!(pick(&multi, "linux/amd64").unwrap(), 1);
        assert_eq!(pick(&multi, "linux/386").unwrap(), 0);
        assert_eq!(
            pick(&multi, "linux/arm64").unwrap(),
            4,
            "v8 in the index = default"
        );
        assert_eq!(pick(&multi, "linux/arm/v7").unwrap(), 3);
        assert_eq!(pick(&multi, "linux/arm").unwrap(), 3, "arm means arm/v7");
        assert_eq!(pick(&multi, "linux/arm/v6").unwrap(), 2);
        // Without an arm64 manifest, arm64 runs arm/v7.
        assert_eq!(pick(&multi[..4], "linux/arm64").unwrap(), 3);
        // amd64 falls back to 386.
        assert_eq!(pick(&[("linux/386", None)], "linux/amd64").unwrap(), 0);
        // Index order breaks ties.
        assert_eq!(
            pick(
                &[("linux/amd64", None), ("linux/amd64", None)],
                "linux/amd64"
            )
            .unwrap(),
            0
        );

        let err = pick(&multi, "linux/s390x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no manifest for platform linux/s390x (the index has: linux/386, linux/amd64, \
             linux/arm/v6, linux/arm/v7, linux/arm64/v8, unknown/unknown)"
        );
        assert!(pick(&[("linux/arm", Some("v5"))], "linux/arm/v6").is_ok());
        assert!(pick(&[("linux/arm", Some("v7"))], "linux/arm/v6").is_err());
    }

    #[test]
    fn descriptors_without_platform_rank_last() {
        let bytes = format!(
            "{{\"schemaVersion\":2,\"manifests\":[\
             {{\"mediaType\":\"{m}\",\"digest\":\"sha256:{z:064x}\",\"size\":7}},\
             {{\"mediaType\":\"{m}\",\"digest\":\"sha256:{o:064x}\",\"size\":8,\
               \"platform\":{{\"os\":\"linux\",\"architecture\":\"amd64\"}}}}]}}",
            m = crate::manifest::OCI_MANIFEST,
            z = 0,
            o = 1
        );
        assert_eq!(
            select_manifest(bytes.as_bytes(), &Platform::linux_amd64())
                .unwrap()
                .size,
            8
        );
        assert_eq!(
            select_manifest(bytes.as_bytes(), &p("linux/arm64"))
                .unwrap()
                .size,
            7
        );
    }
}
