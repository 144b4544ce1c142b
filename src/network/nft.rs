//! nftables through its JSON API (`nft -j -f -`). Each bridge network has a
//! table of its own (`inet berth_<bridge>`), made with the bridge and
//! deleted with it: we never touch another table. The rulesets are built
//! by pure functions (unit-tested); [`apply`] and [`list_chain`] run `nft`.
//!
//! ```text
//! table inet berth_berth0
//!   chain ports                       one DNAT rule per published port,
//!                                     commented "berth:<container id>"
//!   chain prerouting  nat/dstnat      fib daddr type local jump ports
//!   chain output      nat/-100        fib daddr type local jump ports
//!   chain postrouting nat/srcnat      masquerade: the subnet going out,
//!                                     127/8 going to the bridge (localhost
//!                                     publishing), DNAT'd hairpin traffic
//!   chain input       filter/0        drop new connections from the bridge
//!                                     to 127/8 (route_localnet's hole)
//! ```

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::ipam::Ipv4Net;
use super::ports::Mapping;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("run nft: {0} (is the nftables package installed?)")]
    Spawn(std::io::Error),
    #[error("nft {what}: {msg}")]
    Failed { what: String, msg: String },
    #[error("nft {what}: unreadable output: {source}")]
    Output {
        what: String,
        source: serde_json::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

const FAMILY: &str = "inet";
pub const PORTS_CHAIN: &str = "ports";

/// Our table for a bridge: nft names cannot hold every character an
/// interface name can.
pub fn table_name(bridge: &str) -> String {
    let safe: String = bridge
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("berth_{safe}")
}

/// The comment that marks a container's rules.
pub fn container_comment(id: &str) -> String {
    format!("berth:{id}")
}

fn m(left: Value, op: &str, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn payload(proto: &str, field: &str) -> Value {
    json!({"payload": {"protocol": proto, "field": field}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn prefix(net: &Ipv4Net) -> Value {
    json!({"prefix": {"addr": net.addr().to_string(), "len": net.prefix()}})
}

fn ipv4() -> Value {
    m(meta("nfproto"), "==", json!("ipv4"))
}

fn rule(table: &str, chain: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": {"family": FAMILY, "table": table, "chain": chain, "expr": expr}}})
}

fn base_chain(table: &str, name: &str, kind: &str, hook: &str, prio: i32) -> Value {
    json!({"add": {"chain": {
        "family": FAMILY, "table": table, "name": name,
        "type": kind, "hook": hook, "prio": prio, "policy": "accept",
    }}})
}

/// The table of a bridge network, replacing any leftover of it in the
/// same (atomic) batch.
pub fn network_table(bridge: &str, subnet: &Ipv4Net) -> Value {
    let t = table_name(bridge);
    let table = json!({"table": {"family": FAMILY, "name": t}});
    let local = m(
        json!({"fib": {"result": "type", "flags": ["daddr"]}}),
        "==",
        json!("local"),
    );
    let jump = json!({"jump": {"target": PORTS_CHAIN}});
    let saddr = payload("ip", "saddr");
    let loopback = json!({"prefix": {"addr": "127.0.0.0", "len": 8}});
    let cmds = vec![
        json!({"add": table}),
        json!({"delete": table}),
        json!({"add": table}),
        json!({"add": {"chain": {"family": FAMILY, "table": t, "name": PORTS_CHAIN}}}),
        base_chain(&t, "prerouting", "nat", "prerouting", -100),
        base_chain(&t, "output", "nat", "output", -100),
        base_chain(&t, "postrouting", "nat", "postrouting", 100),
        base_chain(&t, "input", "filter", "input", 0),
        rule(&t, "prerouting", vec![ipv4(), local.clone(), jump.clone()]),
        rule(&t, "output", vec![ipv4(), local, jump]),
        // Containers reaching out: their address becomes the host's.
        rule(
            &t,
            "postrouting",
            vec![
                ipv4(),
                m(saddr.clone(), "==", prefix(subnet)),
                m(meta("oifname"), "!=", json!(bridge)),
                json!({"masquerade": null}),
            ],
        ),
        // The host reaching a published port on 127.0.0.1: the container
        // must answer the bridge's address, not its own loopback.
        rule(
            &t,
            "postrouting",
            vec![
                ipv4(),
                m(meta("oifname"), "==", json!(bridge)),
                m(saddr.clone(), "==", loopback.clone()),
                json!({"masquerade": null}),
            ],
        ),
        // A container reaching a published port of a neighbour through a
        // host address: the answer must come back through the host too.
        rule(
            &t,
            "postrouting",
            vec![
                ipv4(),
                m(meta("oifname"), "==", json!(bridge)),
                m(saddr, "==", prefix(subnet)),
                m(json!({"ct": {"key": "status"}}), "in", json!("dnat")),
                json!({"masquerade": null}),
            ],
        ),
        // route_localnet on the bridge lets packets to 127/8 in from it;
        // only replies to the host's own connections may pass
        // (CVE-2020-8558).
        rule(
            &t,
            "input",
            vec![
                m(meta("iifname"), "==", json!(bridge)),
                m(payload("ip", "daddr"), "==", loopback),
                m(
                    json!({"ct": {"key": "state"}}),
                    "in",
                    json!(["new", "invalid"]),
                ),
                json!({"drop": null}),
            ],
        ),
    ];
    json!({"nftables": cmds})
}

pub fn delete_table(bridge: &str) -> Value {
    json!({"nftables": [{"delete": {"table": {"family": FAMILY, "name": table_name(bridge)}}}]})
}

/// One DNAT rule per published port of container `id` at `ip`.
pub fn add_ports(bridge: &str, id: &str, ip: Ipv4Addr, maps: &[Mapping]) -> Value {
    let t = table_name(bridge);
    let cmds: Vec<Value> = maps
        .iter()
        .map(|mp| {
            let proto = mp.proto.to_string();
            let mut expr = Vec::new();
            if !mp.host_ip.is_unspecified() {
                expr.push(m(
                    payload("ip", "daddr"),
                    "==",
                    json!(mp.host_ip.to_string()),
                ));
            }
            expr.push(m(payload(&proto, "dport"), "==", json!(mp.host_port)));
            expr.push(json!({"dnat": {"family": "ip", "addr": ip.to_string(), "port": mp.container_port}}));
            json!({"add": {"rule": {
                "family": FAMILY, "table": t, "chain": PORTS_CHAIN,
                "comment": container_comment(id), "expr": expr,
            }}})
        })
        .collect();
    json!({"nftables": cmds})
}

/// The handles of the rules of a `nft -j list chain` output that carry
/// `comment`.
pub fn rule_handles(listing: &Value, comment: &str) -> Vec<u64> {
    listing["nftables"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("rule"))
                .filter(|r| r["comment"].as_str() == Some(comment))
                .filter_map(|r| r["handle"].as_u64())
                .collect()
        })
        .unwrap_or_default()
}

pub fn delete_rules(bridge: &str, chain: &str, handles: &[u64]) -> Value {
    let t = table_name(bridge);
    let cmds: Vec<Value> = handles
        .iter()
        .map(|h| json!({"delete": {"rule": {"family": FAMILY, "table": t, "chain": chain, "handle": h}}}))
        .collect();
    json!({"nftables": cmds})
}

/// Runs a batch (atomic: all of it or none).
pub fn apply(what: &str, batch: &Value) -> Result<()> {
    if batch["nftables"].as_array().is_some_and(|a| a.is_empty()) {
        return Ok(());
    }
    run(what, &["-j", "-f", "-"], Some(batch.to_string().as_bytes())).map(|_| ())
}

/// `nft -j list chain inet TABLE CHAIN`; None if the table is not there.
pub fn list_chain(bridge: &str, chain: &str) -> Result<Option<Value>> {
    let t = table_name(bridge);
    if !table_exists(bridge)? {
        return Ok(None);
    }
    let what = format!("list chain {FAMILY} {t} {chain}");
    let out = run(&what, &["-j", "list", "chain", FAMILY, &t, chain], None)?;
    serde_json::from_slice(&out)
        .map(Some)
        .map_err(|source| Error::Output { what, source })
}

pub fn table_exists(bridge: &str) -> Result<bool> {
    let out = run("list tables", &["-j", "list", "tables", FAMILY], None)?;
    let v: Value = serde_json::from_slice(&out).map_err(|source| Error::Output {
        what: "list tables".into(),
        source,
    })?;
    let t = table_name(bridge);
    Ok(v["nftables"].as_array().is_some_and(|items| {
        items
            .iter()
            .any(|i| i["table"]["name"].as_str() == Some(&t))
    }))
}

fn run(what: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::Spawn)?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).map_err(Error::Spawn)?;
    }
    let out = child.wait_with_output().map_err(Error::Spawn)?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        let msg = msg
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("Error:"))
            .or_else(|| msg.lines().map(str::trim).find(|l| !l.is_empty()))
            .unwrap_or("failed")
            .trim_start_matches("Error: ")
            .to_string();
        return Err(Error::Failed {
            what: what.to_string(),
            msg,
        });
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ports::Proto;

    #[test]
    fn table_names_are_nft_identifiers() {
        assert_eq!(table_name("berth0"), "berth_berth0");
        assert_eq!(table_name("br-0123abcd"), "berth_br_0123abcd");
    }

    #[test]
    fn network_table_replaces_leftovers_and_nats() {
        let v = network_table("berth0", &"10.88.0.0/16".parse().unwrap());
        let cmds = v["nftables"].as_array().unwrap();
        // add, delete, add: an old table of the same name goes atomically.
        assert!(cmds[0]["add"]["table"].is_object());
        assert!(cmds[1]["delete"]["table"].is_object());
        assert!(cmds[2]["add"]["table"].is_object());
        let text = v.to_string();
        assert!(text.contains(r#""name":"berth_berth0""#), "{text}");
        for hook in ["prerouting", "output", "postrouting", "input"] {
            assert!(text.contains(&format!(r#""hook":"{hook}""#)), "{hook}");
        }
        assert_eq!(text.matches(r#""masquerade":null"#).count(), 3);
        assert!(text.contains(r#""prefix":{"addr":"10.88.0.0","len":16}"#));
        // Nothing outside our table.
        for c in cmds {
            let obj = c.as_object().unwrap().values().next().unwrap();
            let inner = obj.as_object().unwrap().values().next().unwrap();
            let table = inner.get("table").or(inner.get("name")).unwrap();
            assert_eq!(table, "berth_berth0", "{c}");
        }
    }

    #[test]
    fn port_rules_carry_the_container() {
        let maps = [
            Mapping {
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: 8080,
                container_port: 80,
                proto: Proto::Tcp,
            },
            Mapping {
                host_ip: Ipv4Addr::LOCALHOST,
                host_port: 5353,
                container_port: 53,
                proto: Proto::Udp,
            },
        ];
        let v = add_ports("berth0", "abc", Ipv4Addr::new(10, 88, 0, 2), &maps);
        let rules = v["nftables"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        let r0 = &rules[0]["add"]["rule"];
        assert_eq!(r0["comment"], "berth:abc");
        assert_eq!(r0["chain"], "ports");
        assert_eq!(r0["expr"].as_array().unwrap().len(), 2, "no address match");
        assert_eq!(
            r0["expr"][1]["dnat"],
            json!({"family": "ip", "addr": "10.88.0.2", "port": 80})
        );
        let r1 = &rules[1]["add"]["rule"];
        assert_eq!(r1["expr"][0]["match"]["right"], "127.0.0.1");
        assert_eq!(r1["expr"][1]["match"]["left"]["payload"]["protocol"], "udp");
    }

    #[test]
    fn finds_rule_handles_by_comment() {
        let listing = json!({"nftables": [
            {"metainfo": {"json_schema_version": 1}},
            {"chain": {"family": "inet", "table": "berth_berth0", "name": "ports", "handle": 1}},
            {"rule": {"chain": "ports", "handle": 7, "comment": "berth:abc", "expr": []}},
            {"rule": {"chain": "ports", "handle": 8, "comment": "berth:def", "expr": []}},
            {"rule": {"chain": "ports", "handle": 9, "comment": "berth:abc", "expr": []}},
        ]});
        assert_eq!(rule_handles(&listing, "berth:abc"), vec![7, 9]);
        assert!(rule_handles(&json!({}), "berth:abc").is_empty());
        let d = delete_rules("berth0", "ports", &[7, 9]);
        assert_eq!(d["nftables"][1]["delete"]["rule"]["handle"], 9);
    }
}
