//! Registry credentials: `user:pass` flags, the root-only credential file
//! `berth login` writes, and parsing `WWW-Authenticate` challenges.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid credentials: expected user:password")]
    BadCreds,
    #[error("credential file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("credential file {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("credential file {path}: entry for {registry} is not base64 user:password")]
    BadEntry { path: PathBuf, registry: String },
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

// Never print a password, not even in debug logs.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}:***)", self.username)
    }
}

impl Credentials {
    /// Parses `user:password` (the password may contain ':').
    pub fn parse(s: &str) -> Result<Credentials> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }),
            _ => Err(Error::BadCreds),
        }
    }

    /// The `Authorization: Basic` value.
    pub fn basic(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

#[derive(Default, Serialize, Deserialize)]
struct AuthFile {
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Serialize, Deserialize)]
struct AuthEntry {
    auth: String,
}

/// The credential file (docker's `config.json` shape), mode 0600 under a
/// root-only engine root.
pub struct CredentialStore {
    path: PathBuf,
}

impl CredentialStore {
    pub fn new(root: &Path) -> CredentialStore {
        CredentialStore {
            path: root.join("auth.json"),
        }
    }

    fn read(&self) -> Result<AuthFile> {
        match fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::Json {
                path: self.path.clone(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(AuthFile::default()),
            Err(source) => Err(Error::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn write(&self, file: &AuthFile) -> Result<()> {
        let io_err = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(file).map_err(|source| Error::Json {
            path: self.path.clone(),
            source,
        })?;
        let tmp = self
            .path
            .with_extension(format!("tmp-{}", std::process::id()));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            fs::set_permissions(&self.path, fs::Permissions::from_mode(0o600))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(io_err)
    }

    pub fn get(&self, registry: &str) -> Result<Option<Credentials>> {
        let file = self.read()?;
        let Some(entry) = file.auths.get(registry) else {
            return Ok(None);
        };
        let bad = || Error::BadEntry {
            path: self.path.clone(),
            registry: registry.to_string(),
        };
        let decoded = STANDARD.decode(&entry.auth).map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        Credentials::parse(&text).map(Some).map_err(|_| bad())
    }

    pub fn set(&self, registry: &str, creds: &Credentials) -> Result<()> {
        let mut file = self.read()?;
        let auth = STANDARD.encode(format!("{}:{}", creds.username, creds.password));
        file.auths.insert(registry.to_string(), AuthEntry { auth });
        self.write(&file)
    }

    /// Returns whether there was an entry.
    pub fn remove(&self, registry: &str) -> Result<bool> {
        let mut file = self.read()?;
        let had = file.auths.remove(registry).is_some();
        if had {
            self.write(&file)?;
        }
        Ok(had)
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// `k="v", k2=v2` with quoted values that may hold commas.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.insert(key, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn credentials() {
        let c = Credentials::parse("user:pa:ss").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("user", "pa:ss")
        );
        assert!(Credentials::parse("nopass").is_err());
        assert!(Credentials::parse(":x").is_err());
        assert_eq!(Credentials::parse("a:b").unwrap().basic(), "Basic YTpi");
        assert!(!format!("{c:?}").contains("pa:ss"));
    }

    #[test]
    fn credential_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path());
        let c = Credentials::parse("u:p").unwrap();
        store.set("localhost:5000", &c).unwrap();
        assert_eq!(store.get("localhost:5000").unwrap(), Some(c));
        let mode = fs::metadata(dir.path().join("auth.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert!(store.remove("localhost:5000").unwrap());
        assert_eq!(store.get("localhost:5000").unwrap(), None);
    }
}
