//! Name resolution between containers: each container's `/etc/hosts` lists
//! its own address and, on a user-defined network, every other container
//! of that network by name, ID and host name. The files are rewritten in
//! place (the container has them bind-mounted: a rename would not be seen)
//! whenever a container joins or leaves the network.

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A container as its neighbours know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub ip: Ipv4Addr,
    pub name: String,
    pub id: String,
    pub hostname: String,
}

impl Entry {
    fn names(&self) -> Vec<&str> {
        let mut v = vec![self.hostname.as_str(), self.name.as_str()];
        v.push(&self.id[..self.id.len().min(12)]);
        v.dedup();
        let mut seen = Vec::new();
        v.retain(|n| {
            let new = !n.is_empty() && !seen.contains(n);
            seen.push(*n);
            new
        });
        v
    }
}

/// The hosts file of `me`, with `peers` (the other containers of its
/// network, when names resolve there).
pub fn render(me: &Entry, peers: &[Entry]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    s.push_str(&format!("{}\t{}\n", me.ip, me.names().join(" ")));
    let mut peers: Vec<&Entry> = peers.iter().filter(|p| p.id != me.id).collect();
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    for p in peers {
        s.push_str(&format!("{}\t{}\n", p.ip, p.names().join(" ")));
    }
    s
}

/// Rewrites `path` in place (same inode), so a bind mount of it sees the
/// new text.
pub fn write_in_place(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(true)
        .mode(0o644)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(ip: u8, name: &str, id: &str, host: &str) -> Entry {
        Entry {
            ip: Ipv4Addr::new(10, 88, 0, ip),
            name: name.into(),
            id: id.into(),
            hostname: host.into(),
        }
    }

    #[test]
    fn own_line_then_peers_by_name() {
        let me = e(2, "web", "0123456789abcdef", "0123456789ab");
        let peers = [
            e(4, "zed", "ffff456789abcdef", "zhost"),
            me.clone(),
            e(3, "db", "aaaa456789abcdef", "aaaa456789ab"),
        ];
        let text = render(&me, &peers);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "127.0.0.1\tlocalhost");
        assert_eq!(lines[6], "10.88.0.2\t0123456789ab web");
        assert_eq!(lines[7], "10.88.0.3\taaaa456789ab db");
        assert_eq!(lines[8], "10.88.0.4\tzhost zed ffff456789ab");
        assert_eq!(lines.len(), 9, "no line of its own twice: {text}");
    }
}
