//! The OCI resources are cgroup v1 values; cgroup v2 wants other units and
//! ranges. These conversions are the ones runc (opencontainers/cgroups) and
//! crun use, so a config means the same thing under every runtime.

/// Highest cpu.shares the kernel takes (`MAX_SHARES`, 1 << 18).
pub const SHARES_MAX: u64 = 262_144;
/// Lowest cpu.shares the kernel takes (`MIN_SHARES`).
pub const SHARES_MIN: u64 = 2;

/// cpu.shares [2, 262144] → cpu.weight [1, 10000], 0 staying "unset".
///
/// A quadratic in log2(shares) that maps the minimum, the default (1024 →
/// 100) and the maximum exactly; the older linear formula sent the default
/// to 39 (kubernetes#131216). Same as runc ≥ 1.3.2 and crun ≥ 1.23.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= SHARES_MIN {
        return 1;
    }
    if shares >= SHARES_MAX {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

/// blkio weight [10, 1000] → io.weight [1, 10000], 0 staying "unset".
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = u64::from(weight.max(10));
    1 + (w - 10) * 9999 / 990
}

/// Why a swap value cannot be converted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SwapError {
    #[error("a swap limit needs a memory limit (memory+swap is what v1 calls swap)")]
    NoMemoryLimit,
    #[error("memory limit {0} is negative and not -1 (unlimited)")]
    BadMemory(i64),
    #[error("swap {0} is negative and not -1 (unlimited)")]
    BadSwap(i64),
    #[error("swap {swap} (memory+swap) is below the memory limit {memory}")]
    BelowMemory { swap: i64, memory: i64 },
}

/// OCI's swap is v1's memory.memsw.limit_in_bytes: memory + swap. v2's
/// memory.swap.max is swap alone, so it is `swap - limit`. Returns -1 for
/// unlimited and 0 for "leave it" (swap unset), as runc does: an unlimited
/// memory with no swap given means unlimited swap too.
pub fn memsw_to_swap_max(swap: i64, memory: i64) -> Result<i64, SwapError> {
    if memory == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if swap < -1 {
        return Err(SwapError::BadSwap(swap));
    }
    if memory == 0 || memory == -1 {
        return Err(SwapError::NoMemoryLimit);
    }
    if memory < 0 {
        return Err(SwapError::BadMemory(memory));
    }
    if swap < memory {
        return Err(SwapError::BelowMemory { swap, memory });
    }
    Ok(swap - memory)
}

/// v2 spells "no limit" as `max`; OCI as -1 (any negative here).
pub fn v2_limit(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

/// cpu.max: "$QUOTA $PERIOD", quota `max` when unlimited (-1). A quota with
/// no period keeps the kernel's period (the value is then one number).
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let quota = quota.filter(|q| *q != 0);
    let period = period.filter(|p| *p != 0);
    if quota.is_none() && period.is_none() {
        return None;
    }
    let q = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_string(),
    };
    Some(match period {
        Some(p) => format!("{q} {p}"),
        None => q,
    })
}

/// io.max wants `max` where v1 wrote 0 to lift a limit.
pub fn io_max_rate(rate: u64) -> String {
    if rate == 0 {
        "max".into()
    } else {
        rate.to_string()
    }
}

/// Parses a cgroup value: a number, or `max` (v2) / a huge v1 "unlimited"
/// (PAGE_COUNTER_MAX pages) meaning no limit, returned as u64::MAX.
pub fn parse_limit(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    let v: u64 = s.parse().ok()?;
    // v1 prints PAGE_COUNTER_MAX * PAGE_SIZE, just under i64::MAX.
    if v >= (i64::MAX as u64) & !0xfff_u64 {
        return Some(u64::MAX);
    }
    Some(v)
}

/// Whether `size` is a huge page size as hugetlb files spell it: digits and
/// KB, MB or GB (`2MB`, `1GB`, `64KB`).
pub fn valid_hugepage_size(size: &str) -> bool {
    let digits = size.trim_end_matches(['K', 'M', 'G', 'B']);
    let unit = &size[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_match_runc() {
        // opencontainers/cgroups utils_test.go's table.
        for (shares, weight) in [
            (0, 0),
            (1, 1),
            (2, 1),
            (3, 2),
            (1024, 100),
            (262_143, 10_000),
            (262_144, 10_000),
            (262_145, 10_000),
        ] {
            assert_eq!(shares_to_weight(shares), weight, "shares {shares}");
        }
        // Monotonic over the whole range.
        let mut last = 0;
        for s in (2..SHARES_MAX).step_by(97) {
            let w = shares_to_weight(s);
            assert!(w >= last && (1..=10_000).contains(&w));
            last = w;
        }
    }

    #[test]
    fn blkio_weights() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_semantics() {
        // runc's TestConvertMemorySwapToCgroupV2Value.
        assert_eq!(memsw_to_swap_max(0, 0), Ok(0));
        assert_eq!(memsw_to_swap_max(-1, 0), Ok(-1));
        assert_eq!(memsw_to_swap_max(-1, -1), Ok(-1));
        assert_eq!(memsw_to_swap_max(0, -1), Ok(-1));
        assert_eq!(memsw_to_swap_max(-2, 0), Err(SwapError::BadSwap(-2)));
        assert_eq!(memsw_to_swap_max(-1, 1000), Ok(-1));
        assert_eq!(memsw_to_swap_max(1000, 1000), Ok(0));
        assert_eq!(memsw_to_swap_max(500, 200), Ok(300));
        assert_eq!(
            memsw_to_swap_max(300, 400),
            Err(SwapError::BelowMemory {
                swap: 300,
                memory: 400
            })
        );
        assert_eq!(memsw_to_swap_max(300, 0), Err(SwapError::NoMemoryLimit));
        assert_eq!(memsw_to_swap_max(300, -1), Err(SwapError::NoMemoryLimit));
    }

    #[test]
    fn cpu_max_strings() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(cpu_max(Some(0), Some(0)), None);
        assert_eq!(
            cpu_max(Some(50_000), Some(100_000)).unwrap(),
            "50000 100000"
        );
        assert_eq!(cpu_max(Some(-1), Some(100_000)).unwrap(), "max 100000");
        assert_eq!(cpu_max(Some(20_000), None).unwrap(), "20000");
        assert_eq!(cpu_max(None, Some(50_000)).unwrap(), "max 50000");
    }

    #[test]
    fn limits() {
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(4096), "4096");
        assert_eq!(io_max_rate(0), "max");
        assert_eq!(io_max_rate(10), "10");
        assert_eq!(parse_limit("max"), Some(u64::MAX));
        assert_eq!(parse_limit("9223372036854771712\n"), Some(u64::MAX));
        assert_eq!(parse_limit("1048576"), Some(1_048_576));
        assert_eq!(parse_limit("x"), None);
    }

    #[test]
    fn hugepage_sizes() {
        for ok in ["2MB", "1GB", "64KB"] {
            assert!(valid_hugepage_size(ok), "{ok}");
        }
        for bad in ["", "MB", "2mb", "2M", "../2MB", "2MB/x", "1TB"] {
            assert!(!valid_hugepage_size(bad), "{bad}");
        }
    }
}
