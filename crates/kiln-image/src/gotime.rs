//! Timestamps as Go's `time.Time` marshals them in image JSON (RFC 3339 with nanoseconds,
//! trailing zeros cut, `Z` for a zero offset), so that times copied from a base image come
//! out exactly as BuildKit re-encodes them.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant plus the UTC offset it was written with.
#[derive(Clone, Copy, Debug, Eq)]
pub struct GoTime {
    pub unix_secs: i64,
    pub nanos: u32,
    pub offset_secs: i32,
}

impl PartialEq for GoTime {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal && self.offset_secs == other.offset_secs
    }
}

impl PartialOrd for GoTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for GoTime {
    /// Orders by instant (offset only breaks ties, to stay consistent with `Eq`).
    fn cmp(&self, other: &Self) -> Ordering {
        (self.unix_secs, self.nanos, self.offset_secs).cmp(&(
            other.unix_secs,
            other.nanos,
            other.offset_secs,
        ))
    }
}

impl GoTime {
    /// `time.Unix(secs, 0).UTC()`.
    pub fn from_unix(secs: i64) -> GoTime {
        GoTime {
            unix_secs: secs,
            nanos: 0,
            offset_secs: 0,
        }
    }

    /// True when this instant is strictly after `other` (Go's `After`).
    pub fn after(&self, other: &GoTime) -> bool {
        (self.unix_secs, self.nanos) > (other.unix_secs, other.nanos)
    }

    /// Parses Go's RFC 3339 (what `time.Time.UnmarshalJSON` accepts).
    pub fn parse(s: &str) -> Result<GoTime, String> {
        let err = || format!("invalid RFC 3339 time {s:?}");
        let b = s.as_bytes();
        if b.len() < 20 {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
            let t = s.get(r).ok_or_else(err)?;
            if !t.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err());
            }
            t.parse::<i64>().map_err(|_| err())
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') {
            return Err(err());
        }
        let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if b[13] != b':' || b[16] != b':' {
            return Err(err());
        }
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || min > 59
            || sec > 59
        {
            return Err(err());
        }
        let mut i = 19;
        let mut nanos: u32 = 0;
        if b[i] == b'.' || b[i] == b',' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j == start {
                return Err(err());
            }
            let mut digits = s[start..j].to_string();
            digits.truncate(9);
            while digits.len() < 9 {
                digits.push('0');
            }
            nanos = digits.parse().map_err(|_| err())?;
            i = j;
        }
        let offset_secs = match b.get(i) {
            Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
            Some(&c) if (c == b'+' || c == b'-') && i + 6 == b.len() && b[i + 3] == b':' => {
                let h = num(i + 1..i + 3)?;
                let m = num(i + 4..i + 6)?;
                if h > 23 || m > 59 {
                    return Err(err());
                }
                let o = (h * 3600 + m * 60) as i32;
                if c == b'-' {
                    -o
                } else {
                    o
                }
            }
            _ => return Err(err()),
        };
        let local = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec;
        Ok(GoTime {
            unix_secs: local - offset_secs as i64,
            nanos,
            offset_secs,
        })
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for GoTime {
    /// Go's RFC3339Nano layout.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.unix_secs + self.offset_secs as i64;
        let (y, mo, d) = civil_from_days(local.div_euclid(86400));
        let sod = local.rem_euclid(86400);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            y,
            mo,
            d,
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        if self.offset_secs == 0 {
            write!(f, "Z")
        } else {
            let sign = if self.offset_secs < 0 { '-' } else { '+' };
            let o = self.offset_secs.abs();
            write!(f, "{}{:02}:{:02}", sign, o / 3600, o % 3600 / 60)
        }
    }
}

impl Serialize for GoTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for GoTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GoTime, D::Error> {
        let s = String::deserialize(d)?;
        GoTime::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(
            GoTime::from_unix(1677619260).to_string(),
            "2023-02-28T21:21:00Z"
        );
        assert_eq!(GoTime::from_unix(0).to_string(), "1970-01-01T00:00:00Z");
        let t = GoTime::parse("2020-01-01T01:00:00.500+01:00").unwrap();
        assert_eq!(t.unix_secs, 1577836800);
        assert_eq!(t.to_string(), "2020-01-01T01:00:00.5+01:00");
        assert_eq!(
            GoTime::parse("2020-01-01T00:00:00.000000000Z")
                .unwrap()
                .to_string(),
            "2020-01-01T00:00:00Z"
        );
        assert!(GoTime::parse("2020-13-01T00:00:00Z").is_err());
        assert!(GoTime::parse("2020-01-01 00:00:00Z").is_err());
        assert!(GoTime::parse("").is_err());
    }

    #[test]
    fn civil_roundtrip() {
        for days in [-800_000i64, -1, 0, 1, 59, 365, 11_016, 19_416, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
