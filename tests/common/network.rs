//! What the host's network looks like to a test: interfaces, the nftables
//! ruleset, the host's own address, and a real HTTP client (curl).
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use super::output;

/// Names of the host's interfaces (`ip -j link`).
pub fn links() -> Vec<String> {
    let mut c = Command::new("ip");
    c.args(["-j", "link", "show"]);
    let out = output(c);
    assert!(out.status.success(), "ip link: is iproute2 installed?");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j link");
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["ifname"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `nft list ruleset`, as text.
pub fn ruleset() -> String {
    let mut c = Command::new("nft");
    c.args(["list", "ruleset"]);
    let out = output(c);
    assert!(
        out.status.success(),
        "nft list ruleset: is nftables installed?"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The host end of a container's veth (the engine's naming).
pub fn veth_of(id: &str) -> String {
    format!("veth{}", &id[..11])
}

/// Nothing of container `id` in the ruleset or among the interfaces.
#[track_caller]
pub fn assert_no_trace(id: &str) {
    let rules = ruleset();
    assert!(
        !rules.contains(id),
        "nft ruleset still mentions {id}:\n{rules}"
    );
    let veth = veth_of(id);
    assert!(!links().contains(&veth), "veth {veth} of {id} left behind");
}

/// The host's own IPv4 address on the interface of its default route
/// (192.0.2.2 on the CI machine).
pub fn host_address() -> String {
    let mut c = Command::new("ip");
    c.args(["-4", "-j", "route", "show", "default"]);
    let v: serde_json::Value = serde_json::from_slice(&output(c).stdout).expect("ip -j route");
    let dev = v[0]["dev"]
        .as_str()
        .expect("the host has a default route")
        .to_string();
    let mut c = Command::new("ip");
    c.args(["-4", "-j", "addr", "show", "dev", &dev]);
    let v: serde_json::Value = serde_json::from_slice(&output(c).stdout).expect("ip -j addr");
    v[0]["addr_info"][0]["local"]
        .as_str()
        .expect("an IPv4 address on the default route's interface")
        .to_string()
}

/// GET `url` with curl; the body, or None on any failure.
pub fn http_get(url: &str) -> Option<String> {
    let mut c = Command::new("curl");
    c.args(["-sS", "--fail", "--max-time", "3", "--noproxy", "*", url]);
    let out = output(c);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// GET `url` until it answers (the server may still be starting).
#[track_caller]
pub fn http_get_retry(url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(body) = http_get(url) {
            return body;
        }
        assert!(Instant::now() < deadline, "no answer from {url}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A port nothing listens on now (TCP and UDP), from the kernel.
pub fn free_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}
