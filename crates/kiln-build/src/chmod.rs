//! `COPY --chmod` values: octal (`0755`, up to `07777`) as BuildKit accepts them, or
//! symbolic modes (`u+x,go-w`, `a=rX`) with the semantics of chmod(1) and BuildKit's
//! dchapes-mode (umask 0).

/// A parsed `--chmod`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chmod {
    /// Permission bits plus setuid/setgid/sticky.
    Octal(u32),
    Symbolic(Vec<Clause>),
}

/// One `who op perms` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    who: u32,
    ops: Vec<(u8, Perms)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Perms {
    Bits { bits: u32, cond_x: bool },
    CopyFrom(u8),
}

const USER: u32 = 0o4700;
const GROUP: u32 = 0o2070;
const OTHER: u32 = 0o1007;
const ALL: u32 = 0o7777;

impl Chmod {
    /// Parses a `--chmod` value; the error is BuildKit's wording.
    pub fn parse(s: &str) -> Result<Chmod, String> {
        let non_octal = || {
            format!(
                "invalid chmod parameter: '{s}'. it should be octal string and between 0 and 07777"
            )
        };
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let v = u32::from_str_radix(s, 8).map_err(|_| non_octal())?;
            if v > 0o7777 {
                return Err(non_octal());
            }
            return Ok(Chmod::Octal(v));
        }
        let mut clauses = Vec::new();
        for part in s.split(',') {
            let b = part.as_bytes();
            let mut i = 0;
            let mut who = 0;
            while i < b.len() && matches!(b[i], b'u' | b'g' | b'o' | b'a') {
                who |= match b[i] {
                    b'u' => USER,
                    b'g' => GROUP,
                    b'o' => OTHER,
                    _ => ALL,
                };
                i += 1;
            }
            let mut ops = Vec::new();
            if i >= b.len() {
                return Err(format!("invalid chmod parameter '{s}': missing operator"));
            }
            while i < b.len() {
                let op = b[i];
                if !matches!(op, b'+' | b'-' | b'=') {
                    return Err(format!(
                        "invalid chmod parameter '{s}': unexpected {:?}",
                        op as char
                    ));
                }
                i += 1;
                if i < b.len() && matches!(b[i], b'u' | b'g' | b'o') {
                    ops.push((op, Perms::CopyFrom(b[i])));
                    i += 1;
                    continue;
                }
                let (mut bits, mut cond_x) = (0, false);
                while i < b.len() && matches!(b[i], b'r' | b'w' | b'x' | b'X' | b's' | b't') {
                    match b[i] {
                        b'r' => bits |= 0o444,
                        b'w' => bits |= 0o222,
                        b'x' => bits |= 0o111,
                        b'X' => cond_x = true,
                        b's' => bits |= 0o6000,
                        _ => bits |= 0o1000,
                    }
                    i += 1;
                }
                ops.push((op, Perms::Bits { bits, cond_x }));
            }
            clauses.push(Clause { who, ops });
        }
        Ok(Chmod::Symbolic(clauses))
    }

    /// The mode a file ends up with (`mode` = its current permission bits).
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(v) => *v,
            Chmod::Symbolic(clauses) => {
                let mut m = mode & 0o7777;
                for c in clauses {
                    // With umask 0, an omitted "who" means all.
                    let who = if c.who == 0 { ALL } else { c.who };
                    for (op, perms) in &c.ops {
                        let value = match perms {
                            Perms::Bits { bits, cond_x } => {
                                let mut v = *bits;
                                if *cond_x && (is_dir || m & 0o111 != 0) {
                                    v |= 0o111;
                                }
                                v
                            }
                            Perms::CopyFrom(src) => {
                                let p = match src {
                                    b'u' => (m >> 6) & 7,
                                    b'g' => (m >> 3) & 7,
                                    _ => m & 7,
                                };
                                p << 6 | p << 3 | p
                            }
                        };
                        let v = value & who;
                        match op {
                            b'+' => m |= v,
                            b'-' => m &= !v,
                            _ => {
                                // '=' clears the who bits (special bits only for u/g/o
                                // that own them) before setting.
                                m &= !(who & 0o777 | (who & value & 0o7000));
                                m |= v;
                            }
                        }
                    }
                }
                m
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_symbolic() {
        assert_eq!(Chmod::parse("0640").unwrap(), Chmod::Octal(0o640));
        assert_eq!(Chmod::parse("4755").unwrap().apply(0, false), 0o4755);
        assert!(Chmod::parse("17777")
            .unwrap_err()
            .contains("between 0 and 07777"));
        assert!(Chmod::parse("0999").is_err());
        let c = Chmod::parse("u+x,go-w").unwrap();
        assert_eq!(c.apply(0o666, false), 0o744);
        let c = Chmod::parse("a=rX").unwrap();
        assert_eq!(c.apply(0o640, false), 0o444);
        assert_eq!(c.apply(0o750, false), 0o555);
        assert_eq!(c.apply(0o700, true), 0o555);
        let c = Chmod::parse("g=u").unwrap();
        assert_eq!(c.apply(0o740, false), 0o770);
        assert!(Chmod::parse("u").is_err());
        assert!(Chmod::parse("z+x").is_err());
    }
}
