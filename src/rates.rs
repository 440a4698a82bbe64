//! Rate limits per client: each client address has a bucket of `server.rate_burst` requests
//! refilled at `server.rate_limit` a second (GCRA, by `governor`); a request over it answers
//! `429` with `Retry-After`, and every limited response says where the client stands in
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.
//!
//! The client is the peer of the connection, unless the peer is one of `server.trusted_proxies`:
//! then it is the address that proxy (and any trusted proxy before it) says it forwarded for,
//! read from the right of `Forwarded` or `X-Forwarded-For`. Headers from anyone else are
//! ignored, since any client can write them. IPv6 clients are counted by their /64, the block
//! one subscriber gets.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderValue};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use ipnet::IpNet;

use crate::config::ServerSettings;
use crate::error::Error;

type Limiter =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

/// Clients' buckets and who may speak for a client.
pub struct Rates {
    limiter: Limiter,
    clock: DefaultClock,
    burst: u32,
    per_second: u32,
    proxies: Vec<IpNet>,
    checks: AtomicU64,
    limited: AtomicU64,
}

/// Checks between sweeps of the buckets of clients that went quiet (their bucket is full
/// again, so forgetting it changes nothing).
const SWEEP_EVERY: u64 = 4096;

/// Where a client stands after a request was let through.
#[derive(Debug)]
pub struct Standing {
    limit: u32,
    remaining: u32,
    reset: u64,
}

impl Rates {
    /// The limits of the settings; `None` when `rate_limit` is 0 (off).
    pub fn new(settings: &ServerSettings) -> Option<Self> {
        let per_second = NonZeroU32::new(settings.rate_limit)?;
        let burst = NonZeroU32::new(settings.rate_burst).unwrap_or(per_second);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Some(Rates {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            clock: DefaultClock::default(),
            burst: burst.get(),
            per_second: per_second.get(),
            proxies: settings.proxies(),
            checks: AtomicU64::new(0),
            limited: AtomicU64::new(0),
        })
    }

    /// Takes one request from the client's bucket: where it stands, or `429` with when to
    /// come back.
    pub fn check(&self, client: IpAddr) -> Result<Standing, Error> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(&bucket(client)) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                // A request's worth refills every 1/rate seconds: the bucket is full again
                // after that many.
                let used = u64::from(self.burst - remaining.min(self.burst));
                Ok(Standing {
                    limit: self.burst,
                    remaining,
                    reset: used.div_ceil(u64::from(self.per_second)),
                })
            }
            Err(not_until) => {
                self.limited.fetch_add(1, Ordering::Relaxed);
                let wait = not_until.wait_time_from(self.clock.now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let secs = secs.max(1);
                Err(Error::RateLimited {
                    detail: format!(
                        "more than {} requests a second (bursts of {}) from {client}; try again in {secs} s",
                        self.per_second, self.burst
                    ),
                    retry_after: secs,
                })
            }
        }
    }

    /// Where a client refused for `retry_after` seconds stands: nothing left until then.
    pub fn exhausted(&self, retry_after: u64) -> Standing {
        Standing {
            limit: self.burst,
            remaining: 0,
            reset: retry_after,
        }
    }

    /// Requests answered `429` since the start.
    pub fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    /// Clients with a bucket now.
    pub fn clients(&self) -> usize {
        self.limiter.len()
    }

    /// The client a request is counted for: the peer, or whom trusted proxies forwarded for.
    pub fn client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        let peer = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| canonical(p.ip()));
        if !self.trusted(peer) {
            return peer;
        }
        // Right to left: each trusted hop names the one before it; the first address that is
        // not a trusted proxy is the client.
        let mut client = peer;
        for hop in forwarded_for(headers).into_iter().rev() {
            client = hop;
            if !self.trusted(hop) {
                break;
            }
        }
        client
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|net| net.contains(&ip))
    }
}

impl Standing {
    /// The `RateLimit-*` headers.
    pub fn write(&self, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset));
    }
}

/// Routes a monitor polls: never limited (nor shed, since they run no query).
pub fn unlimited(path: &str) -> bool {
    matches!(path, "/health" | "/health/" | "/metrics")
}

/// IPv4 clients by address, IPv6 clients by their /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// An IPv4 address mapped into IPv6 (a dual-stack socket's peers) as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The addresses a request was forwarded for, first hop first: RFC 7239 `Forwarded: for=`,
/// else `X-Forwarded-For`. Obfuscated names (`for=_hidden`, `unknown`) end the list there.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let values = |name| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let forwarded: Vec<&str> = values("forwarded")
        .into_iter()
        .filter_map(|element| {
            element.split(';').map(str::trim).find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
            })
        })
        .collect();
    let hops = if forwarded.is_empty() {
        values("x-forwarded-for")
    } else {
        forwarded
    };
    let mut out = Vec::new();
    for hop in hops {
        match parse_hop(hop) {
            Some(ip) => out.push(canonical(ip)),
            // What follows an unreadable hop cannot be tied to the client.
            None => out.clear(),
        }
    }
    out
}

/// `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let t = text.trim_matches('"');
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    t.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(proxies: &str) -> Rates {
        let settings = ServerSettings {
            rate_limit: 2,
            rate_burst: 3,
            trusted_proxies: proxies.into(),
            ..ServerSettings::default()
        };
        Rates::new(&settings).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let peer = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let xff = headers(&[("x-forwarded-for", "203.0.113.9, 10.0.0.7")]);
        // Nobody trusted: the header is anyone's to write.
        assert_eq!(
            rates("").client(peer("198.51.100.1:5000"), &xff),
            ip("198.51.100.1")
        );
        let r = rates("10.0.0.0/8, 127.0.0.1");
        // From a trusted proxy, past the trusted hops, to the first untrusted one.
        assert_eq!(r.client(peer("127.0.0.1:5000"), &xff), ip("203.0.113.9"));
        // From an untrusted peer: the peer.
        assert_eq!(
            r.client(peer("198.51.100.1:5000"), &xff),
            ip("198.51.100.1")
        );
        // A client's own spoofed entry on the left is not believed past an untrusted hop.
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9")]);
        assert_eq!(r.client(peer("127.0.0.1:1"), &spoofed), ip("203.0.113.9"));
        let fwd = headers(&[(
            "forwarded",
            "for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.1.2.3",
        )]);
        assert_eq!(r.client(peer("10.0.0.1:1"), &fwd), ip("2001:db8:cafe::17"));
        // Forwarded wins over X-Forwarded-For; garbage leaves the trusted peer.
        let both = headers(&[
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-for", "1.1.1.1"),
        ]);
        assert_eq!(r.client(peer("10.0.0.1:1"), &both), ip("192.0.2.60"));
        let junk = headers(&[("x-forwarded-for", "not-an-address")]);
        assert_eq!(r.client(peer("10.0.0.1:1"), &junk), ip("10.0.0.1"));
        // An IPv4 peer on a dual-stack socket.
        assert_eq!(
            rates("").client(peer("[::ffff:198.51.100.1]:80"), &HeaderMap::new()),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_burst_then_429_with_when_to_return_and_ipv6_by_block() {
        let r = rates("");
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let remaining: Vec<u32> = (0..3).map(|_| r.check(a).unwrap().remaining).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let e = r.check(a).unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after(), Some(1));
        assert_eq!(r.limited(), 1);
        // Another client has its own bucket; the same /64 shares one.
        assert!(r.check("198.51.100.2".parse().unwrap()).is_ok());
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        for _ in 0..3 {
            r.check(v6("2001:db8:1:2::1")).unwrap();
        }
        assert!(r.check(v6("2001:db8:1:2::ffff")).is_err());
        assert!(r.check(v6("2001:db8:1:3::1")).is_ok());
    }
}
