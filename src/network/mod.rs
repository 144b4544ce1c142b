//! Container networking, done by the engine (as podman does with netavark):
//! `berth-runtime` only joins the namespace the OCI config names.
//!
//! - `none`: a namespace of its own with `lo` up.
//! - bridge networks (the default `bridge` on `berth0`, and user-defined
//!   ones): a bridge with the subnet's first address, made when its first
//!   container starts and removed when its last one stops; per container an
//!   address from [`ipam`], a veth pair (host end on the bridge, `eth0`
//!   inside), a default route, outbound NAT and published ports in the
//!   network's own nftables table ([`nft`]).
//! - Names: on user-defined networks every container's `/etc/hosts` lists
//!   the others ([`hosts`]), rewritten as they come and go.
//! - Published ports answer on 127.0.0.1 too: an OUTPUT-hook DNAT plus
//!   `route_localnet` on the bridge (see [`nft`]).
//!
//! Every change happens under one lock with an [`state::Attachment`]
//! recorded before anything is made, so a failed start or a crashed
//! process is undone from that record ([`Networks::detach`]).

pub mod hosts;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod nft;
pub mod ports;
pub mod state;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipam::Ipv4Net;
use link::Netlink;
use ports::{Mapping, PortSpec};
use state::{Attachment, Bridge, Network, State};

/// The network a container gets when none is named.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default network's bridge unless its definition says otherwise.
pub const DEFAULT_BRIDGE: &str = "berth0";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Link(#[from] link::Error),
    #[error(transparent)]
    Netns(#[from] netns::Error),
    #[error(transparent)]
    Nft(#[from] nft::Error),
    #[error(transparent)]
    Ipam(#[from] ipam::Error),
    #[error(transparent)]
    Ports(#[from] ports::Error),
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("invalid network name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error("{0} is a predefined network and cannot be created or removed")]
    Predefined(String),
    #[error("invalid network mode {0:?}: use none, host, bridge, container:NAME or a network name")]
    BadMode(String),
    #[error("network {name} has active endpoints: {containers}")]
    InUse { name: String, containers: String },
    #[error("subnet {subnet} of network {network} overlaps {what}")]
    Overlap {
        subnet: Ipv4Net,
        network: String,
        what: String,
    },
    #[error("cannot publish port {port}/{proto}: it is already published by container {container}")]
    PortPublished {
        port: u16,
        proto: ports::Proto,
        container: String,
    },
    #[error("cannot publish port {addr}:{port}/{proto}: {source}")]
    PortBusy {
        addr: Ipv4Addr,
        port: u16,
        proto: ports::Proto,
        source: std::io::Error,
    },
    #[error("write {path}: {source}")]
    Hosts {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("set {path}: {source}")]
    Sysctl {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// `--network`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Loopback only.
    None,
    /// The host's namespace.
    Host,
    /// A bridge network, by name.
    Bridge(String),
    /// Another container's namespace, by name or ID.
    Container(String),
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode> {
        Ok(match s {
            "" | "default" | DEFAULT_NETWORK => Mode::Bridge(DEFAULT_NETWORK.into()),
            "none" => Mode::None,
            "host" => Mode::Host,
            s => match s.strip_prefix("container:") {
                Some("") => return Err(Error::BadMode(s.into())),
                Some(c) => Mode::Container(c.into()),
                None if valid_name(s) => Mode::Bridge(s.into()),
                None => return Err(Error::BadMode(s.into())),
            },
        })
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && n.len() <= 128
}

/// The host end of a container's veth pair (15 characters, the kernel's
/// limit for interface names).
pub fn veth_name(container_id: &str) -> String {
    format!("veth{}", &container_id[..container_id.len().min(11)])
}

/// A container about to join a network.
#[derive(Clone, Debug)]
pub struct Join<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub hostname: &'a str,
    /// The container's /etc/hosts on the host (bind-mounted into it).
    pub hosts_file: &'a Path,
    pub ports: &'a [PortSpec],
}

/// The networks of an engine root.
#[derive(Clone, Debug)]
pub struct Networks {
    dir: PathBuf,
    netns_dir: PathBuf,
}

impl Networks {
    /// `dir`: ROOT/networks; `netns_dir`: where namespaces are bound.
    pub fn new(dir: &Path, netns_dir: &Path) -> Networks {
        Networks {
            dir: dir.to_path_buf(),
            netns_dir: netns_dir.to_path_buf(),
        }
    }

    fn def_path(&self, name: &str) -> PathBuf {
        self.dir.join("defs").join(format!("{name}.json"))
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The live bridges and attachments (read without the lock: the file
    /// is replaced atomically).
    pub fn state(&self) -> Result<State> {
        Ok(state::read_json(&self.state_path())?.unwrap_or_default())
    }

    fn save(&self, st: &State) -> Result<()> {
        Ok(state::write_json(&self.state_path(), st)?)
    }

    /// A container's attachment, if it has one.
    pub fn attachment(&self, id: &str) -> Option<Attachment> {
        self.state().ok()?.attachments.remove(id)
    }

    /// The definition of network `name`; the default one is made on first
    /// use (its file can be edited to choose another bridge or subnet).
    pub fn get(&self, name: &str) -> Result<Network> {
        if let Some(n) = state::read_json::<Network>(&self.def_path(name))? {
            return Ok(n);
        }
        if name != DEFAULT_NETWORK {
            return Err(Error::NotFound(name.into()));
        }
        let n = Network {
            name: DEFAULT_NETWORK.into(),
            id: new_id(),
            bridge: DEFAULT_BRIDGE.into(),
            subnet: None,
            dns: false,
            created: now(),
        };
        state::write_json(&self.def_path(name), &n)?;
        Ok(n)
    }

    /// Every defined network (the default one included).
    pub fn list(&self) -> Result<Vec<Network>> {
        let mut out = vec![self.get(DEFAULT_NETWORK)?];
        let dir = self.dir.join("defs");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(n) = name.strip_suffix(".json")
                    && n != DEFAULT_NETWORK
                    && let Ok(Some(net)) = state::read_json::<Network>(&e.path())
                {
                    out.push(net);
                }
            }
        }
        out[1..].sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `network create NAME [--subnet]`: a definition; the bridge comes
    /// with the first container.
    pub fn create(&self, name: &str, subnet: Option<Ipv4Net>) -> Result<Network> {
        if ["bridge", "host", "none", "default"].contains(&name) {
            return Err(Error::Predefined(name.into()));
        }
        if !valid_name(name) {
            return Err(Error::BadName(name.into()));
        }
        let _lock = state::lock()?;
        if self.def_path(name).exists() {
            return Err(Error::Exists(name.into()));
        }
        let others = self.list()?;
        let st = self.state()?;
        let mut taken: Vec<(Ipv4Net, String)> = Netlink::open()?
            .ipv4_routes()?
            .into_iter()
            .filter(|r| r.prefix() > 0)
            .map(|r| (r, format!("the host route {r}")))
            .collect();
        for n in &others {
            if let Some(s) = n.subnet.or(st.bridges.get(&n.name).map(|b| b.subnet)) {
                taken.push((s, format!("network {}", n.name)));
            }
        }
        let subnet = match subnet {
            Some(s) => {
                if let Some((_, what)) = taken.iter().find(|(t, _)| t.overlaps(&s)) {
                    return Err(Error::Overlap {
                        subnet: s,
                        network: name.into(),
                        what: what.clone(),
                    });
                }
                s
            }
            None => {
                let t: Vec<Ipv4Net> = taken.iter().map(|(n, _)| *n).collect();
                ipam::choose_subnet(ipam::candidates(), &t, &host_nameservers())?
            }
        };
        let id = new_id();
        let net = Network {
            name: name.into(),
            bridge: format!("br-{}", &id[..12]),
            id,
            subnet: Some(subnet),
            dns: true,
            created: now(),
        };
        state::write_json(&self.def_path(name), &net)?;
        Ok(net)
    }

    /// `network rm NAME`: refused while containers are attached.
    pub fn remove(&self, name: &str) -> Result<()> {
        if ["bridge", "host", "none", "default"].contains(&name) {
            return Err(Error::Predefined(name.into()));
        }
        let _lock = state::lock()?;
        let path = self.def_path(name);
        if !path.exists() {
            return Err(Error::NotFound(name.into()));
        }
        let st = self.state()?;
        let users: Vec<&str> = st
            .members(name)
            .map(|a| a.container_name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(Error::InUse {
                name: name.into(),
                containers: users.join(", "),
            });
        }
        std::fs::remove_file(&path).map_err(|source| state::Error::Io {
            op: "remove",
            path: path.clone(),
            source,
        })?;
        Ok(())
    }

    /// Gives container `join.id` a namespace bound under the netns dir:
    /// loopback only (`network` None), or on a bridge network. On failure
    /// nothing of it is left.
    pub fn attach(&self, network: Option<&str>, join: &Join<'_>) -> Result<Attachment> {
        let _lock = state::lock()?;
        let mut st = self.state()?;
        // A leftover of an earlier start that never finished.
        if let Some(old) = st.attachments.get(join.id).cloned() {
            let _ = self.undo(&old, &mut st);
            self.save(&st)?;
        }
        let mut att = Attachment {
            container_id: join.id.into(),
            container_name: join.name.into(),
            hostname: join.hostname.into(),
            netns: self.netns_dir.join(join.id),
            hosts_file: join.hosts_file.to_path_buf(),
            network: network.map(str::to_string),
            bridge: String::new(),
            subnet: None,
            ip: None,
            veth: String::new(),
            ports: vec![],
        };
        if let Some(name) = network {
            let def = self.get(name)?;
            let br = match self.ensure_bridge(&def, &mut st) {
                Ok(b) => b,
                Err(e) => {
                    self.save(&st)?;
                    return Err(e);
                }
            };
            att.bridge = br.bridge.clone();
            att.subnet = Some(br.subnet);
            att.veth = veth_name(join.id);
            let planned = (|| -> Result<()> {
                att.ports = resolve_ports(&st, join.ports)?;
                let used: BTreeSet<Ipv4Addr> = st
                    .members(name)
                    .filter_map(|a| a.ip)
                    .chain([br.subnet.gateway()])
                    .collect();
                let ip = ipam::allocate(&br.subnet, &used, st.last_ip.get(name).copied())?;
                att.ip = Some(ip);
                st.last_ip.insert(name.into(), ip);
                Ok(())
            })();
            if let Err(e) = planned {
                // The bridge may be new and now unused.
                self.drop_bridge_if_unused(name, &mut st);
                self.save(&st)?;
                return Err(e);
            }
        }
        // Recorded before anything is made, so whatever happens next can
        // be undone from the record.
        st.attachments.insert(join.id.into(), att.clone());
        self.save(&st)?;
        match self.plumb(&att, def_dns(self, network), &st) {
            Ok(()) => Ok(att),
            Err(e) => {
                let _ = self.undo(&att, &mut st);
                self.save(&st)?;
                Err(e)
            }
        }
    }

    fn plumb(&self, att: &Attachment, dns: bool, st: &State) -> Result<()> {
        netns::create(&att.netns)?;
        let mut inside = Netlink::open_in(&att.netns)?;
        inside.set_up("lo")?;
        let (Some(ip), Some(subnet)) = (att.ip, att.subnet) else {
            return Ok(());
        };
        let ns = std::fs::File::open(&att.netns).map_err(|e| netns::Error::Io {
            op: "open",
            path: att.netns.clone(),
            source: e,
        })?;
        let mut host = Netlink::open()?;
        host.add_veth(&att.veth, &att.bridge, "eth0", &ns)?;
        host.set_up(&att.veth)?;
        inside.add_address("eth0", ip, &subnet)?;
        inside.set_up("eth0")?;
        inside.add_default_route(subnet.gateway())?;
        nft::apply(
            &format!("publish the ports of {}", att.container_name),
            &nft::add_ports(&att.bridge, &att.container_id, ip, &att.ports),
        )?;
        self.write_hosts(att, dns, st)
    }

    /// Writes the hosts file of every container on `att`'s network (its
    /// own included).
    fn write_hosts(&self, att: &Attachment, dns: bool, st: &State) -> Result<()> {
        let Some(name) = &att.network else {
            return Ok(());
        };
        let entry = |a: &Attachment| {
            a.ip.map(|ip| hosts::Entry {
                ip,
                name: a.container_name.clone(),
                id: a.container_id.clone(),
                hostname: a.hostname.clone(),
            })
        };
        let members: Vec<&Attachment> = st.members(name).collect();
        let entries: Vec<hosts::Entry> = members.iter().filter_map(|a| entry(a)).collect();
        for a in members {
            let Some(me) = entry(a) else { continue };
            // Without names on this network only its own line changes.
            if !dns && a.container_id != att.container_id {
                continue;
            }
            let peers = if dns { &entries[..] } else { &[] };
            hosts::write_in_place(&a.hosts_file, &hosts::render(&me, peers)).map_err(|source| {
                Error::Hosts {
                    path: a.hosts_file.clone(),
                    source,
                }
            })?;
        }
        Ok(())
    }

    /// The bridge of network `def`, made (with its address, sysctls and
    /// nftables table) if it is not there.
    fn ensure_bridge(&self, def: &Network, st: &mut State) -> Result<Bridge> {
        let mut nl = Netlink::open()?;
        if let Some(b) = st.bridges.get(&def.name)
            && b.bridge == def.bridge
            && nl.link_index(&b.bridge)?.is_some()
        {
            return Ok(b.clone());
        }
        // A bridge of ours without a record (a crash) is made anew.
        nl.delete_link(&def.bridge)?;
        st.bridges.remove(&def.name);
        let routes = nl.ipv4_routes()?;
        let subnet = match def.subnet {
            Some(s) => s,
            None => {
                let mut taken: Vec<Ipv4Net> = routes.clone();
                for n in self.list()? {
                    if n.name != def.name
                        && let Some(s) = n.subnet
                    {
                        taken.push(s);
                    }
                }
                ipam::choose_subnet(ipam::candidates(), &taken, &host_nameservers())?
            }
        };
        if let Some(r) = routes
            .iter()
            .find(|r| r.prefix() > 0 && r.overlaps(&subnet))
        {
            return Err(Error::Overlap {
                subnet,
                network: def.name.clone(),
                what: format!("the host route {r}"),
            });
        }
        let made = (|| -> Result<()> {
            nl.add_bridge(&def.bridge)?;
            nl.add_address(&def.bridge, subnet.gateway(), &subnet)?;
            nl.set_up(&def.bridge)?;
            // Published ports on 127.0.0.1: DNAT'd packets from loopback
            // may leave through this bridge only with route_localnet.
            sysctl(
                &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", def.bridge),
                "1",
            )?;
            // Routing between the bridge and the world (host-wide, as
            // docker and podman do; left on when we are done).
            sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
            nft::apply(
                &format!("create the table of network {}", def.name),
                &nft::network_table(&def.bridge, &subnet),
            )?;
            Ok(())
        })();
        if let Err(e) = made {
            let _ = nft::apply("delete table", &nft::delete_table(&def.bridge));
            let _ = nl.delete_link(&def.bridge);
            return Err(e);
        }
        let b = Bridge {
            bridge: def.bridge.clone(),
            subnet,
        };
        st.bridges.insert(def.name.clone(), b.clone());
        Ok(b)
    }

    /// The bridge and table of network `name` go when no container uses it.
    fn drop_bridge_if_unused(&self, name: &str, st: &mut State) -> Option<Error> {
        if st.members(name).next().is_some() {
            return None;
        }
        let b = st.bridges.remove(name)?;
        let mut first = None;
        if let Err(e) = nft::table_exists(&b.bridge).and_then(|exists| {
            if exists {
                nft::apply("delete table", &nft::delete_table(&b.bridge))
            } else {
                Ok(())
            }
        }) {
            first.get_or_insert(e.into());
        }
        if let Err(e) = Netlink::open().and_then(|mut nl| nl.delete_link(&b.bridge)) {
            first.get_or_insert(e.into());
        }
        first
    }

    /// Undoes `att` as far as it got; carries on past failures and returns
    /// the first.
    fn undo(&self, att: &Attachment, st: &mut State) -> Result<()> {
        let mut first: Option<Error> = None;
        if !att.bridge.is_empty() {
            let rules = nft::list_chain(&att.bridge, nft::PORTS_CHAIN).and_then(|listing| {
                let handles = listing
                    .map(|l| nft::rule_handles(&l, &nft::container_comment(&att.container_id)))
                    .unwrap_or_default();
                nft::apply(
                    &format!("unpublish the ports of {}", att.container_name),
                    &nft::delete_rules(&att.bridge, nft::PORTS_CHAIN, &handles),
                )
            });
            if let Err(e) = rules {
                first.get_or_insert(e.into());
            }
            // Deleting the host end takes eth0 with it, at once (a
            // namespace's own teardown is asynchronous).
            if let Err(e) = Netlink::open().and_then(|mut nl| nl.delete_link(&att.veth)) {
                first.get_or_insert(e.into());
            }
        }
        if let Err(e) = netns::remove(&att.netns) {
            first.get_or_insert(e.into());
        }
        st.attachments.remove(&att.container_id);
        if let Some(name) = &att.network {
            if let Some(e) = self.drop_bridge_if_unused(name, st) {
                first.get_or_insert(e);
            } else if st.members(name).next().is_some() {
                let dns = def_dns(self, Some(name));
                if let Some(other) = st.members(name).next().cloned()
                    && let Err(e) = self.write_hosts(&other, dns, st)
                {
                    first.get_or_insert(e);
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Takes container `id` off its network: rules, veth, namespace,
    /// address, and the bridge if it was the last. Ok if it has nothing.
    pub fn detach(&self, id: &str) -> Result<()> {
        // Cheap when there is nothing to do: no lock taken.
        if !self.state()?.attachments.contains_key(id) {
            return Ok(());
        }
        let _lock = state::lock()?;
        let mut st = self.state()?;
        let Some(att) = st.attachments.get(id).cloned() else {
            return Ok(());
        };
        let r = self.undo(&att, &mut st);
        self.save(&st)?;
        r
    }
}

fn def_dns(nets: &Networks, network: Option<&str>) -> bool {
    network
        .and_then(|n| nets.get(n).ok())
        .is_some_and(|d| d.dns)
}

/// Host ports for `specs`: given ones checked (not published by another
/// container of ours, not held by a process), missing ones picked free.
fn resolve_ports(st: &State, specs: &[PortSpec]) -> Result<Vec<Mapping>> {
    let mut out: Vec<Mapping> = Vec::new();
    let ours = |m: &Mapping, out: &[Mapping]| -> Option<String> {
        st.attachments
            .values()
            .find(|a| a.ports.iter().any(|p| p.clashes(m)))
            .map(|a| a.container_name.clone())
            .or_else(|| out.iter().any(|p| p.clashes(m)).then(|| "itself".into()))
    };
    for s in specs {
        let host_ip = s.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let mut m = Mapping {
            host_ip,
            host_port: s.host_port.unwrap_or(0),
            container_port: s.container_port,
            proto: s.proto,
        };
        let busy = |port: u16, source| Error::PortBusy {
            addr: host_ip,
            port,
            proto: s.proto,
            source,
        };
        if m.host_port != 0 {
            if let Some(c) = ours(&m, &out) {
                return Err(Error::PortPublished {
                    port: m.host_port,
                    proto: m.proto,
                    container: c,
                });
            }
            ports::probe(host_ip, m.host_port, m.proto).map_err(|e| busy(m.host_port, e))?;
        } else {
            let mut tries = 0;
            loop {
                m.host_port = ports::probe(host_ip, 0, m.proto).map_err(|e| busy(0, e))?;
                if ours(&m, &out).is_none() {
                    break;
                }
                tries += 1;
                if tries > 64 {
                    return Err(busy(0, std::io::Error::other("no free port found")));
                }
            }
        }
        out.push(m);
    }
    Ok(out)
}

fn sysctl(path: &str, value: &str) -> Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|source| Error::Sysctl {
        path: path.into(),
        source,
    })
}

/// The host's nameservers (IPv4): an automatic subnet must not hide them.
fn host_nameservers() -> Vec<Ipv4Addr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

fn new_id() -> String {
    let mut b = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    hex::encode(b)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(Mode::parse("").unwrap(), Mode::Bridge("bridge".into()));
        assert_eq!(
            Mode::parse("bridge").unwrap(),
            Mode::Bridge("bridge".into())
        );
        assert_eq!(Mode::parse("none").unwrap(), Mode::None);
        assert_eq!(Mode::parse("host").unwrap(), Mode::Host);
        assert_eq!(
            Mode::parse("container:web").unwrap(),
            Mode::Container("web".into())
        );
        assert_eq!(Mode::parse("mynet").unwrap(), Mode::Bridge("mynet".into()));
        assert!(Mode::parse("container:").is_err());
        assert!(Mode::parse("bad/name").is_err());
        assert!(Mode::parse("-x").is_err());
    }

    #[test]
    fn veth_names_fit_the_kernel_limit() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(veth_name(id), "veth0123456789a");
        assert!(veth_name(id).len() <= 15);
    }

    fn att(id: &str, ports: Vec<Mapping>) -> Attachment {
        Attachment {
            container_id: id.into(),
            container_name: format!("c-{id}"),
            hostname: id.into(),
            netns: PathBuf::new(),
            hosts_file: PathBuf::new(),
            network: Some("bridge".into()),
            bridge: "berth0".into(),
            subnet: None,
            ip: None,
            veth: String::new(),
            ports,
        }
    }

    #[test]
    fn ports_published_by_another_container_are_refused() {
        // Ports no process holds (the kernel's own pick), so only our
        // records can refuse them.
        let free = ports::probe(Ipv4Addr::LOCALHOST, 0, ports::Proto::Tcp).unwrap();
        let mut st = State::default();
        st.attachments.insert(
            "a".into(),
            att(
                "a",
                vec![Mapping {
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: free,
                    container_port: 80,
                    proto: ports::Proto::Tcp,
                }],
            ),
        );
        let spec = |s: String| -> PortSpec { s.parse().unwrap() };
        let e = resolve_ports(&st, &[spec(format!("127.0.0.1:{free}:80"))]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("cannot publish port {free}/tcp: it is already published by container c-a")
        );
        // The same port over UDP is another port.
        let udp_free = ports::probe(Ipv4Addr::LOCALHOST, 0, ports::Proto::Udp).unwrap();
        let m = resolve_ports(&st, &[spec(format!("127.0.0.1:{udp_free}:53/udp"))]).unwrap();
        assert_eq!(m[0].host_port, udp_free);
        // Twice in one request.
        let e = resolve_ports(
            &st,
            &[
                spec(format!("{udp_free}:1/udp")),
                spec(format!("{udp_free}:2/udp")),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("by container itself"), "{e}");
        // Random ports are picked and never clash with ours.
        let m = resolve_ports(&st, &[spec("80".into()), spec("81".into())]).unwrap();
        assert!(m[0].host_port != 0 && m[0].host_port != m[1].host_port);
    }
}
