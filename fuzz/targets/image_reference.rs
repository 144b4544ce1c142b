//! Fuzz body: the image reference parser (`berth pull NAME`, `berth run
//! NAME`). Any string is refused with a typed error or parses to a reference
//! whose stored name parses back to the same reference.

use std::str::FromStr;

use berth::image::reference::{Reference, normalize_registry, registry_api_host};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `berth login` normalises whatever the user typed as a registry.
    let _ = registry_api_host(&normalize_registry(text));
    let Ok(reference) = Reference::from_str(text) else {
        return;
    };
    let _ = (
        reference.name(),
        reference.api_host(),
        reference.manifest_ref(),
    );
    // The store records full_name() and parses it again on every lookup.
    let full = reference.full_name();
    match Reference::from_str(&full) {
        Ok(again) => assert_eq!(again, reference, "{text:?} is stored as {full:?}"),
        Err(e) => panic!("{text:?} is stored as {full:?}, which does not parse: {e}"),
    }
    // `berth images` shows familiar names, which users type back in.
    let familiar = reference.familiar_name();
    match Reference::from_str(&familiar) {
        Ok(again) => assert_eq!(
            again.name(),
            reference.name(),
            "{text:?} is shown as {familiar:?}, which names another repository"
        ),
        Err(e) => panic!("{text:?} is shown as {familiar:?}, which does not parse: {e}"),
    }
}
