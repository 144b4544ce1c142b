//! `--user name[:group]` resolved against the image's /etc/passwd and
//! /etc/group, as docker does (numbers pass through; a name must exist).

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("invalid user {0:?}: use name, uid, name:group or uid:gid")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: those that list the user in /etc/group.
    pub additional_gids: Vec<u32>,
    pub home: Option<String>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        Some((
            f[0],
            f[2].parse().ok()?,
            f[3].split(',').filter(|m| !m.is_empty()).collect(),
        ))
    })
}

/// Resolves `spec` (empty means root) with the image's passwd and group
/// file contents (empty strings when the image has none).
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser, Error> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() && grp.is_some() {
        return Err(Error::Invalid(spec.to_string()));
    }
    let user = if user.is_empty() { "0" } else { user };
    let entry =
        passwd_entries(passwd).find(|e| e.name == user || user.parse::<u32>().ok() == Some(e.uid));
    let (uid, mut gid, name, home) = match (entry, user.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name), Some(e.home.to_string())),
        (None, Ok(uid)) => (uid, uid, None, None),
        (None, Err(_)) => return Err(Error::NoUser(user.to_string())),
    };
    if name.is_none() && user.parse::<u32>().is_ok() {
        // A bare uid with no passwd entry runs with gid 0, as docker does.
        gid = 0;
    }
    if let Some(g) = grp {
        gid = match group_entries(group)
            .find(|(n, id, _)| *n == g || g.parse::<u32>().ok() == Some(*id))
        {
            Some((_, id, _)) => id,
            None => g.parse().map_err(|_| Error::NoGroup(g.to_string()))?,
        };
    }
    let additional_gids = match name {
        Some(n) if grp.is_none() => group_entries(group)
            .filter(|(_, id, members)| *id != gid && members.contains(&n))
            .map(|(_, id, _)| id)
            .collect(),
        _ => Vec::new(),
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nusers:x:100:user\nuser:x:1000:\nwheel:x:10:root,user\n";

    #[test]
    fn names_and_numbers() {
        let u = resolve("user", PASSWD, GROUP).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1000, 1000, vec![100, 10])
        );
        assert_eq!(u.home.as_deref(), Some("/home/user"));
        assert_eq!(resolve("", PASSWD, GROUP).unwrap().uid, 0);
        assert_eq!(resolve("1000:users", PASSWD, GROUP).unwrap().gid, 100);
        let n = resolve("4242", PASSWD, GROUP).unwrap();
        assert_eq!((n.uid, n.gid), (4242, 0));
        assert_eq!(resolve("4242:4343", PASSWD, GROUP).unwrap().gid, 4343);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve("nobody", PASSWD, GROUP),
            Err(Error::NoUser("nobody".into()))
        );
        assert_eq!(
            resolve("user:nogroup", PASSWD, GROUP),
            Err(Error::NoGroup("nogroup".into()))
        );
        assert!(resolve(":10", PASSWD, GROUP).is_err());
    }
}
