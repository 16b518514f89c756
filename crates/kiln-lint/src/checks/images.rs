//! Image references that float (KL001): `FROM`, `COPY --from=<image>` and
//! `RUN --mount=from=<image>`.

use std::collections::BTreeMap;

/// Whether `reference` ends in `@sha256:<64 lowercase hex>`.
fn has_digest(reference: &str) -> bool {
    reference
        .rsplit_once("@sha256:")
        .is_some_and(|(name, hex)| {
            !name.is_empty()
                && hex.len() == 64
                && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// What is wrong with an image reference, if anything. `written` is the
/// reference as it appears in the Dockerfile, `resolved` after ARG expansion;
/// `contexts` are the named build contexts (`--build-context name=value`).
pub(crate) fn check_image(
    written: &str,
    resolved: &str,
    contexts: &BTreeMap<String, String>,
) -> Option<String> {
    if resolved == "scratch" {
        return None;
    }
    let shown = if written == resolved {
        format!("`{resolved}`")
    } else if resolved.is_empty() {
        return Some(format!(
            "`{written}` is empty unless a build arg sets it, and nothing pins its digest"
        ));
    } else {
        format!("`{written}` (= `{resolved}`)")
    };
    if let Some(value) = named_context(resolved, contexts) {
        return check_context(&shown, value);
    }
    if has_digest(resolved) {
        return None;
    }
    if resolved.contains('@') {
        return Some(format!("{shown} has a malformed digest"));
    }
    let last = resolved.rsplit('/').next().unwrap_or(resolved);
    Some(match last.split_once(':') {
        None => format!("{shown} has no tag (so `latest`) and no digest"),
        Some((_, tag)) => {
            format!("{shown} names the tag `{tag}`, which can move; it has no digest")
        }
    })
}

/// The named context that replaces an image, matched like BuildKit: by the
/// name as written, or without an explicit `:latest`.
fn named_context<'a>(image: &str, contexts: &'a BTreeMap<String, String>) -> Option<&'a str> {
    contexts
        .get(image)
        .or_else(|| contexts.get(image.strip_suffix(":latest")?))
        .map(String::as_str)
}

fn check_context(shown: &str, value: &str) -> Option<String> {
    if let Some(r) = value.strip_prefix("docker-image://") {
        return (!has_digest(r))
            .then(|| format!("{shown} is the named context `{value}`, which has no digest"));
    }
    if let Some(r) = value.strip_prefix("oci-layout://") {
        return (!has_digest(r)).then(|| {
            format!("{shown} is the named context `{value}`, which names no manifest digest")
        });
    }
    // A local directory or another stage: its content is the input itself.
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:3f0408471efe0ab36280f5435d6851b5d1ad275341c84ab21349f03cd4f4e9c6";

    #[test]
    fn references() {
        let none = BTreeMap::new();
        assert_eq!(check_image("scratch", "scratch", &none), None);
        assert_eq!(check_image("x", &format!("debian:12@{D}"), &none), None);
        assert!(check_image("golang:latest", "golang:latest", &none)
            .unwrap()
            .contains("tag `latest`"));
        assert!(check_image("ubuntu", "ubuntu", &none)
            .unwrap()
            .contains("no tag"));
        assert!(check_image("localhost:5000/x", "localhost:5000/x", &none)
            .unwrap()
            .contains("no tag"));
        assert!(check_image("d@sha256:00", "d@sha256:00", &none)
            .unwrap()
            .contains("malformed"));
        assert!(check_image("${B}", "", &none).unwrap().contains("empty"));
        let ctx = BTreeMap::from([
            ("busybox".to_string(), format!("oci-layout://base@{D}")),
            (
                "alpine".to_string(),
                "docker-image://alpine:3.20".to_string(),
            ),
        ]);
        assert_eq!(check_image("busybox", "busybox", &ctx), None);
        assert!(check_image("alpine", "alpine", &ctx)
            .unwrap()
            .contains("named context"));
    }
}
