//! Sources a portal wrote (harvested datasets) are untrusted URLs: a catalog entry pointing at
//! `http://127.0.0.1:…`, `http://169.254.169.254/…` or an intranet host would make qanat fetch
//! and publish what it can reach but the public cannot (SSRF). Before connecting, such a
//! source's host is resolved and only public addresses are used — the check runs in the HTTP
//! client's resolver, so it applies to every redirect too (at most 5), and to the address
//! actually connected to — unless the operator allows private sources.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Redirects followed at most for an untrusted source.
pub const MAX_REDIRECTS: usize = 5;

/// Whether an address is reachable from the public Internet: not loopback, private, link-local,
/// shared (CGNAT), documentation, benchmarking, multicast, broadcast, reserved or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x64 && s[1] == 0xff9b)) // NAT64: an IPv4 address behind
}

/// Why a URL's host is refused before any lookup: a literal address that is not public.
pub fn check_literal(url: &url::Url) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if is_public(ip) {
        Ok(())
    } else {
        Err(refusal(&ip.to_string()))
    }
}

fn refusal(host: &str) -> String {
    format!(
        "the harvested source's host `{host}` is not a public address (loopback, private, link-local or reserved); qanat fetches harvested sources from public hosts only, unless started with --allow-private-sources"
    )
}

/// A resolver that hands the HTTP client a host's public addresses only, and refuses a host
/// that has none.
#[derive(Debug, Default)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(refusal(&host).into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// The redirect policy of an untrusted source: at most [`MAX_REDIRECTS`]; with `check`, none
/// to a literal address that is not public (host names are checked by [`PublicOnly`] when
/// connecting).
pub fn redirects(check: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            let error = format!("more than {MAX_REDIRECTS} redirects");
            return attempt.error(error);
        }
        match check_literal(attempt.url()) {
            Err(e) if check => attempt.error(e),
            _ => attempt.follow(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tests name loopback addresses only: the ranges beyond are the standard library's tests.
    #[test]
    fn loopback_is_refused_in_every_spelling() {
        for private in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        let literal = url::Url::parse("http://[::1]:8080/x.csv").unwrap();
        assert!(check_literal(&literal).unwrap_err().contains("`::1`"));
        let literal = url::Url::parse("http://127.0.0.1/x.csv").unwrap();
        assert!(check_literal(&literal).is_err());
        let named = url::Url::parse("http://localhost/x.csv").unwrap();
        assert!(
            check_literal(&named).is_ok(),
            "names are checked when resolved"
        );
    }
}
