//! Pulling from registries with the OCI distribution spec: manifests by tag
//! or digest, blobs by digest, the `WWW-Authenticate` bearer-token flow and
//! basic auth; HTTPS with the system roots, or plain HTTP when asked.

use std::io::{self, Read};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

use super::archive::plan_for;
use super::auth::{self, Challenge, CredentialStore, Credentials};
use super::digest::Digest;
use super::manifest::{self, Descriptor, Fetched, Platform};
use super::progress::Progress;
use super::reference::Reference;
use super::store::{self, BlobSource, Image, Store};

const MAX_MANIFEST: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{url}: {source}")]
    Http {
        url: String,
        source: Box<ureq::Error>,
    },
    #[error("{url}: unauthorized{hint}")]
    Unauthorized { url: String, hint: String },
    #[error("{url}: HTTP {status}{detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{url}: unsupported authentication challenge {header:?}")]
    BadChallenge { url: String, header: String },
    #[error("token from {realm}: {why}")]
    Token { realm: String, why: String },
    #[error("manifest {what}: digest mismatch: expected {expected}, got {actual}")]
    ManifestDigest {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("manifest {what}: larger than {MAX_MANIFEST} bytes")]
    ManifestTooBig { what: String },
    #[error("registry settings {path}: {why}")]
    Settings { path: String, why: String },
    #[error("{0}")]
    Auth(#[from] auth::Error),
    #[error("{0}")]
    Manifest(#[from] manifest::Error),
    #[error("{0}")]
    Store(#[from] store::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// How to reach a registry.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Plain HTTP instead of HTTPS (`--insecure`, or the registry is listed
    /// in `ROOT/registries.json`).
    pub plain_http: bool,
    /// Credentials from `--creds`; otherwise those `berth login` stored.
    pub credentials: Option<Credentials>,
}

impl Options {
    /// Fills in what the engine root says about `registry`: stored
    /// credentials, and `{"insecure": ["host:port"]}` in `registries.json`.
    pub fn with_root_settings(mut self, root: &Path, registry: &str) -> Result<Options> {
        if self.credentials.is_none() {
            self.credentials = CredentialStore::new(root).get(registry)?;
        }
        #[derive(Deserialize)]
        struct Settings {
            #[serde(default)]
            insecure: Vec<String>,
        }
        let path = root.join("registries.json");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let s: Settings = serde_json::from_slice(&bytes).map_err(|e| Error::Settings {
                    path: path.display().to_string(),
                    why: e.to_string(),
                })?;
                if s.insecure.iter().any(|r| r == registry) {
                    self.plain_http = true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Settings {
                    path: path.display().to_string(),
                    why: e.to_string(),
                });
            }
        }
        Ok(self)
    }
}

/// A client for one repository on one registry.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    registry: String,
    repository: String,
    credentials: Option<Credentials>,
    /// The `Authorization` value that last worked, shared by layer threads.
    authorization: Mutex<Option<String>>,
}

impl Client {
    pub fn new(registry: &str, api_host: &str, repository: &str, options: &Options) -> Client {
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build();
        let scheme = if options.plain_http { "http" } else { "https" };
        Client {
            agent: config.into(),
            base: format!("{scheme}://{api_host}"),
            registry: registry.to_string(),
            repository: repository.to_string(),
            credentials: options.credentials.clone(),
            authorization: Mutex::new(None),
        }
    }

    /// GET with the current authorization; on 401, answers the challenge
    /// once and retries.
    fn get(
        &self,
        path: &str,
        accept: Option<&str>,
        scope: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let url = format!("{}{}", self.base, path);
        let send = |auth: Option<&str>| {
            let mut req = self.agent.get(&url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.call().map_err(|source| Error::Http {
                url: url.clone(),
                source: Box::new(source),
            })
        };
        let current = self.authorization.lock().ok().and_then(|a| a.clone());
        let resp = send(current.as_deref())?;
        if resp.status().as_u16() != 401 {
            return self.check(resp, &url);
        }
        let header = resp
            .headers()
            .get("www-authenticate")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        let authorization = match auth::parse_challenge(&header) {
            Some(Challenge::Basic) => match &self.credentials {
                Some(c) => c.basic(),
                None => return Err(self.unauthorized(&url)),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope: challenge_scope,
            }) => {
                let scope = challenge_scope.or_else(|| scope.map(String::from));
                format!(
                    "Bearer {}",
                    self.token(&realm, service.as_deref(), scope.as_deref())?
                )
            }
            None => return Err(Error::BadChallenge { url, header }),
        };
        let resp = send(Some(&authorization))?;
        if resp.status().as_u16() == 401 {
            return Err(self.unauthorized(&url));
        }
        if let Ok(mut a) = self.authorization.lock() {
            *a = Some(authorization);
        }
        self.check(resp, &url)
    }

    fn unauthorized(&self, url: &str) -> Error {
        let hint = if self.credentials.is_some() {
            " (the credentials were refused)".to_string()
        } else {
            format!(" (log in with: berth login {})", self.registry)
        };
        Error::Unauthorized {
            url: url.to_string(),
            hint,
        }
    }

    fn check(
        &self,
        resp: ureq::http::Response<ureq::Body>,
        url: &str,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        // The distribution spec's error body: {"errors":[{"code","message"}]}.
        let body = resp
            .into_body()
            .with_config()
            .limit(64 << 10)
            .read_to_string()
            .unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let e = v.get("errors")?.get(0)?;
                Some(format!(
                    ": {} {}",
                    e.get("code")?.as_str()?,
                    e.get("message").and_then(|m| m.as_str()).unwrap_or("")
                ))
            })
            .unwrap_or_default();
        Err(Error::Status {
            url: url.to_string(),
            status,
            detail: detail.trim_end().to_string(),
        })
    }

    /// Fetches a bearer token from `realm`, with the credentials if any.
    fn token(&self, realm: &str, service: Option<&str>, scope: Option<&str>) -> Result<String> {
        let fail = |why: String| Error::Token {
            realm: realm.to_string(),
            why,
        };
        let mut req = self.agent.get(realm);
        if let Some(s) = service {
            req = req.query("service", s);
        }
        if let Some(s) = scope {
            req = req.query("scope", s);
        }
        if let Some(c) = &self.credentials {
            req = req.header("Authorization", c.basic());
        }
        let resp = req.call().map_err(|e| fail(e.to_string()))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(Error::Unauthorized {
                url: realm.to_string(),
                hint: " (the token server refused the credentials)".into(),
            });
        }
        if status != 200 {
            return Err(fail(format!("HTTP {status}")));
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = resp
            .into_body()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| fail(e.to_string()))?;
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("no token in the response".into()))
    }

    fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.repository)
    }

    /// Checks that the registry accepts us (what `berth login` verifies).
    pub fn ping(&self) -> Result<()> {
        self.get("/v2/", None, None).map(drop)
    }

    /// Fetches a manifest by tag or digest; returns its bytes and content type.
    pub fn manifest(&self, reference: &str) -> Result<(Vec<u8>, Option<String>)> {
        let path = format!("/v2/{}/manifests/{}", self.repository, reference);
        let resp = self.get(&path, Some(manifest::ACCEPT), Some(&self.pull_scope()))?;
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|h| h.to_str().ok())
            .map(String::from);
        let what = format!("{}/{}:{}", self.registry, self.repository, reference);
        let bytes = resp
            .into_body()
            .with_config()
            .limit(MAX_MANIFEST)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Error::ManifestTooBig { what: what.clone() },
                e => Error::Http {
                    url: format!("{}{}", self.base, path),
                    source: Box::new(e),
                },
            })?;
        Ok((bytes, content_type))
    }
}

impl BlobSource for Client {
    fn open(&self, key: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        let digest: Digest = key.parse().map_err(io::Error::other)?;
        let path = format!("/v2/{}/blobs/{}", self.repository, digest);
        let resp = self
            .get(&path, None, Some(&self.pull_scope()))
            .map_err(io::Error::other)?;
        Ok(Box::new(
            resp.into_body().into_with_config().limit(u64::MAX).reader(),
        ))
    }
}

/// Pulls `reference` into the store, choosing `platform` from an index.
pub fn pull(
    store: &Store,
    reference: &Reference,
    options: &Options,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<Image> {
    let client = Client::new(
        &reference.registry,
        reference.api_host(),
        &reference.repository,
        options,
    );
    let what = reference.to_string();
    let (bytes, content_type) = client.manifest(&reference.manifest_ref())?;
    let top_digest = Digest::of(&bytes);
    if let Some(expected) = &reference.digest
        && &top_digest != expected
    {
        return Err(Error::ManifestDigest {
            what,
            expected: expected.clone(),
            actual: top_digest,
        });
    }
    let (bytes, desc, manifest) = match manifest::parse(&bytes, content_type.as_deref(), &what)? {
        Fetched::Manifest(m) => {
            let media_type = m
                .media_type
                .clone()
                .or(content_type)
                .unwrap_or_else(|| manifest::OCI_MANIFEST.into());
            let size = bytes.len() as u64;
            (bytes, descriptor(media_type, top_digest.clone(), size), m)
        }
        Fetched::Index(index) => {
            let chosen = manifest::select_platform(&index, platform, &what)?.clone();
            let (bytes, content_type) = client.manifest(&chosen.digest.to_string())?;
            let actual = Digest::of(&bytes);
            if actual != chosen.digest {
                return Err(Error::ManifestDigest {
                    what: format!("{what} ({platform})"),
                    expected: chosen.digest,
                    actual,
                });
            }
            match manifest::parse(
                &bytes,
                content_type.as_deref().or(Some(&chosen.media_type)),
                &chosen.digest.to_string(),
            )? {
                Fetched::Manifest(m) => {
                    let size = bytes.len() as u64;
                    (bytes, descriptor(chosen.media_type, actual, size), m)
                }
                Fetched::Index(_) => {
                    return Err(Error::Manifest(manifest::Error::MediaType {
                        what: chosen.digest.to_string(),
                        media_type: "nested index".into(),
                    }));
                }
            }
        }
    };
    let names = if reference.tag.is_some() {
        vec![reference.clone()]
    } else {
        Vec::new()
    };
    let repo_digest = format!("{}@{}", reference.name(), top_digest);
    let plan = plan_for(&manifest, (bytes, desc), names, Some(repo_digest));
    Ok(store.import(&client, plan, progress)?)
}

fn descriptor(media_type: String, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type,
        digest,
        size,
        platform: None,
        annotations: None,
        urls: None,
    }
}

/// Checks credentials against a registry (for `berth login`).
pub fn login(registry: &str, options: &Options) -> Result<()> {
    let api_host = super::reference::registry_api_host(registry);
    Client::new(registry, api_host, "", options).ping()
}
