//! Which `<VirtualHost>` serves a name on a port, the way httpd decides.
//!
//! httpd first matches the connection's address: vhosts are grouped by the
//! address they name for the port (`*`, `_default_`, or one IP). Inside a
//! group, the first vhost in configuration order whose `ServerName` or a
//! `ServerAlias` (with `*`/`?` wildcards) matches the Host wins; when none
//! does, the first vhost of the group serves it (the group's default).
//!
//! We do not know which local address a client will connect to, so: one
//! group with a match → its first match. Matches in several groups (a
//! `*:80` vhost and a `192.0.2.1:80` vhost both naming it) → ambiguous,
//! with every candidate's `file:line`. No match anywhere → the default
//! vhost if exactly one group listens on the port (the Debian
//! `000-default.conf` case), ambiguous if several do.

use super::tree::{View, VirtualHost};
use crate::Error;

/// How a vhost was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    /// It names the name in ServerName or ServerAlias.
    Named,
    /// It is the first vhost of the only address group on the port.
    Default,
}

/// The vhost serving `name` on `port`; `fallback` allows the default
/// vhost of the port. `Ok(None)`: no vhost on the port (or, without
/// `fallback`, none naming it).
pub(crate) fn choose<'v>(
    view: &'v View,
    name: &str,
    port: u16,
    fallback: bool,
) -> Result<Option<(&'v VirtualHost, How)>, Error> {
    // Address groups on the port, in order of first appearance; a vhost
    // naming one address twice is in its group once.
    let mut groups: Vec<(&str, Vec<&VirtualHost>)> = Vec::new();
    for vhost in &view.vhosts {
        for (host, p) in &vhost.addrs {
            if p.is_some_and(|p| p != port) {
                continue;
            }
            match groups.iter_mut().find(|(h, _)| h == host) {
                Some((_, members)) => {
                    if !members.last().is_some_and(|m| std::ptr::eq(*m, vhost)) {
                        members.push(vhost);
                    }
                }
                None => groups.push((host, vec![vhost])),
            }
        }
    }
    let mut named: Vec<&VirtualHost> = Vec::new();
    for (_, members) in &groups {
        if let Some(first) = members.iter().find(|v| v.names(name))
            && !named.iter().any(|n| same(n, first))
        {
            named.push(first);
        }
    }
    match named.as_slice() {
        [one] => return Ok(Some((one, How::Named))),
        [] => {}
        several => return Err(ambiguous(name, several)),
    }
    if !fallback {
        return Ok(None);
    }
    let defaults: Vec<&VirtualHost> = groups
        .iter()
        .filter_map(|(_, members)| members.first().copied())
        .fold(Vec::new(), |mut acc, v| {
            if !acc.iter().any(|a| same(a, v)) {
                acc.push(v);
            }
            acc
        });
    match defaults.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((one, How::Default))),
        several => Err(ambiguous(name, several)),
    }
}

fn same(a: &VirtualHost, b: &VirtualHost) -> bool {
    a.file == b.file && a.at == b.at
}

fn ambiguous(name: &str, candidates: &[&VirtualHost]) -> Error {
    Error::Ambiguous {
        server: "Apache",
        name: name.to_owned(),
        candidates: candidates.iter().map(|v| v.place()).collect(),
    }
}
