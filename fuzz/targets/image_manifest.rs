//! Fuzz body: manifest, index and image config parsing, as a registry or an
//! image archive serves them. The first byte picks the Content-Type the
//! server claimed; the rest is the document. Whatever parses must survive
//! what the store does next (platform choice, layer compression, the full
//! config) and serialise back to something that parses again.

use std::str::FromStr;

use berth::image::digest::Digest;
use berth::image::manifest::{self, Compression, Fetched, Platform};

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some(manifest::OCI_MANIFEST),
    Some(manifest::OCI_INDEX),
    Some(manifest::DOCKER_MANIFEST),
    Some(manifest::DOCKER_LIST),
    Some(manifest::DOCKER_SCHEMA1),
    Some("application/json; charset=utf-8"),
    Some(""),
];

pub fn run(data: &[u8]) {
    let Some((&selector, doc)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    match manifest::parse(doc, content_type, "fuzz") {
        Ok(Fetched::Index(index)) => {
            let _ = manifest::select_platform(&index, &Platform::host(), "fuzz");
            for d in &index.manifests {
                if let Some(p) = &d.platform {
                    // `--platform` text as `berth images` prints it.
                    let _ = Platform::from_str(&p.to_string());
                }
            }
            let bytes = serde_json::to_vec(&index).expect("an index serialises");
            match manifest::parse(&bytes, content_type, "fuzz") {
                Ok(Fetched::Index(_)) => {}
                other => panic!("a parsed index does not parse back: {other:?}"),
            }
        }
        Ok(Fetched::Manifest(m)) => {
            for layer in &m.layers {
                let _ = Compression::detect(&[], &layer.media_type);
            }
            let bytes = serde_json::to_vec(&m).expect("a manifest serialises");
            match manifest::parse(&bytes, content_type, "fuzz") {
                Ok(Fetched::Manifest(_)) => {}
                other => panic!("a parsed manifest does not parse back: {other:?}"),
            }
        }
        Err(_) => {}
    }
    // The same bytes as an image config, both ways the store reads one.
    let _ = manifest::parse_config(doc, usize::from(selector), "fuzz");
    let _ = serde_json::from_slice::<oci_spec::image::ImageConfiguration>(doc);
    if let Ok(text) = std::str::from_utf8(doc) {
        if let Ok(d) = Digest::from_str(text) {
            assert_eq!(Digest::from_str(&d.to_string()).ok(), Some(d.clone()));
            let _ = d.short();
        }
        let _ = Platform::from_str(text);
    }
    let _ = Compression::detect(doc, "");
}
