//! The cgroup v2 device filter: a BPF_PROG_TYPE_CGROUP_DEVICE program,
//! assembled by hand from a [`Policy`] (as runc's devicefilter package
//! does; no BPF toolchain is needed for a few dozen instructions).
//!
//! The kernel runs it on every device open and mknod with a
//! `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! in r1, `access_type` being `(access << 16) | type`; it returns 1 to
//! allow and 0 to refuse (EPERM).

use super::{DevType, Policy, RWM};

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes: class | operation | source (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x01 | 0x60; // BPF_LDX | BPF_MEM | BPF_W (0)
const ALU32_AND_K: u8 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x04 | 0x70; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K: u8 = 0x04 | 0xb0; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X: u8 = 0x04 | 0xb0 | 0x08; // BPF_ALU | BPF_MOV | BPF_X
const JEQ_K: u8 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const JNE_K: u8 = 0x05 | 0x50; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x05 | 0x90; // BPF_JMP | BPF_EXIT

// The registers the prologue fills.
const R_CTX: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;
const R_TMP: u8 = 1; // the context pointer is not needed after the prologue

/// BPF_DEVCG_DEV_BLOCK and BPF_DEVCG_DEV_CHAR.
pub const DEV_BLOCK: i32 = 1;
pub const DEV_CHAR: i32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// The program enforcing `policy`: a prologue unpacking the context, one
/// block per exception (each falls through to the next on a mismatch and
/// returns the opposite of the default on a match), then the default.
pub fn program(policy: &Policy) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, R_TYPE, R_CTX, 0, 0),
        insn(ALU32_AND_K, R_TYPE, 0, 0, 0xffff),
        insn(LDX_MEM_W, R_ACCESS, R_CTX, 0, 0),
        insn(ALU32_RSH_K, R_ACCESS, 0, 0, 16),
        insn(LDX_MEM_W, R_MAJOR, R_CTX, 4, 0),
        insn(LDX_MEM_W, R_MINOR, R_CTX, 8, 0),
    ];
    let verdict = i32::from(!policy.default_allow);
    for e in &policy.exceptions {
        // Jumps hold a placeholder offset (None) patched to the block's end.
        let mut block: Vec<(Insn, bool)> = Vec::new();
        match e.typ {
            DevType::Char => block.push((insn(JNE_K, R_TYPE, 0, 0, DEV_CHAR), true)),
            DevType::Block => block.push((insn(JNE_K, R_TYPE, 0, 0, DEV_BLOCK), true)),
            DevType::All => {}
        }
        let access = i32::from(e.access);
        if policy.default_allow {
            // A deny exception hits if it shares any bit with the request.
            if e.access & RWM != RWM {
                block.push((insn(ALU32_MOV_X, R_TMP, R_ACCESS, 0, 0), false));
                block.push((insn(ALU32_AND_K, R_TMP, 0, 0, access), false));
                block.push((insn(JEQ_K, R_TMP, 0, 0, 0), true));
            }
        } else if e.access & RWM != RWM {
            // An allow exception hits if it grants every bit requested.
            block.push((insn(ALU32_MOV_X, R_TMP, R_ACCESS, 0, 0), false));
            block.push((insn(ALU32_AND_K, R_TMP, 0, 0, !access), false));
            block.push((insn(JNE_K, R_TMP, 0, 0, 0), true));
        }
        if let Some(m) = e.major {
            block.push((insn(JNE_K, R_MAJOR, 0, 0, m as i32), true));
        }
        if let Some(m) = e.minor {
            block.push((insn(JNE_K, R_MINOR, 0, 0, m as i32), true));
        }
        block.push((insn(ALU32_MOV_K, 0, 0, 0, verdict), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        for (i, (mut ins, to_end)) in block.into_iter().enumerate() {
            if to_end {
                // Offsets count from the next instruction.
                ins.off = (len - i - 1) as i16;
            }
            p.push(ins);
        }
    }
    p.push(insn(ALU32_MOV_K, 0, 0, 0, i32::from(policy.default_allow)));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// The program as the kernel reads it: 8 bytes per instruction, opcode,
/// registers (dst in the low nibble: little-endian bitfields, x86_64),
/// offset and immediate in little-endian.
pub fn encode(prog: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        out.push(i.code);
        out.push((i.dst & 0xf) | ((i.src & 0xf) << 4));
        out.extend_from_slice(&i.off.to_le_bytes());
        out.extend_from_slice(&i.imm.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{MKNOD, READ, Rule, container_rules};
    use super::*;

    /// Runs the subset of eBPF [`program`] emits, as the kernel would.
    fn run(prog: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = prog[pc];
            pc += 1;
            let (d, s) = (i.dst as usize, i.src as usize);
            let k = i.imm as i64 as u64;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(s, R_CTX as usize, "loads only from the context");
                    r[d] = u64::from(ctx[i.off as usize / 4]);
                }
                ALU32_AND_K => r[d] = (r[d] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => r[d] = ((r[d] as u32) >> i.imm) as u64,
                ALU32_MOV_K => r[d] = i.imm as u32 as u64,
                ALU32_MOV_X => r[d] = r[s] as u32 as u64,
                JEQ_K if r[d] == k => pc = (pc as i64 + i64::from(i.off)) as usize,
                JNE_K if r[d] != k => pc = (pc as i64 + i64::from(i.off)) as usize,
                JEQ_K | JNE_K => {}
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
        panic!("program did not exit");
    }

    fn oci(json: &str) -> oci_spec::runtime::LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
    }

    /// The program must agree with the v1 emulation on every request.
    fn check_agrees(policy: &Policy) {
        let prog = program(policy);
        for (typ, t) in [(DevType::Char, DEV_CHAR), (DevType::Block, DEV_BLOCK)] {
            for major in [0, 1, 5, 8, 10, 136, 254] {
                for minor in [0, 1, 2, 3, 5, 7, 9, 200, 4095] {
                    for access in 1..=7u8 {
                        let want = policy.allows(typ, major, minor, access);
                        let got = run(&prog, t as u32, u32::from(access), major, minor);
                        assert_eq!(
                            got,
                            u64::from(want),
                            "{typ:?} {major}:{minor} access {access} under {policy:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn deny_all_plus_defaults() {
        let p = Policy::from_rules(&container_rules(&[]).unwrap());
        let prog = program(&p);
        // Prologue: type, access, major, minor.
        assert_eq!(prog[0], insn(LDX_MEM_W, 2, 1, 0, 0));
        assert_eq!(prog[1], insn(ALU32_AND_K, 2, 0, 0, 0xffff));
        assert_eq!(prog[3], insn(ALU32_RSH_K, 3, 0, 0, 16));
        assert_eq!(prog[5], insn(LDX_MEM_W, 5, 1, 8, 0));
        // First exception, "c *:* m": type check jumps over the 3 access
        // instructions and the 2-instruction verdict.
        assert_eq!(prog[6], insn(JNE_K, 2, 0, 5, DEV_CHAR));
        assert_eq!(prog[7], insn(ALU32_MOV_X, 1, 3, 0, 0));
        assert_eq!(prog[8], insn(ALU32_AND_K, 1, 0, 0, !(MKNOD as i32)));
        assert_eq!(prog[9], insn(JNE_K, 1, 0, 2, 0));
        assert_eq!(prog[10], insn(ALU32_MOV_K, 0, 0, 0, 1));
        assert_eq!(prog[11], insn(EXIT, 0, 0, 0, 0));
        // c 1:3 rwm: type, major, minor, verdict; no access check.
        assert_eq!(prog[18], insn(JNE_K, 2, 0, 4, DEV_CHAR));
        assert_eq!(prog[19], insn(JNE_K, 4, 0, 3, 1));
        assert_eq!(prog[20], insn(JNE_K, 5, 0, 2, 3));
        // Default: deny.
        assert_eq!(prog[prog.len() - 2], insn(ALU32_MOV_K, 0, 0, 0, 0));
        assert_eq!(prog[prog.len() - 1], insn(EXIT, 0, 0, 0, 0));
        check_agrees(&p);
        assert_eq!(run(&prog, DEV_CHAR as u32, READ as u32, 1, 3), 1);
        assert_eq!(run(&prog, DEV_CHAR as u32, READ as u32, 10, 200), 0);
        assert_eq!(run(&prog, DEV_BLOCK as u32, MKNOD as u32, 8, 0), 1);
    }

    #[test]
    fn mixed_rules_agree_with_v1() {
        let configs = [
            vec![oci(
                r#"{"allow":true,"type":"c","major":10,"minor":200,"access":"rw"}"#,
            )],
            vec![
                oci(r#"{"allow":true,"access":"rwm"}"#),
                oci(r#"{"allow":false,"type":"c","major":1,"minor":5,"access":"w"}"#),
                oci(r#"{"allow":false,"type":"b","access":"r"}"#),
            ],
            vec![
                oci(r#"{"allow":true,"type":"b","major":8,"access":"r"}"#),
                oci(r#"{"allow":true,"type":"b","major":8,"minor":0,"access":"w"}"#),
            ],
        ];
        for c in &configs {
            let mut rules = vec![Rule::from_oci(0, &oci(r#"{"allow":false}"#)).unwrap()];
            for (i, r) in c.iter().enumerate() {
                rules.push(Rule::from_oci(i, r).unwrap());
            }
            check_agrees(&Policy::from_rules(&rules));
            check_agrees(&Policy::from_rules(&container_rules(c).unwrap()));
        }
        // The allow-all policy is one instruction pair after the prologue.
        let all = Policy::allow_all();
        assert_eq!(program(&all).len(), 8);
        check_agrees(&all);
    }

    #[test]
    fn encoding_is_the_kernel_layout() {
        let bytes = encode(&[
            insn(JNE_K, 5, 0, 2, 3),
            insn(ALU32_AND_K, 1, 0, 0, -2),
            insn(ALU32_MOV_X, 1, 3, 0, 0),
        ]);
        assert_eq!(
            bytes,
            [
                0x55, 0x05, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, //
                0x54, 0x01, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff, //
                0xbc, 0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            ]
        );
    }
}
