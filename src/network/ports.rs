//! Published ports: `-p [hostIP:][hostPort:]containerPort[/tcp|/udp]` and
//! `-P`, docker's `PortBindings` shape they are saved in, the mappings a
//! running container has, and the check that a host port is free.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error(
        "invalid port spec {0:?}: use [hostIP:][hostPort:]containerPort[/tcp|/udp] (port ranges are not supported)"
    )]
    BadSpec(String),
    #[error("invalid port {port:?} in {spec:?}: use a number from 1 to 65535")]
    BadPort { spec: String, port: String },
    #[error("invalid host address {addr:?} in {spec:?}: use an IPv4 address")]
    BadHostIp { spec: String, addr: String },
    #[error("invalid protocol {proto:?} in port spec {spec:?}: use tcp or udp")]
    BadProto { spec: String, proto: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// What `-p` asked for. None for the host address means all of the host's
/// addresses; None for the host port means one chosen at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub proto: Proto,
}

fn port(spec: &str, s: &str) -> Result<u16, Error> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Error::BadPort {
            spec: spec.to_string(),
            port: s.to_string(),
        }),
    }
}

/// `80/tcp` (docker's key of ExposedPorts and PortBindings); `80` is tcp.
pub fn parse_port_proto(spec: &str, s: &str) -> Result<(u16, Proto), Error> {
    let (p, proto) = match s.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (s, "tcp"),
    };
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => {
            return Err(Error::BadProto {
                spec: spec.to_string(),
                proto: proto.to_string(),
            });
        }
    };
    Ok((port(spec, p)?, proto))
}

impl FromStr for PortSpec {
    type Err = Error;

    fn from_str(spec: &str) -> Result<PortSpec, Error> {
        if spec.contains('-') || spec.is_empty() || spec.contains('[') {
            return Err(Error::BadSpec(spec.to_string()));
        }
        let parts: Vec<&str> = spec.split(':').collect();
        let (ip, hp, cp) = match parts.as_slice() {
            [cp] => (None, None, *cp),
            [hp, cp] => (None, Some(*hp), *cp),
            [ip, hp, cp] => (Some(*ip), Some(*hp), *cp),
            _ => return Err(Error::BadSpec(spec.to_string())),
        };
        let host_ip = match ip {
            None | Some("") => None,
            Some(a) => Some(a.parse::<Ipv4Addr>().map_err(|_| Error::BadHostIp {
                spec: spec.to_string(),
                addr: a.to_string(),
            })?),
        }
        // 0.0.0.0 is docker's spelling of "every address".
        .filter(|a| !a.is_unspecified());
        let host_port = match hp {
            None | Some("") => None,
            Some(p) => Some(port(spec, p)?),
        };
        let (container_port, proto) = parse_port_proto(spec, cp)?;
        Ok(PortSpec {
            host_ip,
            host_port,
            container_port,
            proto,
        })
    }
}

/// One host binding in docker's shape: `{"HostIp": "", "HostPort": "8080"}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// docker's `PortBindings`: "80/tcp" → the host bindings of that port.
pub type PortBindings = BTreeMap<String, Vec<HostBinding>>;

/// Adds specs to a `PortBindings` map.
pub fn to_bindings(specs: &[PortSpec]) -> PortBindings {
    let mut out = PortBindings::new();
    for s in specs {
        out.entry(format!("{}/{}", s.container_port, s.proto))
            .or_default()
            .push(HostBinding {
                host_ip: s.host_ip.map(|a| a.to_string()).unwrap_or_default(),
                host_port: s.host_port.map(|p| p.to_string()).unwrap_or_default(),
            });
    }
    out
}

/// What a container publishes: its `PortBindings`, plus with `-P` every
/// port of the image's `ExposedPorts` that has no binding yet (on a port
/// chosen at start).
pub fn specs(
    bindings: &PortBindings,
    publish_all: bool,
    exposed: impl IntoIterator<Item = String>,
) -> Result<Vec<PortSpec>, Error> {
    let mut out = Vec::new();
    for (key, hosts) in bindings {
        for h in hosts {
            let spec = match (h.host_ip.as_str(), h.host_port.as_str()) {
                ("", "") => key.clone(),
                ("", p) => format!("{p}:{key}"),
                (ip, p) => format!("{ip}:{p}:{key}"),
            };
            out.push(spec.parse()?);
        }
    }
    if publish_all {
        for key in exposed {
            let (container_port, proto) = parse_port_proto(&key, &key)?;
            if !out
                .iter()
                .any(|s: &PortSpec| s.container_port == container_port && s.proto == proto)
            {
                out.push(PortSpec {
                    host_ip: None,
                    host_port: None,
                    container_port,
                    proto,
                });
            }
        }
    }
    Ok(out)
}

/// A published port of a running container: the host side decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// 0.0.0.0: all of the host's addresses.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl Mapping {
    /// Whether two mappings want the same host port.
    pub fn clashes(&self, other: &Mapping) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && (self.host_ip == other.host_ip
                || self.host_ip.is_unspecified()
                || other.host_ip.is_unspecified())
    }
}

impl fmt::Display for Mapping {
    /// As `docker ps` shows it: `0.0.0.0:8080->80/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip, self.host_port, self.container_port, self.proto
        )
    }
}

/// Binds the host port (or, for port 0, a free one the kernel picks) for a
/// moment: a port some process holds is refused. Returns the port.
pub fn probe(ip: Ipv4Addr, port: u16, proto: Proto) -> std::io::Result<u16> {
    let addr = SocketAddrV4::new(ip, port);
    match proto {
        Proto::Tcp => Ok(TcpListener::bind(addr)?.local_addr()?.port()),
        Proto::Udp => Ok(UdpSocket::bind(addr)?.local_addr()?.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PortSpec {
        s.parse().unwrap()
    }

    #[test]
    fn parses_docker_port_specs() {
        assert_eq!(
            p("8080:80"),
            PortSpec {
                host_ip: None,
                host_port: Some(8080),
                container_port: 80,
                proto: Proto::Tcp
            }
        );
        assert_eq!(
            p("127.0.0.1:5353:53/udp"),
            PortSpec {
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: Some(5353),
                container_port: 53,
                proto: Proto::Udp
            }
        );
        assert_eq!(p("80").host_port, None);
        assert_eq!(p("80/UDP").proto, Proto::Udp);
        assert_eq!(p("127.0.0.1::80").host_port, None);
        assert_eq!(p("0.0.0.0:80:80").host_ip, None);
        for bad in [
            "",
            "x",
            "0",
            "65536",
            "1:2:3:4",
            "80/sctp",
            "1-5:1-5",
            "a.b:1:2",
            "::1:80:80",
            ":",
        ] {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            "80/sctp".parse::<PortSpec>().unwrap_err().to_string(),
            "invalid protocol \"sctp\" in port spec \"80/sctp\": use tcp or udp"
        );
    }

    #[test]
    fn bindings_round_trip_and_publish_all() {
        let specs_in = vec![p("8080:80"), p("127.0.0.1::53/udp"), p("90")];
        let b = to_bindings(&specs_in);
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            serde_json::json!({
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                "90/tcp": [{"HostIp": "", "HostPort": ""}],
            })
        );
        let mut back = specs(&b, false, vec![]).unwrap();
        back.sort_by_key(|s| s.container_port);
        let mut want = specs_in.clone();
        want.sort_by_key(|s| s.container_port);
        assert_eq!(back, want);
        // -P adds exposed ports that have no binding yet.
        let all = specs(
            &b,
            true,
            vec!["80/tcp".into(), "443/tcp".into(), "53/tcp".into()],
        )
        .unwrap();
        assert_eq!(all.len(), 5);
        assert!(
            all.iter()
                .any(|s| s.container_port == 443 && s.host_port.is_none())
        );
        assert!(
            all.iter()
                .any(|s| s.container_port == 53 && s.proto == Proto::Tcp)
        );
        assert_eq!(all.iter().filter(|s| s.container_port == 80).count(), 1);
    }

    #[test]
    fn clashes() {
        let m = |ip: [u8; 4], port, proto| Mapping {
            host_ip: Ipv4Addr::from(ip),
            host_port: port,
            container_port: 80,
            proto,
        };
        assert!(m([0, 0, 0, 0], 80, Proto::Tcp).clashes(&m([127, 0, 0, 1], 80, Proto::Tcp)));
        assert!(!m([0, 0, 0, 0], 80, Proto::Tcp).clashes(&m([0, 0, 0, 0], 80, Proto::Udp)));
        assert!(!m([127, 0, 0, 1], 80, Proto::Tcp).clashes(&m([192, 0, 2, 2], 80, Proto::Tcp)));
        assert_eq!(
            m([0, 0, 0, 0], 8080, Proto::Tcp).to_string(),
            "0.0.0.0:8080->80/tcp"
        );
    }
}
