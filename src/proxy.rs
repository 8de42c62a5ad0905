//! Behind a reverse proxy: who the client is. Requests from an address in
//! `SWITCHBOARD_TRUSTED_PROXIES` may say, with `X-Forwarded-For`, `-Proto` and `-Host`, who the
//! client is and which address they used; from anyone else those headers are removed before
//! any handler sees them, so origin checks, login throttling and logs can't be lied to.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use axum::http::{HeaderMap, HeaderValue, header};
use ipnet::IpNet;

pub const FORWARDED_FOR: &str = "x-forwarded-for";
pub const FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const FORWARDED_HOST: &str = "x-forwarded-host";

/// The proxies whose forwarded headers are believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Comma-separated CIDRs or single addresses (`10.0.0.0/8, 127.0.0.1, ::1`).
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = IpNet::from_str(item)
                .or_else(|_| IpAddr::from_str(item).map(IpNet::from))
                .map_err(|_| format!("SWITCHBOARD_TRUSTED_PROXIES: {item:?} is not an address or a CIDR"))?;
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The client as the server believes it: its address, and the scheme and host it used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    /// `https` or `http` as the trusted proxy said; `None` for a direct connection.
    pub proto: Option<String>,
}

impl Default for Client {
    fn default() -> Client {
        Client { ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED), proto: None }
    }
}

/// Works out the client of a request that came from `peer`, and leaves in `headers` only the
/// forwarded headers that may be believed: from an untrusted peer they are all removed; from a
/// trusted one `X-Forwarded-Host` becomes the `Host` the origin checks compare with.
pub fn resolve(peer: Option<SocketAddr>, headers: &mut HeaderMap, trusted: &TrustedProxies) -> Client {
    let peer_ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip().to_canonical());
    if !trusted.trusts(peer_ip) {
        for name in [FORWARDED_FOR, FORWARDED_PROTO, FORWARDED_HOST] {
            headers.remove(name);
        }
        return Client { ip: peer_ip, proto: None };
    }
    let ip = forwarded_client(headers, trusted).unwrap_or(peer_ip);
    let proto =
        first_value(headers, FORWARDED_PROTO).map(|p| p.to_ascii_lowercase()).filter(|p| p == "https" || p == "http");
    if let Some(host) = first_value(headers, FORWARDED_HOST).and_then(|h| HeaderValue::from_str(&h).ok()) {
        headers.insert(header::HOST, host);
    }
    Client { ip, proto }
}

/// The client in `X-Forwarded-For`: the rightmost address that is not a trusted proxy (each
/// proxy appends the address it heard from; anything left of the first untrusted one could
/// be made up by the client).
fn forwarded_client(headers: &HeaderMap, trusted: &TrustedProxies) -> Option<IpAddr> {
    let chain: Vec<IpAddr> = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| parse_ip(s.trim()))
        .collect::<Option<Vec<_>>>()?;
    chain.iter().rev().find(|ip| !trusted.trusts(**ip)).or(chain.first()).copied()
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:5678`.
fn parse_ip(s: &str) -> Option<IpAddr> {
    IpAddr::from_str(s).ok().or_else(|| SocketAddr::from_str(s).ok().map(|a| a.ip())).map(|ip| ip.to_canonical())
}

fn first_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?;
    let first = v.split(',').next()?.trim();
    (!first.is_empty()).then(|| first.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn untrusted_peers_cannot_forward() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let mut h = headers(&[(FORWARDED_FOR, "1.2.3.4"), (FORWARDED_HOST, "evil.example"), ("host", "inbox.example")]);
        let c = resolve(Some("192.0.2.1:5000".parse().unwrap()), &mut h, &trusted);
        assert_eq!(c.ip, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert!(h.get(FORWARDED_FOR).is_none() && h.get(FORWARDED_HOST).is_none());
        assert_eq!(h.get("host").unwrap(), "inbox.example");
    }

    #[test]
    fn trusted_proxies_name_the_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, ::1").unwrap();
        let mut h = headers(&[
            (FORWARDED_FOR, "6.6.6.6, 203.0.113.9"),
            (FORWARDED_FOR, "10.1.1.1"),
            (FORWARDED_PROTO, "HTTPS"),
            (FORWARDED_HOST, "inbox.example"),
            ("host", "backend:8080"),
        ]);
        let c = resolve(Some("10.0.0.2:5000".parse().unwrap()), &mut h, &trusted);
        // 6.6.6.6 was written by the client itself; 203.0.113.9 is who the first proxy heard.
        assert_eq!(c.ip, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(c.proto.as_deref(), Some("https"));
        assert_eq!(h.get("host").unwrap(), "inbox.example");
        // An IPv4 peer seen as an IPv6-mapped address is still the same address.
        let mut h = headers(&[(FORWARDED_FOR, "[2001:db8::7]:443")]);
        let c = resolve(Some("[::1]:1".parse().unwrap()), &mut h, &trusted);
        assert_eq!(c.ip, "2001:db8::7".parse::<IpAddr>().unwrap());
        // Garbage in the chain: the peer itself.
        let mut h = headers(&[(FORWARDED_FOR, "not-an-address")]);
        let c = resolve(Some("10.0.0.3:1".parse().unwrap()), &mut h, &trusted);
        assert_eq!(c.ip, "10.0.0.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }
}
