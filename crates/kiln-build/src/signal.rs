//! `STOPSIGNAL` validation as moby's `signal.ParseSignal` does it on Linux.

const NAMES: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX",
];

/// Accepts a signal number (not 0) or a name with or without `SIG`.
pub fn validate(raw: &str) -> Result<(), String> {
    let invalid = || format!("Invalid signal: {raw}");
    if let Ok(n) = raw.parse::<i64>() {
        return if n == 0 { Err(invalid()) } else { Ok(()) };
    }
    let up = raw.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if NAMES.contains(&name) {
        return Ok(());
    }
    for (prefix, sign) in [("RTMIN+", 1), ("RTMAX-", -1)] {
        if let Some(n) = name.strip_prefix(prefix) {
            if matches!(n.parse::<i32>(), Ok(k) if (1..=15).contains(&k) && (sign == 1 || k <= 14))
            {
                return Ok(());
            }
        }
    }
    Err(invalid())
}

#[cfg(test)]
mod tests {
    #[test]
    fn signals() {
        assert!(super::validate("SIGTERM").is_ok());
        assert!(super::validate("term").is_ok());
        assert!(super::validate("9").is_ok());
        assert!(super::validate("RTMIN+3").is_ok());
        assert!(super::validate("0").is_err());
        assert!(super::validate("SIGFOO").is_err());
    }
}
