//! Platforms as containerd's `platforms` package parses, normalises and formats them.

use kiln_image::spec::Platform;

/// The platform of this machine, as BuildKit's daemon reports it (`platforms.DefaultSpec`:
/// arm64 carries variant `v8`, arm `v7`).
pub fn host() -> Platform {
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", ""),
        "aarch64" => ("arm64", "v8"),
        "arm" => ("arm", "v7"),
        "x86" => ("386", ""),
        "powerpc64" => ("ppc64le", ""),
        "s390x" => ("s390x", ""),
        "riscv64" => ("riscv64", ""),
        other => (other, ""),
    };
    Platform::linux(arch, variant)
}

/// Parses `os/arch[/variant]` (or `arch`, or `os`) and normalises it like containerd.
pub fn parse(spec: &str) -> Result<Platform, String> {
    let lower = spec.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    let bad = || format!("invalid platform {spec:?}: expected os/arch[/variant], e.g. linux/amd64");
    if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
        return Err(bad());
    }
    let (os, arch, variant) = match parts.as_slice() {
        [one] => {
            if is_known_os(one) {
                let h = host();
                (one.to_string(), h.architecture, h.variant)
            } else {
                let (a, v) = normalize_arch(one, "");
                ("linux".to_string(), a, v)
            }
        }
        [os, arch] => {
            let (a, v) = normalize_arch(arch, "");
            (os.to_string(), a, v)
        }
        [os, arch, variant] => {
            let (a, v) = normalize_arch(arch, variant);
            (os.to_string(), a, v)
        }
        _ => return Err(bad()),
    };
    if !is_known_os(&os) {
        return Err(format!(
            "invalid platform {spec:?}: unknown operating system {os:?}"
        ));
    }
    if os != "linux" {
        return Err(format!(
            "invalid platform {spec:?}: kiln builds linux images only"
        ));
    }
    Ok(Platform::linux(&arch, &variant))
}

fn is_known_os(s: &str) -> bool {
    matches!(
        s,
        "linux"
            | "windows"
            | "darwin"
            | "freebsd"
            | "netbsd"
            | "openbsd"
            | "solaris"
            | "illumos"
            | "aix"
    )
}

/// containerd's `normalizeArch`.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (a, v) = match arch {
        "i386" | "386" | "i686" | "x86" => ("386", ""),
        "x86_64" | "x86-64" | "amd64" => ("amd64", if variant == "v1" { "" } else { variant }),
        "aarch64" | "arm64" => (
            "arm64",
            if variant == "8" || variant == "v8" {
                ""
            } else {
                variant
            },
        ),
        "armhf" => ("arm", "v7"),
        "armel" => ("arm", "v6"),
        "arm" => (
            "arm",
            match variant {
                "" | "7" => "v7",
                "5" | "6" | "8" => return ("arm".into(), format!("v{variant}")),
                v => v,
            },
        ),
        other => (other, variant),
    };
    (a.to_string(), v.to_string())
}

/// `os/arch[/variant]`.
pub fn format(p: &Platform) -> String {
    p.display()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(parse("linux/amd64").unwrap(), Platform::linux("amd64", ""));
        assert_eq!(parse("linux/x86_64").unwrap(), Platform::linux("amd64", ""));
        assert_eq!(
            parse("linux/arm64/v8").unwrap(),
            Platform::linux("arm64", "")
        );
        assert_eq!(parse("linux/arm").unwrap(), Platform::linux("arm", "v7"));
        assert_eq!(parse("arm64").unwrap(), Platform::linux("arm64", ""));
        assert!(parse("windows/amd64").is_err());
        assert!(parse("linux//amd64").is_err());
        assert!(parse("plan9/amd64").is_err());
    }
}
