//! Networking end to end: published ports fetched with a real HTTP client
//! on 127.0.0.1 and on the host's address, UDP, names on a user network,
//! shared namespaces, `none`, refused ports, and nothing left behind.
//! Traffic stays on loopback, the host's own address and our containers'.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::engine::{Berth, IMAGE};
use common::network::*;
use common::*;

/// httpd serving "hello from $HOSTNAME" at /.
const HTTPD: &str = "mkdir -p /www && echo \"hello from $(hostname)\" > /www/index.html && exec httpd -f -p 80 -h /www";

fn run_d(b: &Berth, args: &[&str]) -> String {
    let mut all = vec!["run", "-d"];
    all.extend_from_slice(args);
    ok(&b.run(&all)).trim().to_string()
}

fn ip_of(b: &Berth, name: &str) -> String {
    b.inspect(name)["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn published_tcp_port_answers_on_localhost_and_host_address() {
    let b = Berth::new();
    let port = free_port();
    let id = run_d(
        &b,
        &[
            "--name",
            "web",
            "-p",
            &format!("{port}:80"),
            IMAGE,
            "sh",
            "-c",
            HTTPD,
        ],
    );
    let want = format!("hello from {}\n", &id[..12]);
    assert_eq!(http_get_retry(&format!("http://127.0.0.1:{port}/")), want);
    let host = host_address();
    assert_eq!(http_get_retry(&format!("http://{host}:{port}/")), want);

    // What the commands say about it.
    assert_eq!(
        ok(&b.run(&["port", "web"])),
        format!("80/tcp -> 0.0.0.0:{port}\n")
    );
    assert_eq!(
        ok(&b.run(&["port", "web", "80"])),
        format!("0.0.0.0:{port}\n")
    );
    let ps = ok(&b.run(&["ps"]));
    assert!(ps.contains(&format!("0.0.0.0:{port}->80/tcp")), "{ps}");
    let ns = &b.inspect("web")["NetworkSettings"];
    assert_eq!(ns["Ports"]["80/tcp"][0]["HostPort"], port.to_string());
    let ip = ns["IPAddress"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10."), "{ns}");
    // The container is on the bridge: its veth is there, its rule too.
    assert!(links().contains(&veth_of(&id)));
    assert!(links().contains(&b.bridge));
    assert!(ruleset().contains(&format!("berth:{id}")));
    // Inside: eth0 with that address, a default route, the host's resolver.
    let inside = ok(&b.run(&["exec", "web", "ip", "-o", "-4", "addr", "show", "eth0"]));
    assert!(inside.contains(&format!("inet {ip}/")), "{inside}");
    let route = ok(&b.run(&["exec", "web", "ip", "route"]));
    assert!(route.starts_with("default via 10."), "{route}");
    let hosts = ok(&b.run(&["exec", "web", "cat", "/etc/hosts"]));
    assert!(
        hosts.contains(&format!("{ip}\t{} web", &id[..12])),
        "{hosts}"
    );
    let resolv = ok(&b.run(&["exec", "web", "cat", "/etc/resolv.conf"]));
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert_eq!(
        resolv,
        berth::engine::lifecycle::resolv_conf(&host_resolv, false)
    );
    assert!(resolv.contains("nameserver "), "{resolv}");

    ok(&b.run(&["rm", "-f", "web"]));
    assert_no_trace(&id);
    assert!(
        !links().contains(&b.bridge),
        "the bridge goes with its last container"
    );
    assert!(
        http_get(&format!("http://127.0.0.1:{port}/")).is_none(),
        "the port is no longer published"
    );
}

#[test]
fn random_host_ports_and_publish_all() {
    let b = Berth::new();
    b.allow("exposed.oci/**");
    b.allow("exposed.tar");
    // An image that exposes 80/tcp: the fixture with that in its config.
    let layout = b.dir.path().join("exposed.oci");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(fixtures().join("busybox.oci"))
        .arg(&layout)
        .status()
        .unwrap();
    assert!(st.success());
    let mut c = std::process::Command::new("umoci");
    c.args(["config", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .args(["--config.exposedports", "80/tcp", "--tag", "latest"]);
    ok(&output(c));
    let tar = b.dir.path().join("exposed.tar");
    let mut c = std::process::Command::new("tar");
    c.arg("-C").arg(&layout).arg("-cf").arg(&tar).arg(".");
    ok(&output(c));
    let loaded = ok(&b.run(&["load", "-i", tar.to_str().unwrap()]));
    let image = loaded
        .lines()
        .filter_map(|l| l.strip_prefix("Loaded image ID: sha256:"))
        .next_back()
        .expect("an image ID")
        .to_string();

    let id = run_d(&b, &["--name", "all", "-P", &image, "sh", "-c", HTTPD]);
    let port_line = ok(&b.run(&["port", "all"]));
    let host_port: u16 = port_line
        .trim()
        .strip_prefix("80/tcp -> 0.0.0.0:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected port output {port_line:?}"));
    assert!(host_port > 0);
    assert_eq!(
        http_get_retry(&format!("http://127.0.0.1:{host_port}/")),
        format!("hello from {}\n", &id[..12])
    );

    // -p 80: a random host port too, different from the first.
    let id2 = run_d(&b, &["--name", "one", "-p", "80", IMAGE, "sh", "-c", HTTPD]);
    let p2: u16 = ok(&b.run(&["port", "one", "80/tcp"]))
        .trim()
        .strip_prefix("0.0.0.0:")
        .and_then(|p| p.parse().ok())
        .expect("a host port");
    assert_ne!(p2, host_port);
    assert_eq!(
        http_get_retry(&format!("http://127.0.0.1:{p2}/")),
        format!("hello from {}\n", &id2[..12])
    );
}

/// A UDP echo server (the fixture's busybox nc has no UDP): the host's
/// python3, its /usr and libraries bound read-only.
const UDP_ECHO: &str = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 5000))\nwhile True:\n    data, peer = s.recvfrom(2048)\n    s.sendto(b'echo ' + data, peer)\n";

#[track_caller]
fn udp_round_trip(addr: &str, port: u16) {
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 64];
    loop {
        sock.send_to(b"ping", (addr, port)).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            assert_eq!(&buf[..n], b"echo ping");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no UDP answer from {addr}:{port}"
        );
    }
}

#[test]
fn published_udp_port_answers() {
    let b = Berth::new();
    let port = free_port();
    run_d(
        &b,
        &[
            "--name",
            "udp",
            "-p",
            &format!("{port}:5000/udp"),
            "-v",
            "/usr:/usr:ro",
            "-v",
            "/usr/lib:/lib:ro",
            "-v",
            "/usr/lib64:/lib64:ro",
            IMAGE,
            "/usr/bin/python3",
            "-c",
            UDP_ECHO,
        ],
    );
    assert_eq!(
        ok(&b.run(&["port", "udp"])),
        format!("5000/udp -> 0.0.0.0:{port}\n")
    );
    udp_round_trip("127.0.0.1", port);
    udp_round_trip(&host_address(), port);
}

#[test]
fn user_network_containers_resolve_each_other_by_name() {
    let b = Berth::new();
    let net_id = ok(&b.run(&["network", "create", "--subnet", "10.201.7.0/24", "appnet"]));
    assert_eq!(net_id.trim().len(), 64);
    let ls = ok(&b.run(&["network", "ls"]));
    assert!(ls.contains("appnet") && ls.contains("bridge"), "{ls}");
    let e = fails(&b.run(&["network", "create", "appnet"]));
    assert!(e.contains("already exists"), "{e}");

    run_d(
        &b,
        &[
            "--name",
            "server",
            "--network",
            "appnet",
            IMAGE,
            "sh",
            "-c",
            HTTPD,
        ],
    );
    run_d(
        &b,
        &[
            "--name",
            "client",
            "--network",
            "appnet",
            IMAGE,
            "sleep",
            "1000",
        ],
    );
    let server_ip = ip_of(&b, "server");
    assert!(server_ip.starts_with("10.201.7."), "{server_ip}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        let out = b.run(&["exec", "client", "wget", "-q", "-O-", "http://server/"]);
        if out.status.success() {
            break stdout(&out);
        }
        assert!(
            Instant::now() < deadline,
            "client never reached server: {}",
            stderr(&out)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(body.starts_with("hello from "), "{body}");
    // And the other way round, by name, with ping.
    ok(&b.run(&["exec", "server", "ping", "-c", "1", "-W", "3", "client"]));
    let nslookup = b.run(&["exec", "client", "getent", "hosts", "server"]);
    if nslookup.status.success() {
        assert!(stdout(&nslookup).contains(&server_ip));
    }

    let inspect = ok(&b.run(&["network", "inspect", "appnet"]));
    assert!(
        inspect.contains("\"server\"") && inspect.contains("10.201.7.0/24"),
        "{inspect}"
    );
    let e = fails(&b.run(&["network", "rm", "appnet"]));
    assert!(e.contains("active endpoints"), "{e}");

    // A container that leaves disappears from the others' hosts files.
    ok(&b.run(&["rm", "-f", "server"]));
    let hosts = ok(&b.run(&["exec", "client", "cat", "/etc/hosts"]));
    assert!(!hosts.contains("server"), "{hosts}");
    ok(&b.run(&["rm", "-f", "client"]));
    assert_eq!(ok(&b.run(&["network", "rm", "appnet"])), "appnet\n");
    let e = fails(&b.run(&["run", "--network", "appnet", IMAGE, "true"]));
    assert!(e.contains("network appnet not found"), "{e}");
}

#[test]
fn container_mode_shares_localhost_and_none_has_only_lo() {
    let b = Berth::new();
    let id = run_d(&b, &["--name", "pod", IMAGE, "sh", "-c", HTTPD]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = b.run(&[
            "run",
            "--rm",
            "--network",
            "container:pod",
            IMAGE,
            "wget",
            "-q",
            "-O-",
            "http://127.0.0.1/",
        ]);
        if out.status.success() {
            assert_eq!(stdout(&out), format!("hello from {}\n", &id[..12]));
            break;
        }
        assert!(Instant::now() < deadline, "{}", stderr(&out));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Same interfaces, same address.
    let ip = ip_of(&b, "pod");
    let shared = ok(&b.run(&[
        "run",
        "--rm",
        "--network",
        "container:pod",
        IMAGE,
        "ip",
        "-o",
        "-4",
        "addr",
    ]));
    assert!(shared.contains(&ip), "{shared}");
    let e = fails(&b.run(&[
        "run",
        "--network",
        "container:pod",
        "-p",
        "81:80",
        IMAGE,
        "true",
    ]));
    assert!(e.contains("conflicting options"), "{e}");

    // none: loopback only, and up.
    let out = ok(&b.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "ip",
        "-o",
        "link",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with("1: lo:") && lines[0].contains(",UP"),
        "{out}"
    );
    // A none container's loopback can be shared too.
    run_d(
        &b,
        &[
            "--name",
            "lonely",
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            HTTPD,
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = b.run(&[
            "run",
            "--rm",
            "--network",
            "container:lonely",
            IMAGE,
            "wget",
            "-q",
            "-O-",
            "http://127.0.0.1/",
        ]);
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "{}", stderr(&out));
        std::thread::sleep(Duration::from_millis(100));
    }
    // A stopped container's namespace cannot be joined.
    ok(&b.run(&["stop", "-t", "0", "lonely"]));
    let e = fails(&b.run(&["run", "--network", "container:lonely", IMAGE, "true"]));
    assert!(
        e.contains("cannot join the network of container lonely"),
        "{e}"
    );
}

#[test]
fn a_port_in_use_is_refused_and_nothing_is_left() {
    let b = Berth::new();
    // A host process holds the port.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let out = b.run(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("{port}:80"),
        IMAGE,
        "sleep",
        "100",
    ]);
    let e = fails(&out);
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    assert!(
        e.contains(&format!("cannot publish port 0.0.0.0:{port}/tcp")) && e.contains("in use"),
        "{e}"
    );
    let clash_id = b.inspect("clash")["Id"].as_str().unwrap().to_string();
    assert_ne!(b.status("clash"), "running");
    assert_no_trace(&clash_id);
    assert!(!links().contains(&b.bridge));
    assert!(!ruleset().contains(&format!("berth_{}", b.bridge)));
    let netns = b.state().join("netns");
    assert!(
        std::fs::read_dir(&netns).map(|d| d.count()).unwrap_or(0) == 0,
        "a namespace left in {}",
        netns.display()
    );
    drop(held);

    // A port another container of ours publishes.
    let free = free_port();
    run_d(
        &b,
        &[
            "--name",
            "first",
            "-p",
            &format!("{free}:80"),
            IMAGE,
            "sleep",
            "100",
        ],
    );
    let e = fails(&b.run(&[
        "run",
        "-d",
        "--name",
        "second",
        "-p",
        &format!("{free}:80"),
        IMAGE,
        "sleep",
        "100",
    ]));
    assert!(e.contains("already published by container first"), "{e}");
    let second = b.inspect("second")["Id"].as_str().unwrap().to_string();
    assert_no_trace(&second);

    // Bad specs: one clear line, nothing created.
    for bad in ["80:80:80:80", "99999:80", "80/sctp", "1-3:1-3"] {
        let e = fails(&b.run(&["run", "-p", bad, IMAGE, "true"]));
        assert!(
            e.contains("port") && e.trim().lines().count() == 1,
            "{bad}: {e}"
        );
    }
    assert_eq!(b.ids().len(), 3, "only clash, first, second exist");
}

#[test]
fn concurrent_runs_get_distinct_addresses() {
    let b = Berth::new();
    let n = 6;
    let names: Vec<String> = (0..n).map(|i| format!("par{i}")).collect();
    std::thread::scope(|s| {
        for name in &names {
            let b = &b;
            s.spawn(move || {
                ok(&b.run(&["run", "-d", "--name", name, IMAGE, "sleep", "100"]));
            });
        }
    });
    let ips: std::collections::BTreeSet<String> = names.iter().map(|n| ip_of(&b, n)).collect();
    assert_eq!(ips.len(), n, "addresses handed out twice: {ips:?}");
    // They reach each other over the bridge.
    let first = ip_of(&b, "par0");
    ok(&b.run(&["exec", "par5", "ping", "-c", "1", "-W", "3", &first]));
    // A freed address is not handed out again at once.
    ok(&b.run(&["rm", "-f", "par0"]));
    run_d(&b, &["--name", "later", IMAGE, "sleep", "100"]);
    assert_ne!(ip_of(&b, "later"), first);
}

#[test]
fn restart_keeps_the_network_and_a_dead_shim_is_reclaimed() {
    let b = Berth::new();
    let port = free_port();
    let id = run_d(
        &b,
        &[
            "--name",
            "phoenix",
            "--restart",
            "always",
            "-p",
            &format!("{port}:80"),
            IMAGE,
            "sh",
            "-c",
            HTTPD,
        ],
    );
    let want = format!("hello from {}\n", &id[..12]);
    assert_eq!(http_get_retry(&format!("http://127.0.0.1:{port}/")), want);
    // Kill the program: the policy restarts it in the same namespace.
    let pid = b.inspect("phoenix")["State"]["Pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    b.wait_for("a restart", || {
        b.inspect("phoenix")["RestartCount"].as_u64() == Some(1)
    });
    assert_eq!(http_get_retry(&format!("http://127.0.0.1:{port}/")), want);

    // Kill the shim: the container dies with it, its network stays until
    // the next command on it (or prune) reclaims it.
    let st: serde_json::Value = serde_json::from_slice(
        &std::fs::read(b.root().join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let shim = st["shim_pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    b.wait_for("the shim to die", || {
        !std::path::Path::new(&format!("/proc/{shim}")).exists()
            || std::fs::read_to_string(format!("/proc/{shim}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    assert!(links().contains(&veth_of(&id)), "nothing reclaimed it yet");
    ok(&b.run(&["system", "prune", "-f"]));
    assert_no_trace(&id);
    assert!(!links().contains(&b.bridge));
    assert!(b.ids().is_empty());
}

#[test]
fn bad_network_input_is_refused_in_one_line() {
    let b = Berth::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--network", "nosuch", IMAGE, "true"],
            "network nosuch not found",
        ),
        (
            &["run", "--network", "container:nosuch", IMAGE, "true"],
            "no such container: nosuch",
        ),
        (
            &["run", "--network", "bad/name", IMAGE, "true"],
            "invalid network mode",
        ),
        (
            &["run", "--network", "host", "-p", "8080:80", IMAGE, "true"],
            "conflicting options",
        ),
        (
            &["run", "--network", "none", "-P", IMAGE, "true"],
            "conflicting options",
        ),
        (
            &["network", "create", "--subnet", "127.0.0.0/8", "lo8"],
            "overlaps the host route 127.0.0.0/8",
        ),
        (
            &["network", "create", "--subnet", "10.0.0.1/16", "hostbits"],
            "host bits are set",
        ),
        (
            &["network", "create", "--subnet", "nonsense", "junk"],
            "invalid subnet \"nonsense\"",
        ),
        (&["network", "create", "bridge"], "predefined network"),
        (&["network", "create", "bad/name"], "invalid network name"),
        (&["network", "rm", "bridge"], "predefined network"),
        (&["network", "rm", "nosuch"], "network nosuch not found"),
    ];
    for (args, want) in cases {
        let e = fails(&b.run(args));
        assert!(e.contains(want), "{args:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: {e}");
    }
    assert!(b.ids().is_empty(), "no container was made");
    let ls = ok(&b.run(&["network", "ls", "-q"]));
    assert_eq!(ls.lines().count(), 1, "only the default network: {ls}");
    assert!(!links().contains(&b.bridge));
}

/// A stand-in for the outside world: a namespace of the test's own behind a
/// veth pair (198.18.N.1 on the host, 198.18.N.2 inside), removed on drop.
struct Outside {
    ns: String,
    veth: String,
    octet: u8,
}

impl Outside {
    fn new() -> Outside {
        let octet = (std::process::id() % 200) as u8 + 20;
        let o = Outside {
            ns: format!("berth-test-out{octet}"),
            veth: format!("bto{octet}"),
            octet,
        };
        let ip = |args: &[&str]| {
            let mut c = std::process::Command::new("ip");
            c.args(args);
            ok(&output(c));
        };
        ip(&["netns", "add", &o.ns]);
        ip(&[
            "link", "add", &o.veth, "type", "veth", "peer", "name", "eth0", "netns", &o.ns,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("198.18.{octet}.1/30"),
            "dev",
            &o.veth,
        ]);
        ip(&["link", "set", &o.veth, "up"]);
        ip(&[
            "-n",
            &o.ns,
            "addr",
            "add",
            &format!("198.18.{octet}.2/30"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &o.ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &o.ns, "link", "set", "lo", "up"]);
        o
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        for args in [
            vec!["link", "del", self.veth.as_str()],
            vec!["netns", "del", self.ns.as_str()],
        ] {
            let _ = std::process::Command::new("ip").args(&args).status();
        }
    }
}

#[test]
fn outbound_traffic_is_masqueraded() {
    let b = Berth::new();
    let out = Outside::new();
    // A server outside that answers with the address it sees.
    let server = "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', 8000))\ns.listen(5)\nwhile True:\n    c, peer = s.accept()\n    c.recv(4096)\n    c.sendall(('HTTP/1.0 200 OK\\r\\n\\r\\n' + peer[0] + '\\n').encode())\n    c.close()\n";
    let mut srv = std::process::Command::new("ip")
        .args(["netns", "exec", &out.ns, "python3", "-c", server])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    run_d(&b, &["--name", "leaver", IMAGE, "sleep", "100"]);
    let url = format!("http://198.18.{}.2:8000/", out.octet);
    let deadline = Instant::now() + Duration::from_secs(15);
    let seen = loop {
        let o = b.run(&["exec", "leaver", "wget", "-q", "-O-", &url]);
        if o.status.success() {
            break stdout(&o);
        }
        if Instant::now() > deadline {
            let _ = srv.kill();
            panic!("the container never reached {url}: {}", stderr(&o));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = srv.kill();
    let _ = srv.wait();
    assert_eq!(
        seen.trim(),
        format!("198.18.{}.1", out.octet),
        "the outside sees the host's address, not the container's {}",
        ip_of(&b, "leaver")
    );
}
