//! Getting a certificate: under the lineage's locks, reuse what another
//! task or process stored, else order from each CA in turn.

use std::sync::Arc;
use std::time::Duration;

use cairn_client::lineage::{CertName, ConfigDir};
use cairn_client::{Account, AcmeClient, ClientOptions, PreparedChallenge, check_certificate, csr};
use cairn_proto::objects::{AuthorizationStatus, ChallengeType, NewAccount, NewOrder};
use cairn_proto::{Identifier, KeyPair};
use time::OffsetDateTime;
use tracing::Instrument as _;

use crate::disk::{self, Loaded};
use crate::{Challenge, Error, Event, Served, TlsManager};

/// Why a certificate is wanted.
#[derive(Clone, Debug)]
pub(crate) struct Replacing {
    /// The certificate being replaced (its serial, hex).
    pub(crate) serial: String,
    /// Its ARI identifier, for `replaces`.
    pub(crate) cert_id: Option<String>,
    /// The CA that issued it, if known.
    pub(crate) ca: Option<usize>,
}

/// Serves the certificate for `names`: the one already served if usable,
/// else the one stored on disk if usable, else a new one from a CA. With
/// `replacing`, a certificate with that serial is not usable.
pub(crate) async fn ensure(
    manager: &TlsManager,
    names: &[String],
    replacing: Option<Replacing>,
) -> Result<Arc<Served>, Error> {
    let first = names
        .first()
        .ok_or_else(|| Error::Config("a certificate needs a name".into()))?;
    let lineage = CertName::default_for(first).map_err(|e| Error::Config(e.to_string()))?;
    let inner = &manager.inner;
    let usable = |info: &crate::disk::CertInfo| {
        info.covers(names)
            && match &replacing {
                Some(r) => info.serial_hex() != r.serial,
                None => OffsetDateTime::now_utc() < info.renewal_time(),
            }
    };

    // One task per lineage in this process orders; the others wait here.
    let task_lock = {
        let mut map = inner.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(lineage.clone()).or_default())
    };
    let _task_guard = task_lock.lock().await;
    if let Some(served) = inner.served_lineage(&lineage)
        && usable(&served.loaded.info)
    {
        return Ok(served);
    }

    // One process per lineage orders; the others wait, then load.
    let dir = manager.config_dir();
    let _file_lock = {
        let dir = dir.clone();
        let lineage = lineage.clone();
        tokio::task::spawn_blocking(move || dir.lock_wait(&lineage))
            .await
            .map_err(|e| Error::Storage(format!("the lock task failed: {e}")))??
    };
    if let Some(loaded) = Loaded::from_live(&dir, &lineage)
        && usable(&loaded.info)
    {
        tracing::info!(%lineage, serial = %loaded.info.serial_hex(), "using the stored certificate");
        inner.count(|c| &c.loaded);
        let served = Arc::new(Served {
            lineage: lineage.clone(),
            names: names.to_vec(),
            loaded,
            ca: None,
        });
        inner.serve(Arc::clone(&served));
        inner.send(Event::Obtained {
            name: lineage.to_string(),
            serial: served.loaded.info.serial_hex(),
            not_after: served.loaded.info.not_after,
        });
        return Ok(served);
    }

    let mut errors = Vec::new();
    for (index, ca) in inner.config.cas.iter().enumerate() {
        let replaces = replacing
            .as_ref()
            .filter(|r| r.ca.is_none_or(|c| c == index))
            .and_then(|r| r.cert_id.clone());
        let span = tracing::info_span!("order", %lineage, ca = %ca.directory_url);
        match order(manager, index, &dir, &lineage, names, replaces)
            .instrument(span)
            .await
        {
            Ok(loaded) => {
                let served = Arc::new(Served {
                    lineage: lineage.clone(),
                    names: names.to_vec(),
                    loaded,
                    ca: Some(index),
                });
                inner.serve(Arc::clone(&served));
                let name = lineage.to_string();
                let serial = served.loaded.info.serial_hex();
                let not_after = served.loaded.info.not_after;
                if replacing.is_some() {
                    inner.count(|c| &c.renewed);
                    inner.send(Event::Renewed {
                        name,
                        serial,
                        not_after,
                    });
                } else {
                    inner.count(|c| &c.obtained);
                    inner.send(Event::Obtained {
                        name,
                        serial,
                        not_after,
                    });
                }
                return Ok(served);
            }
            Err(e) => {
                inner.count(|c| &c.failures);
                tracing::warn!(%lineage, ca = %ca.directory_url, "getting a certificate failed: {e}");
                errors.push((ca.directory_url.clone(), Box::new(e)));
            }
        }
    }
    Err(Error::AllCasFailed(errors))
}

/// Connects to CA `index` and loads or registers the account.
async fn account(manager: &TlsManager, index: usize, dir: &ConfigDir) -> Result<Account, Error> {
    let ca = &manager.inner.config.cas[index];
    let options = ClientOptions {
        ca_bundle_pem: ca.ca_bundle_pem.clone(),
        user_agent: concat!("cairn-tls/", env!("CARGO_PKG_VERSION")).to_owned(),
        bad_nonce_retries: 20,
        poll_deadline: Duration::from_secs(5 * 60),
        timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    };
    let client = AcmeClient::new(&ca.directory_url, options).await?;
    // One registration per CA: across this process's tasks, then across
    // the processes sharing the directory.
    let _registering = manager.inner.account_lock.lock().await;
    let _file_lock = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || dir.lock_accounts_wait())
            .await
            .map_err(|e| Error::Storage(format!("the lock task failed: {e}")))??
    };
    if let Some(account) = disk::load_account(dir, &client)? {
        return Ok(account);
    }
    let terms = client
        .directory()
        .meta
        .as_ref()
        .and_then(|m| m.terms_of_service.clone());
    if terms.is_some() && !ca.agree_tos {
        return Err(Error::Config(format!(
            "{} asks to agree to its terms of service; agreeing is turned off",
            ca.directory_url
        )));
    }
    let new = NewAccount {
        contact: ca.contact.clone(),
        terms_of_service_agreed: terms.is_some().then_some(true),
        ..NewAccount::default()
    };
    let key = KeyPair::generate(cairn_proto::KeyType::EcdsaP256)?;
    let eab = ca
        .eab
        .as_ref()
        .map(|(kid, hmac)| (kid.as_str(), hmac.as_slice()));
    let (account, _) = Account::create(&client, key, &new, eab).await?;
    disk::save_account(dir, &account)?;
    tracing::info!(account = %account.url(), "registered an ACME account");
    Ok(account)
}

/// Places one order with CA `index`, answers its challenges, stores and
/// returns the certificate.
async fn order(
    manager: &TlsManager,
    index: usize,
    dir: &ConfigDir,
    lineage: &CertName,
    names: &[String],
    replaces: Option<String>,
) -> Result<Loaded, Error> {
    let inner = &manager.inner;
    let ca = &inner.config.cas[index];
    let account = account(manager, index, dir).await?;
    let identifiers: Vec<Identifier> = names.iter().map(Identifier::dns).collect();
    let mut request = NewOrder::new(identifiers.clone());
    request.profile = ca.profile.clone();
    if let Some(validity) = inner.config.requested_validity {
        // Both ends: a CA backdates notBefore by default, which would make
        // a short lifetime look mostly spent.
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or(OffsetDateTime::now_utc());
        request.not_before = Some(now);
        request.not_after = Some(now + validity);
    }
    request.replaces = replaces.clone();
    inner.count(|c| &c.orders);
    let mut order = match account.new_order(&request).await {
        Ok(order) => order,
        // A CA may refuse `replaces` (unknown or already replaced): order
        // without it rather than not at all.
        Err(e) if replaces.is_some() => {
            tracing::info!("the order with `replaces` was refused ({e}); ordering without it");
            request.replaces = None;
            inner.count(|c| &c.orders);
            account.new_order(&request).await?
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(order = %order.url(), "order placed");

    let mut presented = Presented::new(manager);
    let result = async {
        let authorizations = order.authorizations().await?;
        let mut pending = Vec::new();
        for authz in &authorizations {
            match authz.state.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                status => {
                    return Err(Error::Challenge(format!(
                        "the authorization for {} is {status}",
                        authz.state.identifier.value
                    )));
                }
            }
            let wildcard = authz.state.wildcard.unwrap_or(false);
            let chosen = inner
                .config
                .challenges
                .iter()
                .copied()
                .filter(|c| !wildcard || *c == Challenge::Dns01)
                .find(|c| authz.challenge(&challenge_type(*c)).is_some())
                .ok_or_else(|| {
                    Error::Challenge(format!(
                        "the CA offers no challenge this server answers for {}",
                        authz.state.identifier.value
                    ))
                })?;
            let prepared = authz.prepare(&account, &challenge_type(chosen))?;
            presented.present(chosen, &prepared).await?;
            tracing::info!(name = %prepared.identifier.value, challenge = %prepared.kind, "answering");
            pending.push((authz.url.clone(), prepared));
        }
        for (_, challenge) in &pending {
            account.respond(&challenge.url).await?;
        }
        for (url, _) in &pending {
            account.poll_authorization(url).await?;
        }
        Ok::<(), Error>(())
    }
    .await;
    presented.cleanup().await;
    result?;

    order.poll_ready().await?;
    let key = KeyPair::generate(inner.config.key_type)?;
    order.finalize(&csr(&identifiers, &key)?).await?;
    order.poll_valid().await?;
    let chain = order.certificate().await?;
    check_certificate(&chain, &identifiers, &key, None)?;
    let files = disk::files(&chain.certificates_der, key.to_pkcs8_pem()?)?;
    let version = disk::install(dir, lineage, &files)?;
    disk::save_renewal(
        dir,
        lineage,
        &ca.directory_url,
        account.url(),
        inner.config.key_type.as_str(),
        names,
    )?;
    let loaded = Loaded::from_pem(&files.fullchain, &files.privkey)?;
    tracing::info!(%lineage, version, serial = %loaded.info.serial_hex(), "certificate stored");
    Ok(loaded)
}

fn challenge_type(challenge: Challenge) -> ChallengeType {
    match challenge {
        Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
        Challenge::Http01 => ChallengeType::Http01,
        Challenge::Dns01 => ChallengeType::Dns01,
    }
}

/// The challenges answered for one order, removed when it is done.
struct Presented<'a> {
    manager: &'a TlsManager,
    alpn: Vec<String>,
    http: Vec<String>,
    dns: Vec<(String, String)>,
}

impl<'a> Presented<'a> {
    fn new(manager: &'a TlsManager) -> Self {
        Self {
            manager,
            alpn: Vec::new(),
            http: Vec::new(),
            dns: Vec::new(),
        }
    }

    async fn present(
        &mut self,
        kind: Challenge,
        challenge: &PreparedChallenge,
    ) -> Result<(), Error> {
        let inner = &self.manager.inner;
        match kind {
            Challenge::TlsAlpn01 => {
                let name = challenge.identifier.value.to_ascii_lowercase();
                let certificate =
                    crate::challenge::validation_certificate(&name, &challenge.key_authorization)?;
                inner
                    .alpn
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.clone(), Arc::new(certificate));
                self.alpn.push(name);
            }
            Challenge::Http01 => {
                let token = challenge.token.to_string();
                inner
                    .http
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(token.clone(), challenge.key_authorization.clone());
                self.http.push(token);
            }
            Challenge::Dns01 => {
                let solver = inner
                    .config
                    .dns
                    .as_ref()
                    .ok_or_else(|| Error::Config("dns-01 needs a DNS solver".into()))?;
                let record = challenge.dns01_record_name();
                let value = challenge.dns01_txt_value();
                solver
                    .present(&record, &value)
                    .await
                    .map_err(|e| Error::Challenge(format!("publishing {record}: {e}")))?;
                self.dns.push((record, value));
            }
        }
        Ok(())
    }

    async fn cleanup(&mut self) {
        let inner = &self.manager.inner;
        {
            let mut alpn = inner.alpn.0.lock().unwrap_or_else(|e| e.into_inner());
            for name in self.alpn.drain(..) {
                alpn.remove(&name);
            }
        }
        {
            let mut http = inner.http.lock().unwrap_or_else(|e| e.into_inner());
            for token in self.http.drain(..) {
                http.remove(&token);
            }
        }
        if let Some(solver) = &inner.config.dns {
            for (record, value) in self.dns.drain(..) {
                if let Err(e) = solver.cleanup(&record, &value).await {
                    tracing::warn!("removing {record} failed: {e}");
                }
            }
        }
    }
}
