//! Instruction flags (`--from=...`) with BuildKit's `BFlags` validation.

use crate::gocompat::suggest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    Bool,
    String,
    Strings,
}

/// Parsed values of the flags one instruction accepts.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    defs: Vec<(&'static str, FlagKind)>,
    values: Vec<Vec<String>>,
    used: Vec<bool>,
}

impl Flags {
    /// Accepts the given flags and parses `args` (the instruction's `--` words).
    pub(crate) fn parse(
        defs: &[(&'static str, FlagKind)],
        args: &[String],
    ) -> Result<Flags, String> {
        let mut f = Flags {
            defs: defs.to_vec(),
            values: vec![Vec::new(); defs.len()],
            used: vec![false; defs.len()],
        };
        for a in args {
            if a == "--" {
                break;
            }
            if !a.starts_with("--") {
                return Err(format!("arg should start with -- : {a}"));
            }
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (a.as_str(), None),
            };
            let arg = &name[2..];
            let Some(i) = f.defs.iter().position(|(n, _)| *n == arg) else {
                let names: Vec<&str> = f.defs.iter().map(|(n, _)| *n).collect();
                return Err(suggest::wrap(
                    format!("unknown flag: {name}"),
                    arg,
                    &names,
                    true,
                ));
            };
            let kind = f.defs[i].1;
            if f.used[i] && kind != FlagKind::Strings {
                return Err(format!("duplicate flag specified: {name}"));
            }
            f.used[i] = true;
            match kind {
                FlagKind::Bool => {
                    if value == Some("") {
                        return Err(format!("missing a value on flag: {name}"));
                    }
                    let v = value.unwrap_or("");
                    let b = match v.to_lowercase().as_str() {
                        "true" | "" => "true",
                        "false" => "false",
                        _ => {
                            return Err(format!(
                                "expecting boolean value for flag {name}, not: {v}"
                            ))
                        }
                    };
                    f.values[i] = vec![b.to_string()];
                }
                FlagKind::String | FlagKind::Strings => {
                    let Some(v) = value else {
                        return Err(format!("missing a value on flag: {name}"));
                    };
                    if kind == FlagKind::String {
                        f.values[i] = vec![v.to_string()];
                    } else {
                        f.values[i].push(v.to_string());
                    }
                }
            }
        }
        Ok(f)
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.defs.iter().position(|(n, _)| *n == name)
    }

    /// A string flag's value; `None` when absent or given empty (BuildKit
    /// treats both as unset).
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        let v = self.values.get(self.index(name)?)?.last()?;
        (!v.is_empty()).then(|| v.clone())
    }

    /// A string flag's raw value, `""` when absent.
    pub(crate) fn string_or_empty(&self, name: &str) -> String {
        self.index(name)
            .and_then(|i| self.values[i].last().cloned())
            .unwrap_or_default()
    }

    /// The raw value of a string flag that was given (even if empty).
    pub(crate) fn given(&self, name: &str) -> Option<String> {
        let i = self.index(name)?;
        if self.used[i] {
            self.values[i].last().cloned()
        } else {
            None
        }
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.index(name)
            .and_then(|i| self.values[i].last())
            .is_some_and(|v| v == "true")
    }

    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.index(name)
            .map(|i| self.values[i].clone())
            .unwrap_or_default()
    }

    /// Names of the flags that were given, in definition order.
    pub(crate) fn used(&self) -> Vec<String> {
        self.defs
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| **u)
            .map(|((n, _), _)| n.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bflags_rules() {
        let defs = [
            ("str1", FlagKind::String),
            ("bool1", FlagKind::Bool),
            ("many", FlagKind::Strings),
        ];
        let f = Flags::parse(&defs, &[]).unwrap();
        assert_eq!(f.string("str1"), None);
        assert!(!f.bool("bool1"));
        assert!(Flags::parse(&defs, &args(&["--"])).is_ok());
        let f = Flags::parse(
            &defs,
            &args(&["--str1=BYE", "--bool1", "--many=a", "--many=b"]),
        )
        .unwrap();
        assert_eq!(f.string("str1").as_deref(), Some("BYE"));
        assert!(f.bool("bool1"));
        assert_eq!(f.strings("many"), ["a", "b"]);
        assert_eq!(f.used(), ["str1", "bool1", "many"]);
        assert!(Flags::parse(&defs, &args(&["--bool1=FALSE"]))
            .map(|f| !f.bool("bool1"))
            .unwrap());
        let err = |a: &[&str]| Flags::parse(&defs, &args(a)).unwrap_err();
        assert_eq!(err(&["--str1"]), "missing a value on flag: --str1");
        assert_eq!(err(&["--bool1="]), "missing a value on flag: --bool1");
        assert_eq!(
            err(&["--bool1=yes"]),
            "expecting boolean value for flag --bool1, not: yes"
        );
        assert_eq!(
            err(&["--str1=a", "--str1=b"]),
            "duplicate flag specified: --str1"
        );
        assert_eq!(
            err(&["--str2=a"]),
            "unknown flag: --str2 (did you mean str1?)"
        );
        assert_eq!(err(&["--zzzzzz"]), "unknown flag: --zzzzzz");
        assert_eq!(err(&["-x"]), "arg should start with -- : -x");
        assert_eq!(
            Flags::parse(&defs, &args(&["--str1="]))
                .unwrap()
                .string_or_empty("str1"),
            ""
        );
    }
}
