//! Builds the two small C programs the crate embeds: the exec stub
//! (src/runtime/exec_stub/exec_stub.c), a tiny static program the runtime
//! execs from a sealed memfd as the step before the container's own, and
//! berth-init (src/engine/init/berth_init.c), the pid 1 of `run --init`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "src/runtime/exec_stub/exec_stub.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("exec_stub");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&cc)
        .args([
            "-Os",
            "-static",
            "-nostdlib",
            "-nostartfiles",
            "-ffreestanding",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            "-fno-pie",
            "-no-pie",
            "-Wl,--build-id=none",
            "-Wl,-z,noexecstack",
            "-s",
            "-o",
        ])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}` to build the exec stub: {e}"));
    assert!(
        status.success(),
        "building the exec stub with `{cc}` failed"
    );

    // berth-init, the container init of `berth run --init`: static, so it
    // runs in any image.
    let init_src = "src/engine/init/berth_init.c";
    println!("cargo:rerun-if-changed={init_src}");
    let init_out =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("berth-init");
    let status = Command::new(&cc)
        .args(["-Os", "-static", "-s", "-o"])
        .arg(&init_out)
        .arg(init_src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}` to build berth-init: {e}"));
    assert!(
        status.success(),
        "building berth-init with `{cc}` failed (it needs static glibc: libc6-dev)"
    );
}
