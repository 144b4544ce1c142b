//! What a shim gives back after it started its container. It is a fork of
//! the CLI, so it holds the CLI's heap and stack pages too; once the CLI
//! exits they are the shim's alone, in every shim's PSS.

/// Returns the free heap pages (the CLI's parsing, the spec, the compiled
/// seccomp filter are all freed by now) and the stack pages below the
/// current frame, which only the CLI's deeper calls used.
pub fn release_startup_memory() {
    // SAFETY: malloc_trim only hands glibc's free pages back to the kernel.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
    release_stack_below_here();
}

/// The part of the main thread's stack this far (64 KiB of slack) below
/// the current frame: nothing live is there, and the pages read as zero
/// again if a deeper call reaches them.
#[inline(never)]
fn release_stack_below_here() {
    const SLACK: usize = 64 * 1024;
    let marker = 0u8;
    let sp = std::ptr::addr_of!(marker) as usize;
    let Some(low) = stack_start() else { return };
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as usize;
    let high = sp.saturating_sub(SLACK) & !(page - 1);
    if high <= low || sp - low > 64 * 1024 * 1024 {
        // Not on the main stack (a thread), or nothing to give back.
        return;
    }
    // SAFETY: [low, high) lies in our main stack below the live frames
    // (the stack grows down and nothing points below the stack pointer:
    // no signal handler runs on this stack, signals are read by signalfd);
    // MADV_DONTNEED on private anonymous memory makes it read as zero.
    unsafe {
        libc::madvise(low as *mut libc::c_void, high - low, libc::MADV_DONTNEED);
    }
}

/// The lowest address of the `[stack]` mapping.
fn stack_start() -> Option<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
    let start = line.split('-').next()?;
    usize::from_str_radix(start, 16).ok()
}
