//! Authorizations (RFC 8555 §7.5) and what an agent provisions to answer
//! their challenges (§8).

use std::net::IpAddr;

use cairn_proto::challenge::{self, Token};
use cairn_proto::objects::{self, Challenge, ChallengeType};
use cairn_proto::{Identifier, IdentifierType};

use crate::account::{Account, key_authorization};
use crate::error::{Error, Result};

/// An authorization: its URL and its latest state (RFC 8555 §7.1.4).
///
/// An order's authorizations are not in the order of its identifiers;
/// find the one for a name with [`Authorization::is_for`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// The authorization URL.
    pub url: String,
    /// The authorization object as last fetched.
    pub state: objects::Authorization,
}

/// Everything needed to provision one challenge response, checked: the
/// token is base64url (RFC 8555 §8.1), so it is safe in a file name, a URL
/// path or a DNS record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedChallenge {
    /// The identifier being proved, as the authorization names it (a
    /// wildcard's base name, without `*.`).
    pub identifier: Identifier,
    /// The challenge type.
    pub kind: ChallengeType,
    /// The challenge URL, to pass to [`Account::respond`] once the response
    /// is in place.
    pub url: String,
    /// The challenge token.
    pub token: Token,
    /// The key authorization, `token.thumbprint` (RFC 8555 §8.1): the
    /// http-01 response body.
    pub key_authorization: String,
}

impl Authorization {
    /// The identifier this authorization is for.
    pub fn identifier(&self) -> &Identifier {
        &self.state.identifier
    }

    /// The challenge of type `kind`, if the server offers one. Challenges
    /// are found by type, never by position.
    pub fn challenge(&self, kind: &ChallengeType) -> Option<&Challenge> {
        self.state.challenge(kind)
    }

    /// True if this authorization is the one for `identifier` as written in
    /// the order: DNS names compare without regard to case, and `*.name`
    /// matches an authorization for `name` marked `wildcard` (RFC 8555
    /// §7.1.3, §7.1.4); IP addresses compare as addresses (RFC 8738).
    pub fn is_for(&self, identifier: &Identifier) -> bool {
        let mine = &self.state.identifier;
        if mine.kind != identifier.kind {
            return false;
        }
        match &identifier.kind {
            IdentifierType::Dns => {
                let wildcard = self.state.wildcard == Some(true);
                match identifier.value.strip_prefix("*.") {
                    Some(base) => wildcard && base.eq_ignore_ascii_case(&mine.value),
                    None => !wildcard && identifier.value.eq_ignore_ascii_case(&mine.value),
                }
            }
            IdentifierType::Ip => {
                match (
                    identifier.value.parse::<IpAddr>(),
                    mine.value.parse::<IpAddr>(),
                ) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => false,
                }
            }
            _ => identifier.value == mine.value,
        }
    }

    /// Checks the `kind` challenge and computes its response for
    /// `account`. Fails with [`Error::ChallengeUnavailable`] if the server
    /// offers no such challenge, and with [`Error::BadToken`] if its token
    /// is missing or not 22–256 base64url characters — before anything is
    /// written anywhere.
    pub fn prepare(&self, account: &Account, kind: &ChallengeType) -> Result<PreparedChallenge> {
        let identifier = self.identifier().clone();
        let Some(challenge) = self.challenge(kind) else {
            let offered: Vec<&str> = self
                .state
                .challenges
                .iter()
                .map(|c| c.kind.as_str())
                .collect();
            return Err(Error::ChallengeUnavailable {
                identifier,
                kind: kind.clone(),
                offered: if offered.is_empty() {
                    "nothing".into()
                } else {
                    offered.join(", ")
                },
            });
        };
        let token = challenge_token(&identifier, challenge)?;
        Ok(PreparedChallenge {
            key_authorization: key_authorization(account, &token),
            identifier,
            kind: kind.clone(),
            url: challenge.url.clone(),
            token,
        })
    }

    /// Fetches the authorization again (RFC 8555 §7.5, POST-as-GET).
    pub async fn refresh(&mut self, account: &Account) -> Result<&objects::Authorization> {
        self.state = account.post_as_get(&self.url).await?.json()?;
        Ok(&self.state)
    }

    /// Deactivates the authorization, e.g. to give up a name the account
    /// should no longer be able to issue for (RFC 8555 §7.5.2).
    pub async fn deactivate(&mut self, account: &Account) -> Result<&objects::Authorization> {
        let payload = serde_json::json!({ "status": "deactivated" });
        self.state = account.post(&self.url, &payload).await?.json()?;
        Ok(&self.state)
    }
}

impl PreparedChallenge {
    /// The http-01 path: `/.well-known/acme-challenge/{token}` (RFC 8555 §8.3).
    pub fn http01_path(&self) -> String {
        self.token.http01_path()
    }

    /// The dns-01 record name, `_acme-challenge.{name}` (RFC 8555 §8.4).
    pub fn dns01_record_name(&self) -> String {
        challenge::dns01_record_name(&self.identifier.value)
    }

    /// The dns-01 TXT record value (RFC 8555 §8.4).
    pub fn dns01_txt_value(&self) -> String {
        challenge::dns01_txt_value(&self.key_authorization)
    }

    /// The DER value of the tls-alpn-01 acmeIdentifier extension (RFC 8737 §3).
    pub fn tls_alpn01_extension_value(&self) -> [u8; 34] {
        challenge::tls_alpn01_extension_value(&self.key_authorization)
    }
}

/// A challenge's token, checked (RFC 8555 §8.1, §8.3).
pub fn challenge_token(identifier: &Identifier, challenge: &Challenge) -> Result<Token> {
    let bad = |reason: String| Error::BadToken {
        identifier: identifier.clone(),
        kind: challenge.kind.clone(),
        reason,
    };
    let token = challenge
        .token
        .as_deref()
        .ok_or_else(|| bad("the challenge has no token".into()))?;
    Token::parse(token).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use cairn_proto::objects::AuthorizationStatus;
    use serde_json::json;

    use super::*;

    fn authz(value: serde_json::Value) -> Authorization {
        Authorization {
            url: "http://ca.test/authz/1".into(),
            state: serde_json::from_value(value).expect("an authorization"),
        }
    }

    /// RFC 8555 §7.5's example authorization.
    fn rfc_example() -> Authorization {
        authz(json!({
            "status": "pending",
            "expires": "2016-01-02T14:09:30Z",
            "identifier": { "type": "dns", "value": "www.example.org" },
            "challenges": [
                { "type": "http-01", "url": "https://example.com/acme/chall/prV_B7yEyA4",
                  "token": "DGyRejmCefe7v4NfDGDKfA" },
                { "type": "dns-01", "url": "https://example.com/acme/chall/Rg5dV14Gh1Q",
                  "token": "DGyRejmCefe7v4NfDGDKfA" }
            ]
        }))
    }

    #[test]
    fn challenges_are_found_by_type() {
        let a = rfc_example();
        assert_eq!(a.state.status, AuthorizationStatus::Pending);
        assert_eq!(
            a.challenge(&ChallengeType::Dns01).map(|c| c.url.as_str()),
            Some("https://example.com/acme/chall/Rg5dV14Gh1Q")
        );
        assert!(a.challenge(&ChallengeType::TlsAlpn01).is_none());
    }

    #[test]
    fn identifiers_match_case_wildcards_and_ip_forms() {
        let a = rfc_example();
        assert!(a.is_for(&Identifier::dns("www.example.org")));
        assert!(a.is_for(&Identifier::dns("WWW.Example.ORG")));
        assert!(!a.is_for(&Identifier::dns("*.www.example.org")));
        assert!(!a.is_for(&Identifier::dns("example.org")));

        let wild = authz(json!({
            "status": "pending", "wildcard": true,
            "identifier": { "type": "dns", "value": "example.org" },
            "challenges": []
        }));
        assert!(wild.is_for(&Identifier::dns("*.example.org")));
        assert!(!wild.is_for(&Identifier::dns("example.org")));

        let ip = authz(json!({
            "status": "pending",
            "identifier": { "type": "ip", "value": "2001:db8::1" },
            "challenges": []
        }));
        assert!(ip.is_for(&Identifier {
            kind: IdentifierType::Ip,
            value: "2001:0db8:0:0::1".into()
        }));
        assert!(!ip.is_for(&Identifier::dns("2001:db8::1")));
    }

    #[test]
    fn tokens_outside_base64url_are_refused_naming_the_identifier() {
        let a = rfc_example();
        for bad in [
            Some("../../etc/passwd-aaaaaaaaaaaaaaaaaaaa"),
            Some("short"),
            None,
        ] {
            let challenge = Challenge {
                token: bad.map(str::to_owned),
                ..a.state.challenges[0].clone()
            };
            let err = challenge_token(a.identifier(), &challenge).expect_err("refused");
            assert!(matches!(err, Error::BadToken { .. }), "{err:?}");
            assert!(err.to_string().contains("dns:www.example.org"), "{err}");
        }
        let good = challenge_token(a.identifier(), &a.state.challenges[0]).expect("good token");
        assert_eq!(good.as_str(), "DGyRejmCefe7v4NfDGDKfA");
    }
}
