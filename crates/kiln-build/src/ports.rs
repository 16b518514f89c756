//! `EXPOSE` values as docker/go-connections' `nat.ParsePortSpecs` reads them.

use std::collections::BTreeSet;

/// Parses port specs into `port/proto` keys (ranges expanded, protocol lower-cased).
pub fn parse_port_specs(specs: &[String]) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for raw in specs {
        let parts: Vec<&str> = raw.split(':').collect();
        let n = parts.len();
        let container = parts[n - 1];
        let ip = match n {
            1 | 2 => "",
            3 => parts[0],
            _ => "",
        };
        let ip = if n > 3 {
            parts[..n - 2].join(":")
        } else {
            ip.to_string()
        };
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("invalid IP address: {ip}"));
        }
        let (proto, port) = split_proto_port(container);
        if port.is_empty() {
            return Err(format!("no port specified: {raw}<empty>"));
        }
        let (start, end) =
            parse_range(port).ok_or_else(|| format!("invalid containerPort: {port}"))?;
        let proto = proto.to_ascii_lowercase();
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("invalid proto: {proto}"));
        }
        for p in start..=end {
            out.insert(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

fn split_proto_port(raw: &str) -> (&str, &str) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return ("", "");
    }
    if parts.len() == 1 || parts[1].is_empty() {
        return ("tcp", parts[0]);
    }
    (parts[1], parts[0])
}

fn parse_range(s: &str) -> Option<(u32, u32)> {
    let num = |t: &str| -> Option<u32> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse::<u32>().ok().filter(|v| *v <= 65535)
    };
    match s.split_once('-') {
        None => num(s).map(|v| (v, v)),
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            (a <= b).then_some((a, b))
        }
    }
}

/// Go's `%v` of a `map[nat.Port]struct{}`: `map[53/udp:{} 80/tcp:{}]`, keys sorted.
pub fn go_map_string(ports: &BTreeSet<String>) -> String {
    let items: Vec<String> = ports.iter().map(|p| format!("{p}:{{}}")).collect();
    format!("map[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let s = |v: &[&str]| parse_port_specs(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(
            go_map_string(&s(&["8080/tcp", "53/udp"]).unwrap()),
            "map[53/udp:{} 8080/tcp:{}]"
        );
        assert_eq!(go_map_string(&s(&["9090"]).unwrap()), "map[9090/tcp:{}]");
        assert_eq!(s(&["8000-8002/UDP"]).unwrap().len(), 3);
        assert!(s(&["80/xyz"]).is_err());
        assert!(s(&["99999"]).is_err());
        assert!(s(&["abc"]).is_err());
    }
}
