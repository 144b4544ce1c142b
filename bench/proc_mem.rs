//! Memory figures from /proc: the system's used memory (as `free` counts
//! it) and a process's RSS and PSS (smaps_rollup).

/// A field of /proc/meminfo, in KiB.
pub fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    field_kib(&text, field)
}

fn field_kib(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == field).then(|| v.split_whitespace().next()?.parse().ok())?
    })
}

/// Used memory as `free` computes it: total - free - buffers - cache
/// (page cache and reclaimable slab), in KiB.
pub fn used_kib() -> Option<u64> {
    let t = std::fs::read_to_string("/proc/meminfo").ok()?;
    let f = |k| field_kib(&t, k);
    let cache = f("Cached")? + f("SReclaimable")?;
    Some(f("MemTotal")?.saturating_sub(f("MemFree")? + f("Buffers")? + cache))
}

/// (RSS, PSS) of a process in KiB, from smaps_rollup.
pub fn rss_pss(pid: i32) -> Option<(u64, u64)> {
    let t = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    Some((field_kib(&t, "Rss")?, field_kib(&t, "Pss")?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_fields() {
        let t = "Rss:                1234 kB\nPss:                 567 kB\nPss_Anon: 1 kB\n";
        assert_eq!(super::field_kib(t, "Rss"), Some(1234));
        assert_eq!(super::field_kib(t, "Pss"), Some(567));
        assert_eq!(super::field_kib(t, "Swap"), None);
    }
}
