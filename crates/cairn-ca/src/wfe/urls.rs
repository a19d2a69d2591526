//! Every URL the CA emits, built from its public base URLs, and the
//! reverse: ids out of URLs a client sends back (`kid`, `account`).

use cairn_store::{AccountId, AuthzId, ChallengeId, OrderId};

/// URL builder for one CA installation.
#[derive(Clone, Debug)]
pub struct Urls {
    /// `https://host:port` of the API, no trailing slash.
    base: String,
    /// `http://host:port` of the publication listener.
    http_base: String,
}

impl Urls {
    pub fn new(base: impl Into<String>, http_base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            http_base: http_base.into(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn http_base(&self) -> &str {
        &self.http_base
    }

    pub fn directory(&self) -> String {
        format!("{}/directory", self.base)
    }

    pub fn endpoint(&self, name: &str) -> String {
        format!("{}/acme/{name}", self.base)
    }

    pub fn account(&self, id: AccountId) -> String {
        format!("{}{id}", self.account_prefix())
    }

    /// What every account URL starts with, the id following.
    pub fn account_prefix(&self) -> String {
        format!("{}/acme/acct/", self.base)
    }

    pub fn account_orders(&self, id: AccountId) -> String {
        format!("{}/acme/acct/{id}/orders", self.base)
    }

    pub fn order(&self, id: OrderId) -> String {
        format!("{}/acme/order/{id}", self.base)
    }

    pub fn finalize(&self, id: OrderId) -> String {
        format!("{}/acme/order/{id}/finalize", self.base)
    }

    pub fn authorization(&self, id: AuthzId) -> String {
        format!("{}/acme/authz/{id}", self.base)
    }

    pub fn challenge(&self, id: ChallengeId) -> String {
        format!("{}/acme/chall/{id}", self.base)
    }

    pub fn certificate(&self, serial: &str) -> String {
        format!("{}/acme/cert/{serial}", self.base)
    }

    pub fn certificate_alternate(&self, serial: &str, n: usize) -> String {
        format!("{}/acme/cert/{serial}/{n}", self.base)
    }

    /// The account id in a `kid` (or `account`) URL, if it is one of ours.
    pub fn parse_account(&self, url: &str) -> Option<AccountId> {
        let id = url.strip_prefix(&self.base)?.strip_prefix("/acme/acct/")?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || id.starts_with('0') {
            return None;
        }
        id.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_urls_parse_back_and_nothing_else_does() {
        let urls = Urls::new("https://ca.test:14000", "http://ca.test:14080");
        assert_eq!(urls.parse_account(&urls.account(42)), Some(42));
        for bad in [
            "https://ca.test:14000/acme/acct/",
            "https://ca.test:14000/acme/acct/042",
            "https://ca.test:14000/acme/acct/4a",
            "https://ca.test:14000/acme/acct/42/orders",
            "https://evil.test/acme/acct/42",
            "https://ca.test:14000/acme/acct/99999999999999999999999",
        ] {
            assert_eq!(urls.parse_account(bad), None, "{bad}");
        }
    }
}
