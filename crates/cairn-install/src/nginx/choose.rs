//! Which server block nginx uses for a name: `listen` addresses and ports,
//! `server_name` matching in nginx's order, `default_server`.

use regex::RegexBuilder;

/// A listening address of a `listen` directive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Addr {
    /// `*`, `0.0.0.0` or no address.
    Any4,
    /// `[::]`.
    Any6,
    /// One IPv4 address or host name.
    Host(String),
    /// One IPv6 address (without brackets).
    V6(String),
    /// `unix:/path`.
    Unix(String),
}

impl Addr {
    pub(crate) fn is_v6(&self) -> bool {
        matches!(self, Addr::Any6 | Addr::V6(_))
    }

    pub(crate) fn is_wildcard(&self) -> bool {
        matches!(self, Addr::Any4 | Addr::Any6)
    }

    /// The `listen` argument for this address on `port`.
    pub(crate) fn with_port(&self, port: u16) -> Option<String> {
        match self {
            Addr::Any4 => Some(port.to_string()),
            Addr::Any6 => Some(format!("[::]:{port}")),
            Addr::Host(h) => Some(format!("{h}:{port}")),
            Addr::V6(a) => Some(format!("[{a}]:{port}")),
            Addr::Unix(_) => None,
        }
    }
}

/// One `listen` directive, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listen {
    pub(crate) addr: Addr,
    pub(crate) port: u16,
    pub(crate) ssl: bool,
    pub(crate) default_server: bool,
}

/// The port nginx listens on when a server block has no `listen` (as root).
pub(crate) const DEFAULT_PORT: u16 = 80;

impl Listen {
    /// Reads a `listen` directive's arguments; `None` for an address this
    /// code cannot read (then the directive is ignored for choosing).
    pub(crate) fn parse<'a>(mut args: impl Iterator<Item = &'a str>) -> Option<Listen> {
        let first = args.next()?;
        let (addr, port) = if let Some(path) = first.strip_prefix("unix:") {
            (Addr::Unix(path.to_owned()), 0)
        } else if let Some(rest) = first.strip_prefix('[') {
            let (inside, after) = rest.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().ok()?,
                None if after.is_empty() => DEFAULT_PORT,
                None => return None,
            };
            let addr = if inside.chars().all(|c| c == ':' || c == '0') {
                Addr::Any6
            } else {
                Addr::V6(inside.to_ascii_lowercase())
            };
            (addr, port)
        } else if first.bytes().all(|b| b.is_ascii_digit()) {
            (Addr::Any4, first.parse().ok()?)
        } else {
            let (host, port) = match first.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().ok()?),
                None => (first, DEFAULT_PORT),
            };
            let addr = if host == "*" || host == "0.0.0.0" {
                Addr::Any4
            } else {
                Addr::Host(host.to_ascii_lowercase())
            };
            (addr, port)
        };
        let mut listen = Listen {
            addr,
            port,
            ssl: false,
            default_server: false,
        };
        let args: Vec<&str> = args.collect();
        if args.contains(&"quic") {
            // HTTP/3 listens on UDP: no TLS listen of ours to reuse or fix.
            return None;
        }
        for a in args {
            match a {
                "ssl" => listen.ssl = true,
                "default_server" | "default" => listen.default_server = true,
                _ => {}
            }
        }
        Some(listen)
    }
}

/// How well a `server_name` matches a name, best first: nginx tries exact
/// names, then the longest leading wildcard, then the longest trailing
/// wildcard, then regexes in the order of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rank {
    Exact,
    /// Leading wildcard; the key is `usize::MAX - length` so longer sorts first.
    Leading(usize),
    /// Trailing wildcard, likewise.
    Trailing(usize),
    /// Regex; the key is the regex's position in the configuration.
    Regex(usize),
}

/// How `server_name` entry `pattern` matches `name` (lowercase); `order`
/// is the position of a regex in the configuration.
pub(crate) fn rank(pattern: &str, name: &str, order: usize) -> Option<Rank> {
    if let Some(re) = pattern.strip_prefix('~') {
        // nginx compiles server_name regexes case-insensitively. A regex
        // this engine cannot compile (lookaround, backreferences) never
        // matches here; nginx's PCRE might, so such a block is not chosen
        // by its regex.
        let re = RegexBuilder::new(re).case_insensitive(true).build().ok()?;
        return re.is_match(name).then_some(Rank::Regex(order));
    }
    let pattern = pattern.to_ascii_lowercase();
    if pattern == name {
        return Some(Rank::Exact);
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        // `*.example.com`: any name ending in `.example.com`.
        return (suffix.starts_with('.') && name.len() > suffix.len() && name.ends_with(suffix))
            .then(|| Rank::Leading(usize::MAX - pattern.len()));
    }
    if let Some(base) = pattern.strip_prefix('.') {
        // `.example.com`: example.com and every name below it.
        let below = name.len() > pattern.len() && name.ends_with(&pattern);
        return (name == base || below).then(|| Rank::Leading(usize::MAX - pattern.len()));
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return (prefix.ends_with('.') && name.len() > prefix.len() && name.starts_with(prefix))
            .then(|| Rank::Trailing(usize::MAX - pattern.len()));
    }
    None
}

/// Whether `pattern` is a name a certificate can be for (not a regex, not
/// `_`, not empty, no variable).
pub(crate) fn is_certifiable(pattern: &str) -> bool {
    !(pattern.is_empty()
        || pattern.starts_with('~')
        || pattern.contains('$')
        || pattern == "_"
        || pattern.contains(|c: char| c.is_whitespace() || c.is_control()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(s: &str) -> Option<Listen> {
        Listen::parse(s.split(' '))
    }

    #[test]
    fn listen_forms() {
        let l = listen("[::]:443 ssl default_server").expect("parses");
        assert_eq!(
            (l.addr, l.port, l.ssl, l.default_server),
            (Addr::Any6, 443, true, true)
        );
        let l = listen("8080").expect("parses");
        assert_eq!((l.addr, l.port), (Addr::Any4, 8080));
        let l = listen("127.0.0.1").expect("parses");
        assert_eq!((l.addr, l.port), (Addr::Host("127.0.0.1".into()), 80));
        let l = listen("*:80 default").expect("parses");
        assert_eq!((l.addr, l.default_server), (Addr::Any4, true));
        let l = listen("[2001:db8::1]:8443 ssl").expect("parses");
        assert_eq!((l.addr, l.port), (Addr::V6("2001:db8::1".into()), 8443));
        assert_eq!(
            listen("unix:/run/x.sock").map(|l| l.addr),
            Some(Addr::Unix("/run/x.sock".into()))
        );
        assert_eq!(listen("a:b"), None);
        assert_eq!(listen("443 quic reuseport"), None);
    }

    #[test]
    fn ranks() {
        assert_eq!(rank("Example.COM", "example.com", 0), Some(Rank::Exact));
        assert!(rank("*.example.com", "a.example.com", 0) < rank("*.com", "a.example.com", 0));
        assert_eq!(rank("*.example.com", "example.com", 0), None);
        assert!(rank(".example.com", "example.com", 0).is_some());
        assert!(rank("www.example.*", "www.example.org", 0).is_some());
        assert!(
            rank("*.example.org", "www.example.org", 0)
                < rank("www.example.*", "www.example.org", 0)
        );
        assert_eq!(rank("~^www\\.(.+)$", "WWW.x.org", 3), Some(Rank::Regex(3)));
        assert_eq!(rank("~(?=x)", "x", 3), None);
        assert!(rank("www.example.*", "www.example.org", 0) < rank("~.*", "www.example.org", 0));
    }
}
