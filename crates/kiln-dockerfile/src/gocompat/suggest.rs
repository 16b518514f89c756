//! BuildKit's `util/suggest`: "(did you mean X?)" hints by Levenshtein distance.

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn match_case(val: &str, orig: &str) -> String {
    if orig == orig.to_lowercase() {
        val.to_lowercase()
    } else if orig == orig.to_uppercase() {
        val.to_uppercase()
    } else {
        val.to_string()
    }
}

/// The closest option within distance 2, if `val` is not itself an option.
///
/// BuildKit iterates a Go map, so among equally close options its choice is
/// random; `options` is taken in the given order here to stay deterministic.
pub(crate) fn search(val: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    let v = if case_sensitive {
        val.to_string()
    } else {
        val.to_lowercase()
    };
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let o = if case_sensitive {
            opt.to_string()
        } else {
            opt.to_lowercase()
        };
        if v == o {
            return None;
        }
        let d = levenshtein(&v, &o);
        if d < min {
            best = Some(if case_sensitive {
                o
            } else {
                match_case(&o, val)
            });
            min = d;
        }
    }
    best
}

/// `suggest.WrapError`: appends ` (did you mean X?)` when a close option exists.
pub(crate) fn wrap(msg: String, val: &str, options: &[&str], case_sensitive: bool) -> String {
    match search(val, options, case_sensitive) {
        Some(m) => format!("{msg} (did you mean {m}?)"),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(
            search("RUNN", &["RUN", "CMD"], false).as_deref(),
            Some("RUN")
        );
        assert_eq!(
            search("runn", &["RUN", "CMD"], false).as_deref(),
            Some("run")
        );
        assert_eq!(search("Runn", &["RUN"], false).as_deref(), Some("run"));
        assert_eq!(search("xyzzy", &["RUN"], false), None);
        assert_eq!(search("from", &["from", "form"], true), None);
        assert_eq!(
            wrap(
                "unknown flag: --chmd".into(),
                "chmd",
                &["chmod", "chown"],
                true
            ),
            "unknown flag: --chmd (did you mean chmod?)"
        );
    }
}
