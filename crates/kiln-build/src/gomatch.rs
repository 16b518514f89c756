//! COPY wildcards: Go's `filepath.Match` (shared with the Dockerfile crate, which needs it for
//! `.dockerignore`) and BuildKit's test for whether a path component is a pattern.

pub use kiln_dockerfile::{filepath_match as matches, BadPattern};

/// Does a path component contain wildcard syntax (BuildKit's `containsWildcards`)?
pub fn has_wildcards(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}
