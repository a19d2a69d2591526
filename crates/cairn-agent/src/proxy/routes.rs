//! The route table: host name → site (upstream, access log, HSTS), built
//! from a [`ProxyConfig`] and swapped whole on reload.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use hyper::header::HeaderValue;

use super::access_log::AccessLog;
use super::config::{CATCH_ALL, ProxyConfig, Upstream};

/// One site as requests see it.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) upstream: Upstream,
    pub(crate) access_log: Option<Arc<AccessLog>>,
    /// The `Strict-Transport-Security` value, if HSTS is on for this site.
    pub(crate) hsts: Option<HeaderValue>,
}

/// Every site by name: exact names first, then `*.parent` for one label.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    exact: HashMap<String, Arc<Route>>,
    wildcard: HashMap<String, Arc<Route>>,
    /// The site named `*`, for every other host (on-demand names).
    catch_all: Option<Arc<Route>>,
}

impl Routes {
    /// Builds the table and opens the access logs (each path once).
    pub(crate) fn build(config: &ProxyConfig) -> Result<Self> {
        let mut logs: HashMap<PathBuf, Arc<AccessLog>> = HashMap::new();
        let mut routes = Self::default();
        for site in &config.sites {
            let access_log = match site.access_log.as_ref().or(config.access_log.as_ref()) {
                Some(path) => Some(match logs.get(path) {
                    Some(log) => Arc::clone(log),
                    None => {
                        let log = Arc::new(AccessLog::open(path, config.log_format)?);
                        logs.insert(path.clone(), Arc::clone(&log));
                        log
                    }
                }),
                None => None,
            };
            let hsts = site
                .hsts_max_age
                .or(config.hsts_max_age)
                .filter(|age| *age > 0)
                .map(|age| HeaderValue::from_str(&format!("max-age={age}")))
                .transpose()?;
            let route = Arc::new(Route {
                upstream: site.upstream.clone(),
                access_log,
                hsts,
            });
            for name in &site.names {
                if name == CATCH_ALL {
                    routes.catch_all = Some(Arc::clone(&route));
                    continue;
                }
                match name.strip_prefix("*.") {
                    Some(parent) => routes
                        .wildcard
                        .insert(parent.to_owned(), Arc::clone(&route)),
                    None => routes.exact.insert(name.clone(), Arc::clone(&route)),
                };
            }
        }
        Ok(routes)
    }

    /// The site for `host` (lowercase, no port, no trailing dot).
    pub(crate) fn find(&self, host: &str) -> Option<&Arc<Route>> {
        self.exact
            .get(host)
            .or_else(|| {
                let (_, parent) = host.split_once('.')?;
                self.wildcard.get(parent)
            })
            .or(self.catch_all.as_ref())
    }

    /// Whether `host` has a site.
    pub(crate) fn contains(&self, host: &str) -> bool {
        self.find(host).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::config::Overrides;

    #[test]
    fn exact_names_win_over_wildcards_of_one_label() {
        let mut config = ProxyConfig::load(
            None,
            &Overrides {
                routes: vec!["a.example=http://127.0.0.1:1".into()],
                ..Overrides::default()
            },
        )
        .expect("valid");
        // A wildcard needs dns-01 settings to validate; the table does not care.
        let mut wildcard = config.sites[0].clone();
        wildcard.names = vec!["*.example".into()];
        wildcard.upstream = Upstream::parse("http://127.0.0.1:2").expect("url");
        config.sites.push(wildcard);
        let routes = Routes::build(&config).expect("builds");
        let port = |h: &str| routes.find(h).map(|r| r.upstream.authority.port_u16());
        assert_eq!(port("a.example"), Some(Some(1)));
        assert_eq!(port("b.example"), Some(Some(2)));
        assert_eq!(port("x.b.example"), None);
        assert_eq!(port("example"), None);
    }
}
