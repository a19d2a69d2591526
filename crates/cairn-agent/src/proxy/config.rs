//! The proxy's configuration: a TOML file (`--config proxy.toml`) and/or
//! `--route NAME=URL` flags, parsed and validated into a [`ProxyConfig`].
//!
//! Everything here is checked before the proxy binds a socket, so
//! `cairn proxy check-config` and a reload that would fail say what is wrong
//! (file, site, field) and change nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

/// The site name that matches every host no other site names: where
/// on-demand names are sent.
pub(crate) const CATCH_ALL: &str = "*";

/// The default HTTP listener (http-01 and redirects to HTTPS).
pub(crate) const DEFAULT_HTTP_LISTEN: &str = "[::]:80";
/// The default HTTPS listener.
pub(crate) const DEFAULT_HTTPS_LISTEN: &str = "[::]:443";

/// The file as written (`deny_unknown_fields`: a typo is an error, not a
/// silently ignored setting).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    #[serde(default)]
    pub(crate) listen: ListenFile,
    #[serde(default)]
    pub(crate) acme: AcmeFile,
    /// Certificate authorities in order: the first that works is used.
    #[serde(default)]
    pub(crate) ca: Vec<CaFile>,
    #[serde(default)]
    pub(crate) on_demand: Option<OnDemandFile>,
    #[serde(default)]
    pub(crate) dns: Option<DnsFile>,
    #[serde(default)]
    pub(crate) limits: LimitsFile,
    /// `Strict-Transport-Security: max-age=N` on every HTTPS response
    /// (0 or absent: none). A site may override it.
    #[serde(default)]
    pub(crate) hsts_max_age: Option<u64>,
    /// One access log for every site (a site's own `access_log` wins).
    #[serde(default)]
    pub(crate) access_log: Option<PathBuf>,
    /// Access log format: `combined` (default) or `common`.
    #[serde(default)]
    pub(crate) log_format: Option<LogFormat>,
    #[serde(default)]
    pub(crate) site: Vec<SiteFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenFile {
    pub(crate) http: Option<SocketAddr>,
    pub(crate) https: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcmeFile {
    pub(crate) email: Option<String>,
    #[serde(default)]
    pub(crate) agree_tos: bool,
    /// Challenge types to use, in order of preference.
    pub(crate) challenges: Option<Vec<Challenge>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaFile {
    /// The ACME directory URL.
    pub(crate) server: String,
    /// PEM roots to trust for the CA's HTTPS (a private CA).
    pub(crate) ca_bundle: Option<PathBuf>,
    pub(crate) eab_kid: Option<String>,
    pub(crate) eab_hmac_key: Option<String>,
    /// The ACME profile to ask this CA for.
    pub(crate) profile: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OnDemandFile {
    /// `GET ASK?domain=NAME` must answer 200 before a certificate is ordered.
    pub(crate) ask: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsFile {
    /// certbot-dns-rfc2136's INI credentials file (server, key, algorithm).
    pub(crate) rfc2136_credentials: PathBuf,
    #[serde(default = "default_propagation")]
    pub(crate) propagation_seconds: u64,
}

fn default_propagation() -> u64 {
    10
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsFile {
    pub(crate) header_timeout_seconds: Option<u64>,
    pub(crate) idle_timeout_seconds: Option<u64>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) upstream_connect_timeout_seconds: Option<u64>,
    pub(crate) upstream_response_timeout_seconds: Option<u64>,
    pub(crate) drain_timeout_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiteFile {
    /// Host names this site answers (`*.example.com` matches one label).
    pub(crate) names: Vec<String>,
    /// Where requests go: `http://HOST:PORT[/prefix]`.
    pub(crate) upstream: String,
    pub(crate) access_log: Option<PathBuf>,
    pub(crate) hsts_max_age: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
pub(crate) enum Challenge {
    #[serde(rename = "tls-alpn-01")]
    #[value(name = "tls-alpn-01")]
    TlsAlpn01,
    #[serde(rename = "http-01")]
    #[value(name = "http-01")]
    Http01,
    #[serde(rename = "dns-01")]
    #[value(name = "dns-01")]
    Dns01,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// NCSA Common Log Format.
    Common,
    /// Common plus referer and user agent (Apache's and nginx's default).
    #[default]
    Combined,
}

/// Timeouts and caps that keep slow or idle clients from exhausting the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// A client must finish the TLS handshake and each request's headers within this.
    pub(crate) header_timeout: Duration,
    /// A connection with no bytes either way for this long is closed.
    pub(crate) idle_timeout: Duration,
    /// Connections open at once (both listeners); more wait in the backlog.
    pub(crate) max_connections: usize,
    pub(crate) upstream_connect_timeout: Duration,
    /// Time to the upstream's response headers; past it the client gets 504.
    pub(crate) upstream_response_timeout: Duration,
    /// On SIGTERM: how long in-flight requests may take to finish.
    pub(crate) drain_timeout: Duration,
}

impl Limits {
    /// What the listeners enforce on each connection.
    pub(crate) fn connections(&self) -> cairn_serve::Limits {
        cairn_serve::Limits {
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_connections: 10_000,
            upstream_connect_timeout: Duration::from_secs(5),
            upstream_response_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// One site: its names, upstream, log and HSTS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Site {
    pub(crate) names: Vec<String>,
    pub(crate) upstream: Upstream,
    pub(crate) access_log: Option<PathBuf>,
    pub(crate) hsts_max_age: Option<u64>,
}

/// An upstream base URL: `http://authority` plus an optional path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upstream {
    pub(crate) authority: http::uri::Authority,
    /// Without a trailing `/` ("" for none).
    pub(crate) prefix: String,
}

impl Upstream {
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("upstream {url:?} is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => bail!(
                "upstream {url:?}: scheme {other:?} is not supported; upstreams are plain \
                 HTTP/1.1 (http://HOST:PORT), usually on loopback"
            ),
            None => bail!("upstream {url:?} needs a scheme: http://HOST:PORT"),
        }
        let Some(authority) = uri.authority().cloned() else {
            bail!("upstream {url:?} has no host");
        };
        if uri.query().is_some() {
            bail!("upstream {url:?}: a query string is not allowed");
        }
        Ok(Self {
            authority,
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.prefix)
    }
}

/// The validated configuration the proxy runs with.
#[derive(Debug, Clone)]
pub(crate) struct ProxyConfig {
    pub(crate) http_listen: SocketAddr,
    pub(crate) https_listen: SocketAddr,
    pub(crate) sites: Vec<Site>,
    pub(crate) cas: Vec<CaFile>,
    pub(crate) email: Option<String>,
    pub(crate) agree_tos: bool,
    pub(crate) challenges: Vec<Challenge>,
    pub(crate) on_demand_ask: Option<String>,
    pub(crate) dns: Option<DnsFile>,
    pub(crate) limits: Limits,
    pub(crate) hsts_max_age: Option<u64>,
    pub(crate) access_log: Option<PathBuf>,
    pub(crate) log_format: LogFormat,
}

/// What the command line adds to (or overrides in) the file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    pub(crate) routes: Vec<String>,
    pub(crate) http_listen: Option<SocketAddr>,
    pub(crate) https_listen: Option<SocketAddr>,
    pub(crate) ca: Option<CaFile>,
    pub(crate) email: Option<String>,
    pub(crate) agree_tos: bool,
    pub(crate) challenges: Option<Vec<Challenge>>,
    pub(crate) on_demand_ask: Option<String>,
    pub(crate) dns: Option<DnsFile>,
    pub(crate) hsts_max_age: Option<u64>,
    pub(crate) access_log: Option<PathBuf>,
    pub(crate) log_format: Option<LogFormat>,
    pub(crate) header_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) upstream_connect_timeout: Option<Duration>,
    pub(crate) upstream_response_timeout: Option<Duration>,
    pub(crate) drain_timeout: Option<Duration>,
}

impl ProxyConfig {
    /// Reads `file` (if any), applies the command line and validates the result.
    pub(crate) fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self> {
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                parse_file(&text)
                    .and_then(|parsed| build(parsed, overrides))
                    .with_context(|| format!("in {}", path.display()))
            }
            None => build(ConfigFile::default(), overrides),
        }
    }

    /// Every configured name that gets a certificate, without duplicates
    /// (the catch-all `*` gets none of its own).
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .sites
            .iter()
            .flat_map(|s| s.names.iter().cloned())
            .filter(|n| n != CATCH_ALL)
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Parses the TOML text alone (no files are read).
pub(crate) fn parse_file(text: &str) -> Result<ConfigFile> {
    toml::from_str(text).map_err(|e| {
        // One line (it travels back over the control socket): where, what.
        let message = e.message().trim().replace('\n', " ");
        match e.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                anyhow::anyhow!("line {line}, column {column}: {message}")
            }
            None => anyhow::anyhow!("{message}"),
        }
    })
}

pub(crate) fn build(file: ConfigFile, o: &Overrides) -> Result<ProxyConfig> {
    let mut sites = Vec::new();
    for (i, site) in file.site.into_iter().enumerate() {
        let what = format!(
            "[[site]] #{} ({})",
            i + 1,
            site.names.first().map_or("no names", String::as_str)
        );
        if site.names.is_empty() {
            bail!("{what}: `names` is empty; give at least one host name");
        }
        let names = site
            .names
            .iter()
            .map(|n| normalize_name(n))
            .collect::<Result<Vec<_>>>()
            .with_context(|| what.clone())?;
        let upstream = Upstream::parse(&site.upstream).with_context(|| what.clone())?;
        sites.push(Site {
            names,
            upstream,
            access_log: site.access_log,
            hsts_max_age: site.hsts_max_age,
        });
    }
    for route in &o.routes {
        let Some((names, url)) = route.split_once('=') else {
            bail!("--route {route:?}: expected NAME=URL, e.g. example.com=http://127.0.0.1:8080");
        };
        let names = names
            .split(',')
            .map(normalize_name)
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("--route {route:?}"))?;
        let upstream = Upstream::parse(url).with_context(|| format!("--route {route:?}"))?;
        sites.push(Site {
            names,
            upstream,
            access_log: None,
            hsts_max_age: None,
        });
    }
    let mut seen = BTreeMap::new();
    for site in &sites {
        for name in &site.names {
            if let Some(other) = seen.insert(name.clone(), site.upstream.to_string()) {
                bail!(
                    "{name} is routed twice (to {other} and to {}); each name may appear once",
                    site.upstream
                );
            }
        }
    }
    let on_demand_ask = o.on_demand_ask.clone().or(file.on_demand.map(|d| d.ask));
    if let Some(ask) = &on_demand_ask {
        let uri: http::Uri = ask
            .parse()
            .with_context(|| format!("on-demand ask URL {ask:?} is not a URL"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
            bail!("on-demand ask URL {ask:?} must be http:// or https://HOST/PATH");
        }
    }
    if on_demand_ask.is_none() && sites.iter().any(|s| s.names.iter().any(|n| n == CATCH_ALL)) {
        bail!(
            "the catch-all name \"*\" is for on-demand TLS: configure [on_demand] ask              (or --on-demand-ask URL), or name the sites"
        );
    }
    if sites.is_empty() && on_demand_ask.is_none() {
        bail!(
            "no sites: give --route NAME=URL (e.g. --route example.com=http://127.0.0.1:8080) \
             or [[site]] tables in --config FILE"
        );
    }
    let mut cas: Vec<CaFile> = o.ca.iter().cloned().collect();
    cas.extend(file.ca);
    for ca in &cas {
        let uri: http::Uri = ca
            .server
            .parse()
            .with_context(|| format!("CA directory {:?} is not a URL", ca.server))?;
        if uri.scheme_str() != Some("https") && uri.scheme_str() != Some("http") {
            bail!("CA directory {:?} must be an https:// URL", ca.server);
        }
        if ca.eab_kid.is_some() != ca.eab_hmac_key.is_some() {
            bail!(
                "CA {}: give both eab_kid and eab_hmac_key (external account binding), or neither",
                ca.server
            );
        }
    }
    let challenges = o
        .challenges
        .clone()
        .or(file.acme.challenges)
        .unwrap_or_else(|| vec![Challenge::TlsAlpn01, Challenge::Http01]);
    if challenges.is_empty() {
        bail!("challenges is empty; use tls-alpn-01, http-01 and/or dns-01");
    }
    let dns = o.dns.clone().or(file.dns);
    if challenges.contains(&Challenge::Dns01) && dns.is_none() {
        bail!("dns-01 needs RFC 2136 settings: a [dns] table or --dns-rfc2136-credentials FILE");
    }
    if let Some(dns) = &dns
        && !dns.rfc2136_credentials.is_file()
    {
        bail!(
            "the RFC 2136 credentials file {} does not exist",
            dns.rfc2136_credentials.display()
        );
    }
    for site in &sites {
        if site.names.iter().any(|n| n.starts_with("*.")) && !challenges.contains(&Challenge::Dns01)
        {
            bail!(
                "{}: a wildcard name needs dns-01 (add it to the challenges and configure [dns])",
                site.names.join(", ")
            );
        }
    }
    let defaults = Limits::default();
    let l = &file.limits;
    let secs = |v: Option<u64>| v.map(Duration::from_secs);
    let limits = Limits {
        header_timeout: o
            .header_timeout
            .or(secs(l.header_timeout_seconds))
            .unwrap_or(defaults.header_timeout),
        idle_timeout: o
            .idle_timeout
            .or(secs(l.idle_timeout_seconds))
            .unwrap_or(defaults.idle_timeout),
        max_connections: o
            .max_connections
            .or(l.max_connections)
            .unwrap_or(defaults.max_connections),
        upstream_connect_timeout: o
            .upstream_connect_timeout
            .or(secs(l.upstream_connect_timeout_seconds))
            .unwrap_or(defaults.upstream_connect_timeout),
        upstream_response_timeout: o
            .upstream_response_timeout
            .or(secs(l.upstream_response_timeout_seconds))
            .unwrap_or(defaults.upstream_response_timeout),
        drain_timeout: o
            .drain_timeout
            .or(secs(l.drain_timeout_seconds))
            .unwrap_or(defaults.drain_timeout),
    };
    for (name, value) in [
        ("header_timeout", limits.header_timeout),
        ("idle_timeout", limits.idle_timeout),
        ("upstream_connect_timeout", limits.upstream_connect_timeout),
        (
            "upstream_response_timeout",
            limits.upstream_response_timeout,
        ),
    ] {
        if value.is_zero() {
            bail!("{name} must be at least 1 second");
        }
    }
    if limits.max_connections == 0 {
        bail!("max_connections must be at least 1");
    }
    let parse_addr = |s: &str| s.parse::<SocketAddr>().context("built-in address");
    Ok(ProxyConfig {
        http_listen: match o.http_listen.or(file.listen.http) {
            Some(a) => a,
            None => parse_addr(DEFAULT_HTTP_LISTEN)?,
        },
        https_listen: match o.https_listen.or(file.listen.https) {
            Some(a) => a,
            None => parse_addr(DEFAULT_HTTPS_LISTEN)?,
        },
        sites,
        cas,
        email: o.email.clone().or(file.acme.email),
        agree_tos: o.agree_tos || file.acme.agree_tos,
        challenges,
        on_demand_ask,
        dns,
        limits,
        hsts_max_age: o.hsts_max_age.or(file.hsts_max_age).filter(|a| *a > 0),
        access_log: o.access_log.clone().or(file.access_log),
        log_format: o.log_format.or(file.log_format).unwrap_or_default(),
    })
}

/// Lowercases a host name and checks it is one (an optional leading `*.`).
pub(crate) fn normalize_name(name: &str) -> Result<String> {
    let lower = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if lower == CATCH_ALL {
        return Ok(lower);
    }
    let bare = lower.strip_prefix("*.").unwrap_or(&lower);
    let ok = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        bail!("{name:?} is not a host name");
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(routes: &[&str]) -> Overrides {
        Overrides {
            routes: routes.iter().map(|s| (*s).to_owned()).collect(),
            ..Overrides::default()
        }
    }

    #[test]
    fn a_route_flag_is_a_whole_configuration() {
        let config = build(
            ConfigFile::default(),
            &routes(&["Example.COM,www.example.com=http://127.0.0.1:8080/app/"]),
        )
        .expect("valid");
        assert_eq!(config.sites.len(), 1);
        assert_eq!(config.sites[0].names, ["example.com", "www.example.com"]);
        assert_eq!(config.sites[0].upstream.prefix, "/app");
        assert_eq!(config.https_listen.port(), 443);
        assert_eq!(config.http_listen.port(), 80);
        assert_eq!(config.challenges, [Challenge::TlsAlpn01, Challenge::Http01]);
    }

    #[test]
    fn mistakes_are_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["example.com"], "expected NAME=URL"),
            (&["example.com=https://127.0.0.1:1"], "not supported"),
            (&["bad name=http://127.0.0.1:1"], "not a host name"),
            (
                &[
                    "a.example=http://127.0.0.1:1",
                    "a.example=http://127.0.0.1:2",
                ],
                "routed twice",
            ),
            (
                &["*.example.com=http://127.0.0.1:1"],
                "wildcard name needs dns-01",
            ),
            (&[], "no sites"),
        ];
        for (flags, want) in cases {
            let err = build(ConfigFile::default(), &routes(flags)).expect_err("refused");
            let text = format!("{err:#}");
            assert!(text.contains(want), "{flags:?}: {text}");
        }
        let err = parse_file("[[site]]\nnames = [\"a.example\"]\nupstrem = \"x\"\n")
            .expect_err("typo refused");
        assert!(err.to_string().contains("upstrem"), "{err}");
    }

    #[test]
    fn the_file_and_the_flags_combine() {
        let file = parse_file(
            r#"
            hsts_max_age = 600
            [listen]
            https = "127.0.0.1:8443"
            [limits]
            header_timeout_seconds = 3
            [on_demand]
            ask = "http://127.0.0.1:9/ask"
            [[ca]]
            server = "https://ca.example/dir"
            [[site]]
            names = ["a.example"]
            upstream = "http://127.0.0.1:81"
            "#,
        )
        .expect("parses");
        let mut o = routes(&["b.example=http://127.0.0.1:82"]);
        o.http_listen = Some("127.0.0.1:8080".parse().expect("addr"));
        let config = build(file, &o).expect("valid");
        assert_eq!(config.names(), ["a.example", "b.example"]);
        assert_eq!(config.https_listen.port(), 8443);
        assert_eq!(config.http_listen.port(), 8080);
        assert_eq!(config.limits.header_timeout, Duration::from_secs(3));
        assert_eq!(config.hsts_max_age, Some(600));
        assert_eq!(
            config.on_demand_ask.as_deref(),
            Some("http://127.0.0.1:9/ask")
        );
        assert_eq!(config.cas.len(), 1);
    }
}
