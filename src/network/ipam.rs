//! Addresses: IPv4 subnets, the choice of a subnet that collides with
//! nothing on the host, and the allocation of container addresses. Pure:
//! the callers pass in the host's routes and what is already taken.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("invalid subnet {0:?}: use an IPv4 CIDR such as 10.90.0.0/16")]
    BadSubnet(String),
    #[error("invalid subnet {0}: the prefix must be between /8 and /30")]
    BadPrefix(String),
    #[error("invalid subnet {given}: host bits are set (did you mean {canonical}?)")]
    HostBits { given: String, canonical: String },
    #[error("no free subnet: every candidate in {first}..{last} overlaps a host route or network")]
    NoFreeSubnet { first: Ipv4Net, last: Ipv4Net },
    #[error("no free address left in subnet {0}")]
    Exhausted(Ipv4Net),
}

/// An IPv4 network: address (host bits clear) and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// The network of `addr/prefix` (host bits cleared).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Ipv4Net {
        let prefix = prefix.min(32);
        Ipv4Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn first(&self) -> u32 {
        u32::from(self.addr)
    }

    fn last(&self) -> u32 {
        self.first() | !mask(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.first()
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// The first host address, which the bridge takes as the gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + 1)
    }

    /// Addresses for containers: all hosts but the gateway (no network or
    /// broadcast address).
    fn container_range(&self) -> (u32, u32) {
        (self.first() + 2, self.last() - 1)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = Error;

    /// A subnet a user gives: `a.b.c.d/n` with no host bits set and a
    /// prefix that leaves room for a gateway and containers.
    fn from_str(s: &str) -> Result<Ipv4Net, Error> {
        let bad = || Error::BadSubnet(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(Error::BadPrefix(s.to_string()));
        }
        let net = Ipv4Net::new(addr, prefix);
        if net.addr != addr {
            return Err(Error::HostBits {
                given: s.to_string(),
                canonical: net.to_string(),
            });
        }
        Ok(net)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where automatic subnets come from: 10.88.0.0/16, 10.89.0.0/16, …,
/// 10.127.0.0/16 (podman's default is the first).
pub fn candidates() -> impl Iterator<Item = Ipv4Net> {
    (88u8..=127).map(|b| Ipv4Net::new(Ipv4Addr::new(10, b, 0, 0), 16))
}

/// The first candidate that overlaps none of `taken` (the host's routes
/// and the subnets of other networks) and contains none of `avoid` (the
/// host's nameservers, which are reached through the default route and so
/// are in no route of their own). Default routes are ignored.
pub fn choose_subnet(
    candidates: impl IntoIterator<Item = Ipv4Net>,
    taken: &[Ipv4Net],
    avoid: &[Ipv4Addr],
) -> Result<Ipv4Net, Error> {
    let all: Vec<Ipv4Net> = candidates.into_iter().collect();
    all.iter()
        .find(|c| {
            !taken.iter().any(|t| t.prefix > 0 && t.overlaps(c))
                && !avoid.iter().any(|a| c.contains(*a))
        })
        .copied()
        .ok_or(Error::NoFreeSubnet {
            first: all.first().copied().unwrap_or(Ipv4Net::new(0.into(), 0)),
            last: all.last().copied().unwrap_or(Ipv4Net::new(0.into(), 0)),
        })
}

/// The lowest free container address of `net`, after `after` if given
/// (allocation goes round the subnet so a just-freed address is not handed
/// out again at once: a stale ARP entry or connection of the old owner
/// then reaches nobody rather than the new one).
pub fn allocate(
    net: &Ipv4Net,
    in_use: &BTreeSet<Ipv4Addr>,
    after: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, Error> {
    let (lo, hi) = net.container_range();
    if lo > hi {
        return Err(Error::Exhausted(*net));
    }
    let start = match after {
        Some(a) if net.contains(a) && u32::from(a) >= lo && u32::from(a) < hi => u32::from(a) + 1,
        _ => lo,
    };
    (start..=hi)
        .chain(lo..start)
        .map(Ipv4Addr::from)
        .find(|ip| !in_use.contains(ip))
        .ok_or(Error::Exhausted(*net))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_checks_subnets() {
        assert_eq!(net("10.90.0.0/16").to_string(), "10.90.0.0/16");
        assert_eq!(
            net("192.168.5.0/24").gateway(),
            Ipv4Addr::new(192, 168, 5, 1)
        );
        assert!(matches!(
            "10.90.0.1/16".parse::<Ipv4Net>(),
            Err(Error::HostBits { canonical, .. }) if canonical == "10.90.0.0/16"
        ));
        assert!(matches!(
            "10.0.0.0/31".parse::<Ipv4Net>(),
            Err(Error::BadPrefix(_))
        ));
        assert!(matches!(
            "10.0.0.0".parse::<Ipv4Net>(),
            Err(Error::BadSubnet(_))
        ));
        assert!(matches!(
            "fd00::/64".parse::<Ipv4Net>(),
            Err(Error::BadSubnet(_))
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<Ipv4Net>(),
            Err(Error::BadSubnet(_))
        ));
        let j = serde_json::to_string(&net("10.1.0.0/16")).unwrap();
        assert_eq!(j, "\"10.1.0.0/16\"");
        assert_eq!(
            serde_json::from_str::<Ipv4Net>(&j).unwrap(),
            net("10.1.0.0/16")
        );
    }

    #[test]
    fn overlap() {
        assert!(net("10.0.0.0/8").overlaps(&net("10.88.0.0/16")));
        assert!(net("10.88.0.0/16").overlaps(&net("10.88.3.0/24")));
        assert!(!net("10.88.0.0/16").overlaps(&net("10.89.0.0/16")));
        assert!(net("10.88.0.0/16").contains(Ipv4Addr::new(10, 88, 255, 255)));
        assert!(!net("10.88.0.0/16").contains(Ipv4Addr::new(10, 89, 0, 0)));
    }

    #[test]
    fn subnet_avoids_routes_networks_and_nameservers() {
        // This host: 192.0.2.0/24 on eth0 and a default route.
        let host = [Ipv4Net::new(0.into(), 0), net("192.0.2.0/24")];
        assert_eq!(
            choose_subnet(candidates(), &host, &[]).unwrap(),
            net("10.88.0.0/16")
        );
        let taken = [
            net("10.88.0.0/16"),
            net("10.89.4.0/24"),
            Ipv4Net::new(0.into(), 0),
        ];
        assert_eq!(
            choose_subnet(candidates(), &taken, &[Ipv4Addr::new(10, 90, 0, 53)]).unwrap(),
            net("10.91.0.0/16")
        );
        // A VPN route over all of 10/8 leaves nothing.
        assert!(matches!(
            choose_subnet(candidates(), &[net("10.0.0.0/8")], &[]),
            Err(Error::NoFreeSubnet { .. })
        ));
    }

    #[test]
    fn allocation_skips_gateway_and_used_and_goes_round() {
        let n = net("10.88.0.0/29"); // .0 net, .1 gw, .2-.6 containers, .7 bcast
        let mut used = BTreeSet::new();
        let a = allocate(&n, &used, None).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 88, 0, 2));
        used.insert(a);
        let b = allocate(&n, &used, Some(a)).unwrap();
        assert_eq!(b, Ipv4Addr::new(10, 88, 0, 3));
        used.insert(b);
        // .2 freed: the next one still goes forward.
        used.remove(&a);
        assert_eq!(
            allocate(&n, &used, Some(b)).unwrap(),
            Ipv4Addr::new(10, 88, 0, 4)
        );
        // Wraps round to the start when the end is reached.
        assert_eq!(
            allocate(&n, &used, Some(Ipv4Addr::new(10, 88, 0, 6))).unwrap(),
            Ipv4Addr::new(10, 88, 0, 2)
        );
        for i in 2..=6 {
            used.insert(Ipv4Addr::new(10, 88, 0, i));
        }
        assert_eq!(allocate(&n, &used, None), Err(Error::Exhausted(n)));
    }

    #[test]
    fn allocation_never_hands_out_an_address_twice() {
        let n = net("10.88.0.0/24");
        let mut used = BTreeSet::new();
        let mut last = None;
        // Fill, free every third, fill again: no duplicates at any time.
        for round in 0..3 {
            loop {
                match allocate(&n, &used, last) {
                    Ok(ip) => {
                        assert!(used.insert(ip), "{ip} handed out twice (round {round})");
                        assert!(n.contains(ip) && ip != n.gateway());
                        last = Some(ip);
                    }
                    Err(Error::Exhausted(_)) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(used.len(), 253);
            let freed: Vec<_> = used.iter().copied().step_by(3).collect();
            for f in freed {
                used.remove(&f);
            }
        }
    }
}
