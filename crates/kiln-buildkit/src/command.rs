//! Command lines: what kiln runs, and how `--dry` prints it (POSIX shell quoting, so the
//! printed line can be pasted into a shell and runs the same argument vector).

use std::fmt;

/// A program and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
}

impl Cmd {
    pub fn new(program: &str) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Cmd {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The argument vector, program first.
    pub fn argv(&self) -> Vec<&str> {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect()
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self.argv().into_iter().map(quote).collect();
        f.write_str(&words.join(" "))
    }
}

/// Quotes `word` for a POSIX shell: as is when it holds only safe characters, else in
/// single quotes (a `'` inside becoming `'"'"'`).
pub fn quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\"'\"'"))
    }
}

/// Quotes one field of a BuildKit CSV option (`--output`, `--mount`): as is unless it holds
/// `,`, `"` or a line break, else in double quotes with `"` doubled (encoding/csv's rules,
/// which buildctl and buildx parse these options with).
pub fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(
            quote("type=docker,dest=/a/b.tar"),
            "type=docker,dest=/a/b.tar"
        );
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\"'\"'s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
        let c = Cmd::new("docker").args(["buildx", "build", "x y"]);
        assert_eq!(c.to_string(), "docker buildx build 'x y'");
        assert_eq!(c.argv(), ["docker", "buildx", "build", "x y"]);
    }

    #[test]
    fn csv_fields() {
        assert_eq!(csv_field("name=a"), "name=a");
        assert_eq!(csv_field("name=a,b"), "\"name=a,b\"");
        assert_eq!(
            csv_field("annotation.x=say \"hi\""),
            "\"annotation.x=say \"\"hi\"\"\""
        );
    }
}
