//! The manual solver: the operator's hooks provision each challenge, with
//! the environment certbot gives its hooks, so existing certbot hook
//! scripts work unchanged:
//!
//! - `CERTBOT_DOMAIN`: the name being validated (a wildcard's base name);
//! - `CERTBOT_VALIDATION`: the http-01 file content or the dns-01 TXT value;
//! - `CERTBOT_TOKEN`: the http-01 token (the file name), http-01 only;
//! - `CERTBOT_REMAINING_CHALLENGES`: how many challenges come after this one;
//! - `CERTBOT_ALL_DOMAINS`: every name validated in this run, comma-separated;
//! - `CERTBOT_AUTH_OUTPUT` (cleanup hook only): what the auth hook printed.
//!
//! The hook commands come from the operator's command line; the values come
//! from checked challenges (base64url tokens, digests, the order's names).

use anyhow::{Result, bail};
use cairn_client::PreparedChallenge;
use cairn_proto::objects::ChallengeType;

use crate::hooks;

#[derive(Debug)]
pub(crate) struct Manual {
    challenge: ChallengeType,
    auth_hook: String,
    cleanup_hook: Option<String>,
    /// Environment and auth-hook output of each presented challenge.
    presented: Vec<(Vec<(String, String)>, String)>,
}

impl Manual {
    pub(crate) fn new(
        challenge: &str,
        auth_hook: String,
        cleanup_hook: Option<String>,
    ) -> Result<Self> {
        let challenge = match challenge {
            "http-01" => ChallengeType::Http01,
            "dns-01" => ChallengeType::Dns01,
            other => bail!("the manual solver answers http-01 or dns-01, not {other:?}"),
        };
        Ok(Self {
            challenge,
            auth_hook,
            cleanup_hook,
            presented: Vec::new(),
        })
    }

    pub(crate) fn challenge_type(&self) -> ChallengeType {
        self.challenge.clone()
    }

    pub(crate) async fn present(
        &mut self,
        challenges: &[PreparedChallenge],
        all_domains: &[String],
    ) -> Result<()> {
        for (i, challenge) in challenges.iter().enumerate() {
            let env = environment(challenge, challenges.len() - i - 1, all_domains);
            let output = hooks::run(
                &self.auth_hook,
                &env,
                &format!("manual auth hook for {}", challenge.identifier.value),
            )
            .await?;
            self.presented.push((env, output));
        }
        Ok(())
    }

    pub(crate) async fn cleanup(&mut self) -> Result<()> {
        let presented = std::mem::take(&mut self.presented);
        let Some(hook) = &self.cleanup_hook else {
            return Ok(());
        };
        let mut first_error = None;
        for (mut env, output) in presented {
            let domain = env
                .iter()
                .find(|(k, _)| k == "CERTBOT_DOMAIN")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            env.push(("CERTBOT_AUTH_OUTPUT".into(), output.trim_end().to_owned()));
            if let Err(e) =
                hooks::run(hook, &env, &format!("manual cleanup hook for {domain}")).await
            {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The certbot hook environment for one challenge.
fn environment(
    challenge: &PreparedChallenge,
    remaining: usize,
    all_domains: &[String],
) -> Vec<(String, String)> {
    let validation = match challenge.kind {
        ChallengeType::Dns01 => challenge.dns01_txt_value(),
        _ => challenge.key_authorization.clone(),
    };
    let mut env = vec![
        (
            "CERTBOT_DOMAIN".to_owned(),
            challenge.identifier.value.clone(),
        ),
        ("CERTBOT_VALIDATION".to_owned(), validation),
        (
            "CERTBOT_REMAINING_CHALLENGES".to_owned(),
            remaining.to_string(),
        ),
        ("CERTBOT_ALL_DOMAINS".to_owned(), all_domains.join(",")),
    ];
    if challenge.kind == ChallengeType::Http01 {
        env.push((
            "CERTBOT_TOKEN".to_owned(),
            challenge.token.as_str().to_owned(),
        ));
    }
    env
}

#[cfg(test)]
mod tests {
    use cairn_proto::Identifier;
    use cairn_proto::challenge::Token;

    use super::*;

    fn challenge(kind: ChallengeType) -> PreparedChallenge {
        let token = Token::parse("DGyRejmCefe7v4NfDGDKfA").expect("token");
        PreparedChallenge {
            identifier: Identifier::dns("a.example"),
            kind,
            url: "https://ca.test/chall/1".into(),
            key_authorization: format!("{token}.thumb"),
            token,
        }
    }

    #[test]
    fn the_environment_is_certbots() {
        let domains = vec!["a.example".to_owned(), "*.a.example".to_owned()];
        let http = environment(&challenge(ChallengeType::Http01), 1, &domains);
        let get = |env: &[(String, String)], k: &str| {
            env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
        };
        assert_eq!(get(&http, "CERTBOT_DOMAIN").as_deref(), Some("a.example"));
        assert_eq!(
            get(&http, "CERTBOT_VALIDATION").as_deref(),
            Some("DGyRejmCefe7v4NfDGDKfA.thumb")
        );
        assert_eq!(
            get(&http, "CERTBOT_TOKEN").as_deref(),
            Some("DGyRejmCefe7v4NfDGDKfA")
        );
        assert_eq!(
            get(&http, "CERTBOT_REMAINING_CHALLENGES").as_deref(),
            Some("1")
        );
        assert_eq!(
            get(&http, "CERTBOT_ALL_DOMAINS").as_deref(),
            Some("a.example,*.a.example")
        );
        let dns = environment(&challenge(ChallengeType::Dns01), 0, &domains);
        assert_eq!(
            get(&dns, "CERTBOT_VALIDATION"),
            Some(cairn_proto::challenge::dns01_txt_value(
                "DGyRejmCefe7v4NfDGDKfA.thumb"
            ))
        );
        assert_eq!(get(&dns, "CERTBOT_TOKEN"), None);
    }

    #[tokio::test]
    async fn hooks_run_with_sh_and_cleanup_sees_the_auth_output() {
        let temp = tempfile::tempdir().expect("tempdir");
        let log = temp.path().join("log");
        let auth = format!(
            "echo \"auth $CERTBOT_DOMAIN $CERTBOT_REMAINING_CHALLENGES\" >> {0}; echo out-$CERTBOT_TOKEN",
            log.display()
        );
        let cleanup = format!("echo \"cleanup $CERTBOT_AUTH_OUTPUT\" >> {}", log.display());
        let mut manual = Manual::new("http-01", auth, Some(cleanup)).expect("manual");
        manual
            .present(&[challenge(ChallengeType::Http01)], &["a.example".into()])
            .await
            .expect("present");
        manual.cleanup().await.expect("cleanup");
        assert_eq!(
            std::fs::read_to_string(&log).expect("log"),
            "auth a.example 0\ncleanup out-DGyRejmCefe7v4NfDGDKfA\n"
        );

        let mut failing =
            Manual::new("dns-01", "echo oops >&2; exit 7".into(), None).expect("manual");
        let err = failing
            .present(&[challenge(ChallengeType::Dns01)], &[])
            .await
            .expect_err("fails");
        assert!(err.to_string().contains("exit status: 7"), "{err}");
        assert!(Manual::new("tls-alpn-01", String::new(), None).is_err());
    }
}
