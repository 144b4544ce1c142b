//! Device access rules (`linux.resources.devices`).
//!
//! cgroup v1 has a devices controller taking rule lines; cgroup v2 has no
//! controller at all, only an eBPF program of type CGROUP_DEVICE attached
//! to the cgroup. So that a config means the same on both, the rules are
//! first run through [`Policy`], an emulation of the v1 controller's
//! semantics (kernel security/device_cgroup.c), and the program is built
//! from the resulting policy ([`bpf::program`]).

pub mod attach;
pub mod bpf;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "linux.resources.devices[{index}]: type {typ:?} is not a device the devices controller checks (use a, b or c)"
    )]
    Type { index: usize, typ: String },
    #[error("linux.resources.devices[{index}]: {field} {value} is out of range")]
    Number {
        index: usize,
        field: &'static str,
        value: i64,
    },
    #[error("linux.resources.devices[{index}]: access {access:?} may only hold r, w and m")]
    Access { index: usize, access: String },
}

/// Access bits as the kernel's `bpf_cgroup_dev_ctx` encodes them
/// (BPF_DEVCG_ACC_*), which is also the v1 controller's set.
pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
pub const RWM: u8 = MKNOD | READ | WRITE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevType {
    /// Every device (`a`): only as a whole-policy rule.
    All,
    Char,
    Block,
}

impl DevType {
    fn letter(self) -> char {
        match self {
            DevType::All => 'a',
            DevType::Char => 'c',
            DevType::Block => 'b',
        }
    }
}

/// One rule: allow or deny `access` to devices of a type and number
/// (None = any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub typ: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

/// Devices every container may use whatever its rules say, as runc's
/// AllowedDevices: mknod of anything (using it is another matter), the
/// standard nodes /dev/{null,zero,full,random,urandom,tty}, /dev/ptmx and
/// the ptys.
pub const ALWAYS_ALLOWED: [Rule; 10] = [
    allow(DevType::Char, None, None, MKNOD),
    allow(DevType::Block, None, None, MKNOD),
    allow(DevType::Char, Some(1), Some(3), RWM),
    allow(DevType::Char, Some(1), Some(5), RWM),
    allow(DevType::Char, Some(1), Some(7), RWM),
    allow(DevType::Char, Some(1), Some(8), RWM),
    allow(DevType::Char, Some(1), Some(9), RWM),
    allow(DevType::Char, Some(5), Some(0), RWM),
    allow(DevType::Char, Some(5), Some(2), RWM),
    allow(DevType::Char, Some(136), None, RWM),
];

const fn allow(typ: DevType, major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
    Rule {
        allow: true,
        typ,
        major,
        minor,
        access,
    }
}

impl Rule {
    /// The config's rule, checked. `index` is its place in the list, for
    /// messages.
    pub fn from_oci(index: usize, r: &LinuxDeviceCgroup) -> Result<Rule, Error> {
        let typ = match r.typ() {
            None | Some(LinuxDeviceType::A) => DevType::All,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => DevType::Char,
            Some(LinuxDeviceType::B) => DevType::Block,
            Some(LinuxDeviceType::P) => {
                return Err(Error::Type {
                    index,
                    typ: "p".into(),
                });
            }
        };
        let number = |field: &'static str, n: Option<i64>| -> Result<Option<u32>, Error> {
            match n {
                None => Ok(None),
                Some(n) if n < 0 => Ok(None),
                // The program compares against a sign-extended 32-bit
                // immediate; real majors and minors are 12 and 20 bits.
                Some(n) if n <= i64::from(i32::MAX) => Ok(Some(n as u32)),
                Some(value) => Err(Error::Number {
                    index,
                    field,
                    value,
                }),
            }
        };
        let major = number("major", r.major())?;
        let minor = number("minor", r.minor())?;
        let access = match r.access().as_deref() {
            None | Some("") => RWM,
            Some(a) => parse_access(a).ok_or_else(|| Error::Access {
                index,
                access: a.to_string(),
            })?,
        };
        Ok(Rule {
            allow: r.allow(),
            typ,
            major,
            minor,
            access,
        })
    }

    /// The v1 rule line: "c 1:3 rwm", `*` for any; "a" for everything.
    pub fn v1_line(&self) -> String {
        if self.typ == DevType::All {
            return "a".into();
        }
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.typ.letter(),
            num(self.major),
            num(self.minor),
            access_string(self.access)
        )
    }

    /// The v1 file this rule is written to.
    pub fn v1_file(&self) -> &'static str {
        if self.allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    }
}

fn parse_access(a: &str) -> Option<u8> {
    let mut bits = 0;
    for c in a.chars() {
        bits |= match c {
            'r' => READ,
            'w' => WRITE,
            'm' => MKNOD,
            _ => return None,
        };
    }
    Some(bits)
}

fn access_string(bits: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
        if bits & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// The container's full rule list: everything denied, then the config's
/// rules in order, then [`ALWAYS_ALLOWED`] (runc's order).
pub fn container_rules(config: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, Error> {
    let mut rules = vec![Rule {
        allow: false,
        typ: DevType::All,
        major: None,
        minor: None,
        access: RWM,
    }];
    for (i, r) in config.iter().enumerate() {
        rules.push(Rule::from_oci(i, r)?);
    }
    rules.extend(ALWAYS_ALLOWED);
    Ok(rules)
}

/// An exception to the default: a type (char or block), numbers (None =
/// any) and access bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    pub typ: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

/// The v1 devices controller's state: a default and a list of exceptions
/// to it (devices allowed under default-deny, denied under default-allow).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

impl Policy {
    /// A new v1 cgroup under the root: everything allowed.
    pub fn allow_all() -> Policy {
        Policy {
            default_allow: true,
            exceptions: Vec::new(),
        }
    }

    /// The policy a rule list leads to, from a new cgroup.
    pub fn from_rules(rules: &[Rule]) -> Policy {
        let mut p = Policy::allow_all();
        for r in rules {
            p.apply(r);
        }
        p
    }

    /// What writing `rule` to devices.allow / devices.deny does
    /// (devcgroup_update_access): `a` resets the default and drops every
    /// exception; a rule in the default's direction removes its access
    /// from the identical exception; the other direction adds it.
    pub fn apply(&mut self, rule: &Rule) {
        if rule.typ == DevType::All {
            self.default_allow = rule.allow;
            self.exceptions.clear();
            return;
        }
        let key =
            |e: &Exception| e.typ == rule.typ && e.major == rule.major && e.minor == rule.minor;
        if rule.allow == self.default_allow {
            for e in self.exceptions.iter_mut().filter(|e| key(e)) {
                e.access &= !rule.access;
            }
            self.exceptions.retain(|e| e.access != 0);
        } else if let Some(e) = self.exceptions.iter_mut().find(|e| key(e)) {
            e.access |= rule.access;
        } else {
            self.exceptions.push(Exception {
                typ: rule.typ,
                major: rule.major,
                minor: rule.minor,
                access: rule.access,
            });
        }
    }

    /// Whether an access is allowed (devcgroup_legacy_check_permission):
    /// under default-deny, an exception must grant every bit asked for;
    /// under default-allow, an exception denying any of them refuses.
    pub fn allows(&self, typ: DevType, major: u32, minor: u32, access: u8) -> bool {
        let hit = self.exceptions.iter().any(|e| {
            e.typ == typ
                && e.major.is_none_or(|m| m == major)
                && e.minor.is_none_or(|m| m == minor)
                && if self.default_allow {
                    access & e.access != 0
                } else {
                    access & !e.access == 0
                }
        });
        self.default_allow != hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(json: &str) -> LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn parses_config_rules() {
        let r = Rule::from_oci(0, &oci(r#"{"allow":false,"access":"rwm"}"#)).unwrap();
        assert_eq!(r.typ, DevType::All);
        assert_eq!(r.v1_line(), "a");
        assert_eq!(r.v1_file(), "devices.deny");
        let r = Rule::from_oci(
            0,
            &oci(r#"{"allow":true,"type":"c","major":10,"access":"rw"}"#),
        )
        .unwrap();
        assert_eq!(r.v1_line(), "c 10:* rw");
        assert_eq!(r.v1_file(), "devices.allow");
        let r =
            Rule::from_oci(0, &oci(r#"{"allow":true,"type":"b","major":8,"minor":-1}"#)).unwrap();
        assert_eq!(r.v1_line(), "b 8:* rwm");
        assert!(Rule::from_oci(3, &oci(r#"{"allow":true,"type":"p"}"#)).is_err());
        let e = Rule::from_oci(2, &oci(r#"{"allow":true,"type":"c","access":"rx"}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("devices[2]") && e.contains("\"rx\""), "{e}");
        assert!(
            Rule::from_oci(0, &oci(r#"{"allow":true,"type":"c","major":4294967296}"#)).is_err()
        );
    }

    #[test]
    fn always_allowed_lines() {
        let lines: Vec<String> = ALWAYS_ALLOWED.iter().map(Rule::v1_line).collect();
        assert_eq!(lines[0], "c *:* m");
        assert_eq!(lines[2], "c 1:3 rwm");
        assert_eq!(lines[9], "c 136:* rwm");
    }

    #[test]
    fn emulates_v1_semantics() {
        // Deny all, allow /dev/null rw and all of major 10 for mknod, then
        // take write back from /dev/null.
        let rules = container_rules(&[
            oci(r#"{"allow":true,"type":"c","major":10,"minor":200,"access":"rwm"}"#),
            oci(r#"{"allow":false,"type":"c","major":1,"minor":3,"access":"w"}"#),
        ])
        .unwrap();
        let p = Policy::from_rules(&rules);
        assert!(!p.default_allow);
        assert!(p.allows(DevType::Char, 10, 200, READ | WRITE));
        assert!(!p.allows(DevType::Char, 10, 201, READ));
        assert!(p.allows(DevType::Char, 10, 201, MKNOD), "c *:* m");
        // The deny came before ALWAYS_ALLOWED re-allowed 1:3 rwm.
        assert!(p.allows(DevType::Char, 1, 3, WRITE));
        assert!(!p.allows(DevType::Block, 8, 0, READ));
        assert!(p.allows(DevType::Block, 8, 0, MKNOD));
        assert!(p.allows(DevType::Char, 136, 4, READ | WRITE));

        // An allow-all config with one deny: a blacklist where any denied
        // bit refuses the access.
        let mut p = Policy::allow_all();
        p.apply(&Rule::from_oci(0, &oci(r#"{"allow":true}"#)).unwrap());
        p.apply(
            &Rule::from_oci(
                1,
                &oci(r#"{"allow":false,"type":"c","major":1,"minor":5,"access":"w"}"#),
            )
            .unwrap(),
        );
        assert!(p.default_allow);
        assert!(p.allows(DevType::Char, 1, 5, READ));
        assert!(!p.allows(DevType::Char, 1, 5, READ | WRITE));
        assert!(p.allows(DevType::Block, 7, 0, READ | WRITE));
        // Removing the exception's last bit drops it.
        p.apply(
            &Rule::from_oci(
                2,
                &oci(r#"{"allow":true,"type":"c","major":1,"minor":5,"access":"w"}"#),
            )
            .unwrap(),
        );
        assert!(p.exceptions.is_empty());
    }

    #[test]
    fn same_key_exceptions_merge() {
        let mut p = Policy::from_rules(&container_rules(&[]).unwrap());
        let n = p.exceptions.len();
        p.apply(
            &Rule::from_oci(
                0,
                &oci(r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"r"}"#),
            )
            .unwrap(),
        );
        assert_eq!(p.exceptions.len(), n);
    }
}
