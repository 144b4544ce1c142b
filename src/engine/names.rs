//! Container ids (64 hex digits) and readable random names, as docker makes
//! them.

use std::io::Read;

const LEFT: [&str; 32] = [
    "admiring",
    "bold",
    "brave",
    "busy",
    "calm",
    "clever",
    "cool",
    "dazzling",
    "eager",
    "elegant",
    "epic",
    "festive",
    "focused",
    "gallant",
    "gifted",
    "happy",
    "hopeful",
    "jolly",
    "keen",
    "kind",
    "lucid",
    "modest",
    "nifty",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "stoic",
    "tender",
    "vibrant",
];
const RIGHT: [&str; 32] = [
    "agnesi", "babbage", "bell", "bohr", "cerf", "curie", "darwin", "dijkstra", "einstein",
    "euler", "fermat", "franklin", "galileo", "goldberg", "hopper", "hypatia", "kepler", "knuth",
    "lamport", "lovelace", "mccarthy", "meitner", "newton", "noether", "pascal", "ritchie",
    "shannon", "thompson", "torvalds", "turing", "wozniak", "yalow",
];

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // getrandom(2) through /dev/urandom's file interface; failure is not
    // something to recover from.
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    b
}

/// A new container id: 32 random bytes in hex.
pub fn new_id() -> String {
    random_bytes::<32>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A random `adjective_scientist` name; `attempt` > 0 adds a digit, as
/// docker does after a collision.
pub fn random_name(attempt: u32) -> String {
    let r = random_bytes::<2>();
    let base = format!(
        "{}_{}",
        LEFT[r[0] as usize % LEFT.len()],
        RIGHT[r[1] as usize % RIGHT.len()]
    );
    if attempt == 0 {
        base
    } else {
        format!("{base}{}", random_bytes::<1>()[0] % 10)
    }
}

/// A container ID as [`new_id`] makes them: 64 lowercase hex digits.
pub fn valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// docker's name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(new_id(), id);
        assert!(valid_id(&id));
        assert!(!valid_id(&id[1..]) && !valid_id(&id.to_uppercase()) && !valid_id("../x"));
        assert!(valid_name(&random_name(0)));
        assert!(valid_name("web-1.a_b"));
        assert!(!valid_name("-web"));
        assert!(!valid_name("a"));
        assert!(!valid_name("we b"));
    }
}
