//! Shared helpers for the image tests: a temporary engine root, running the
//! built `berth`, fixture paths, and a real registry (Debian's
//! docker-registry) with optional basic or token auth, all torn down by Drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

#[path = "leaks.rs"]
pub mod leaks;

/// What a store keeps (relative to the test dir), and what it must not: a
/// killed or refused import leaves no temp files and no half layers.
pub const STORE_FURNITURE: &[&str] = &["root/**"];
pub const STORE_DENY: &[&str] = &["root/layers/.tmp-*/**", "root/tmp/*"];

pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "image tests create devices, owners and xattrs: run them as root"
    );
}

pub fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("rootfs-fixtures/build")
        .join(name);
    assert!(
        p.exists(),
        "fixture {} is missing: run `make fixtures`",
        p.display()
    );
    p
}

/// A temp dir holding the engine root at `root/`, so a test can check that
/// nothing appeared beside it.
pub struct TestRoot {
    pub dir: tempfile::TempDir,
    pub leaks: leaks::Checker,
}

impl TestRoot {
    pub fn new() -> TestRoot {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-image-test.")
            .tempdir()
            .expect("tempdir");
        let scope = leaks::Scope {
            dirs: vec![dir.path().to_path_buf()],
            files: vec![leaks::Files {
                dir: dir.path().to_path_buf(),
                allow: STORE_FURNITURE.iter().map(|s| s.to_string()).collect(),
                deny: STORE_DENY.iter().map(|s| s.to_string()).collect(),
            }],
            tag: dir
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            ..Default::default()
        };
        TestRoot {
            leaks: leaks::Checker::new(scope),
            dir,
        }
    }

    /// Allows the test's own files (archives it wrote beside the store).
    pub fn allow(&mut self, pattern: &str) {
        if let Some(f) = self.leaks.scope.files.first_mut() {
            f.allow.push(pattern.to_string());
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run berth")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root")
            .arg(self.root())
            .args(args)
            .env_remove("BERTH_ROOT")
            .env_remove("BERTH_MAX_LAYER_SIZE")
            .env_remove("BERTH_FAULT")
            .env_remove("BERTH_FAULT_TRACE")
            .env(leaks::TAG_VAR, &self.leaks.scope.tag);
        c
    }

    /// Runs berth and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs berth and asserts failure with exit code 1 and a one-line
    /// `berth: ` error; returns that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "berth {args:?} should fail with 1: {stderr}"
        );
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("berth: "))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "berth {args:?}: expected one error line, got: {stderr}"
        );
        errors[0].to_string()
    }

    pub fn layer_dirs(&self) -> Vec<PathBuf> {
        dir_names(&self.root().join("layers"))
            .into_iter()
            .map(|n| self.root().join("layers").join(n))
            .collect()
    }

    /// Everything in the store that is neither a lock file nor an empty
    /// store directory: what a refused image must not leave.
    pub fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["layers", "images", "tmp", "blobs/sha256"] {
            for n in dir_names(&self.root().join(sub)) {
                out.push(format!("{sub}/{n}"));
            }
        }
        let repos =
            std::fs::read_to_string(self.root().join("repositories.json")).unwrap_or_default();
        let names = serde_json::from_str::<serde_json::Value>(&repos)
            .ok()
            .and_then(|v| v["names"].as_object().map(|m| m.len()))
            .unwrap_or(0);
        if names > 0 {
            out.push(format!("repositories.json: {repos}"));
        }
        out
    }
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.leaks.assert_no_leaks();
        }
    }
}

pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub enum Auth {
    None,
    Basic {
        user: &'static str,
        password: &'static str,
    },
    Token {
        user: &'static str,
        password: &'static str,
    },
}

/// A docker-registry on a loopback port with storage in a temp dir.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
    token: Option<TokenServer>,
    creds: Option<String>,
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-registry.")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let mut auth_yaml = String::new();
        let mut token = None;
        let mut creds = None;
        match auth {
            Auth::None => {}
            Auth::Basic { user, password } => {
                let htpasswd = dir.path().join("htpasswd");
                run(Command::new("htpasswd")
                    .args(["-Bbc"])
                    .arg(&htpasswd)
                    .args([user, password]));
                auth_yaml = format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    htpasswd.display()
                );
                creds = Some(format!("{user}:{password}"));
            }
            Auth::Token { user, password } => {
                let key = dir.path().join("token.key");
                let cert = dir.path().join("token.crt");
                run(Command::new("openssl")
                    .args([
                        "req",
                        "-x509",
                        "-newkey",
                        "rsa:2048",
                        "-nodes",
                        "-days",
                        "2",
                        "-subj",
                        "/CN=berth-test-token",
                        "-keyout",
                    ])
                    .arg(&key)
                    .arg("-out")
                    .arg(&cert));
                let server = TokenServer::start(key, &cert, user, password);
                auth_yaml = format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
                    server.port,
                    cert.display()
                );
                token = Some(server);
                creds = Some(format!("{user}:{password}"));
            }
        }
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_yaml}",
                dir.path().join("data").display()
            ),
        )
        .expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry (apt install docker-registry)");
        let reg = Registry {
            dir,
            port,
            child,
            token,
            creds,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {port}: {}",
                reg.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Pushes an archive with skopeo; `format` is "oci" or "v2s2".
    pub fn push(&self, source: &str, repo_tag: &str, format: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "copy",
            "--quiet",
            "--all",
            "--dest-tls-verify=false",
            "--format",
            format,
        ]);
        if let Some(c) = &self.creds {
            cmd.args(["--dest-creds", c]);
        }
        cmd.arg(source)
            .arg(format!("docker://{}/{repo_tag}", self.host()));
        run(&mut cmd);
    }

    /// The registry's stored file for a blob.
    pub fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn token_requests(&self) -> usize {
        self.token
            .as_ref()
            .map_or(0, |t| t.requests.load(Ordering::SeqCst))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token server for docker-registry's `auth: token` (distribution's
/// token spec): checks basic credentials and signs an RS256 JWT with the
/// certificate in its `x5c` header, using the openssl command.
pub struct TokenServer {
    pub port: u16,
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TokenServer {
    fn start(key: PathBuf, cert: &Path, user: &str, password: &str) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let pem = std::fs::read_to_string(cert).expect("read cert");
        let der_b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let expected = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        r.fetch_add(1, Ordering::SeqCst);
                        let _ = stream.set_nonblocking(false);
                        let _ = serve_token(stream, &key, &der_b64, &expected);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TokenServer {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_token(
    stream: TcpStream,
    key: &Path,
    x5c: &str,
    expected_auth: &str,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorized = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
            && v.trim() == expected_auth
        {
            authorized = true;
        }
    }
    let mut stream = stream;
    if !authorized {
        return stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut service = String::new();
    let mut access = Vec::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "service" => service = v,
            "scope" => {
                // repository:NAME:ACTIONS; NAME may not contain ':' here.
                let parts: Vec<&str> = v.splitn(3, ':').collect();
                if parts.len() == 3 {
                    access.push(serde_json::json!({"type": parts[0], "name": parts[1], "actions": parts[2].split(',').collect::<Vec<_>>()}));
                }
            }
            _ => {}
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({"iss": "berth-test-issuer", "sub": "tester", "aud": service, "exp": now + 600, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", std::process::id()), "access": access});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .map(|mut i| i.write_all(signing_input.as_bytes()));
    let mut sig = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_end(&mut sig)?;
    }
    child.wait()?;
    let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig));
    let body =
        serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 600}).to_string();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A TCP proxy that passes traffic until `stall` is set, then holds every
/// server-to-client stream still once it has carried `threshold` bytes:
/// a pull through it hangs mid-layer, deterministically.
pub struct StallingProxy {
    pub port: u16,
    pub stall: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl StallingProxy {
    pub fn start(upstream: u16, threshold: usize) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stall = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (stall.clone(), stop.clone());
        thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut c_read, mut s_write) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                });
                let (mut s_read, mut c_write, st, sp) = (server, client, st.clone(), sp.clone());
                thread::spawn(move || {
                    let mut buf = [0u8; 16 << 10];
                    let mut sent = 0;
                    loop {
                        while st.load(Ordering::SeqCst)
                            && sent >= threshold
                            && !sp.load(Ordering::SeqCst)
                        {
                            thread::sleep(Duration::from_millis(20));
                        }
                        let n = match s_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n;
                    }
                });
            }
        });
        StallingProxy { port, stall, stop }
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Kills a child on drop (a test that fails mid-way leaves no berth behind).
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
