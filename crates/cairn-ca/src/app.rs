//! Wiring: the concrete storage, validator, signer, nonce service and
//! clock put together into a running CA. `main.rs` and the integration
//! tests both start the CA through here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use cairn_store::{PgStore, SqliteStore, Storage};
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Database};
use crate::nonce::{LocalNonces, NonceService, SharedNonces};
use crate::policy::Policy;
use crate::ra::{Ra, RaConfig};
use crate::signer::{Pki, PkiOptions};
use crate::va::{NetworkValidator, Validator};
use crate::wfe::{self, Urls, Wfe};

/// Why the CA could not start, said for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

fn fail(context: &str) -> impl FnOnce(String) -> StartError + '_ {
    move |e| StartError(format!("{context}: {e}"))
}

/// Parts a test may replace; `None` means the production part.
#[derive(Default)]
pub struct Overrides {
    pub clock: Option<Arc<dyn Clock>>,
    pub validator: Option<Arc<dyn Validator>>,
    pub store: Option<Arc<dyn Storage>>,
}

impl std::fmt::Debug for Overrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overrides").finish_non_exhaustive()
    }
}

/// A CA that is serving.
#[derive(Debug)]
pub struct RunningCa {
    pub api_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub directory_url: String,
    pub root_pem: PathBuf,
    pub wfe: Arc<Wfe>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningCa {
    /// Stops accepting connections and waits for the listeners to close.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }

    /// Resolves when the listeners stop (they only do on shutdown).
    pub async fn wait(&mut self) {
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

/// Binds the listeners, makes or loads the CA's keys, opens the database
/// and starts serving.
pub async fn start(config: Config, overrides: Overrides) -> Result<RunningCa, StartError> {
    if config.validation.allow_private_addresses && !config.dev {
        // Allowed for an internal CA whose names live on a private
        // network; on one reachable by strangers it lets them make the CA
        // probe its own network.
        tracing::warn!(
            "validation.allow_private_addresses is on: validation may connect to loopback \
             and private addresses; only for a CA that serves a private network"
        );
    }
    private_data_dir(&config)?;
    let api = cairn_serve::listen(config.server.listen)
        .map_err(|e| StartError(format!("cannot listen on {}: {e}", config.server.listen)))?;
    let http = cairn_serve::listen(config.server.http_listen).map_err(|e| {
        StartError(format!(
            "cannot listen on {}: {e}",
            config.server.http_listen
        ))
    })?;
    let api_addr = api
        .local_addr()
        .map_err(|e| fail("api listener")(e.to_string()))?;
    let http_addr = http
        .local_addr()
        .map_err(|e| fail("http listener")(e.to_string()))?;

    // Ephemeral ports (0) are only known now.
    let mut config = config;
    config.server.listen = api_addr;
    config.server.http_listen = http_addr;
    let urls = Urls::new(config.public_url(), config.public_http_url());

    let pki = Arc::new(load_keys(&config, &urls)?);
    let tls = if config.server.tls {
        Some(Arc::new(tls_config(&config, &pki)?))
    } else {
        None
    };

    let store: Arc<dyn Storage> = match overrides.store {
        Some(store) => store,
        None => open_store(&config).await?,
    };
    let validator: Arc<dyn Validator> = match overrides.validator {
        Some(v) => v,
        None => Arc::new(
            NetworkValidator::new(config.validation.clone())
                .map_err(|e| StartError(format!("validation: {}", e.detail)))?,
        ),
    };
    let clock = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let issuance = &config.issuance;
    let ra = Arc::new(Ra::new(
        store,
        validator,
        Arc::clone(&pki),
        clock,
        Policy {
            permissive: config.dev,
        },
        RaConfig {
            certificate_lifetime: Duration::days(i64::from(issuance.certificate_lifetime_days)),
            authorization_reuse: Duration::days(i64::from(issuance.authorization_reuse_days)),
            pending_authorization_lifetime: Duration::hours(i64::from(
                issuance.pending_authorization_hours,
            )),
            order_lifetime: Duration::hours(i64::from(issuance.order_lifetime_hours)),
            orders_page_size: issuance.orders_page_size,
            allow_validity_request: issuance.allow_validity_request,
            terms_of_service: issuance.terms_of_service.clone(),
            always_valid: config.testing.always_valid,
            validation_delay: StdDuration::from_millis(config.testing.validation_delay_ms),
            caa_recheck: Duration::minutes(i64::from(config.validation.caa_recheck_minutes)),
            account_url_prefix: urls.account_prefix(),
            validation_queue: config.validation.queue,
        },
    ));
    let resumed = ra
        .resume_validations()
        .await
        .map_err(|e| StartError(format!("resuming validations: {}", e.detail)))?;
    if resumed > 0 {
        tracing::info!(
            count = resumed,
            "validations interrupted by the last stop run again"
        );
    }
    let reject = config.testing.nonce_reject_percent;
    let mut background = vec![tokio::spawn(fail_stalled_finalizes(
        Arc::clone(&ra),
        Duration::seconds(i64::from(issuance.finalize_timeout_seconds)),
    ))];
    let nonces: Arc<dyn NonceService> = if config.shared_nonces() {
        let shared = Arc::new(
            SharedNonces::new(Arc::clone(ra.store()), reject)
                .await
                .map_err(|e| StartError(format!("shared nonces: {}", e.detail)))?,
        );
        background.push(tokio::spawn(prune_nonces(Arc::clone(&shared))));
        tracing::info!("nonces are shared through the database");
        shared
    } else {
        Arc::new(LocalNonces::new(reject))
    };
    let meta = cairn_proto::objects::DirectoryMeta {
        terms_of_service: issuance.terms_of_service.clone(),
        website: issuance.website.clone(),
        caa_identities: config.validation.caa_identities.clone(),
        external_account_required: Some(false),
        ..Default::default()
    };
    let wfe = Arc::new(Wfe {
        ra: Arc::clone(&ra),
        nonces,
        urls,
        max_body_bytes: config.server.max_body_bytes,
        body_timeout: config.server.limits().header_timeout,
        meta,
    });

    let (shutdown, watcher) = watch::channel(false);
    let mut stop_background = watcher.clone();
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let mut tasks = vec![
        tokio::spawn(wfe::serve::serve(
            api,
            wfe::acme_router(Arc::clone(&wfe)),
            tls,
            config.server.limits(),
            stopped(watcher.clone()),
        )),
        tokio::spawn(wfe::serve::serve(
            http,
            wfe::publication_router(Arc::clone(&wfe)),
            None,
            config.server.limits(),
            stopped(watcher),
        )),
    ];
    // Background work ends with the listeners.
    let aborts: Vec<_> = background.iter().map(JoinHandle::abort_handle).collect();
    tasks.push(tokio::spawn(async move {
        let _ = stop_background.wait_for(|stop| *stop).await;
        for abort in aborts {
            abort.abort();
        }
    }));
    Ok(RunningCa {
        api_addr,
        http_addr,
        directory_url: wfe.urls.directory(),
        root_pem: pki.root_pem_path(),
        wfe,
        shutdown,
        tasks,
    })
}

/// Opens the database the configuration names, applying migrations.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Storage>, StartError> {
    let database = config.database().map_err(|e| StartError(e.to_string()))?;
    let failed =
        |e: cairn_store::StoreError| StartError(format!("database {}: {e}", database.describe()));
    Ok(match &database {
        Database::Sqlite(path) => Arc::new(SqliteStore::open(path).await.map_err(failed)?),
        Database::Postgres(url) => Arc::new(
            PgStore::open(url, config.database_max_connections)
                .await
                .map_err(failed)?,
        ),
    })
}

/// Loads the CA's keys, or makes them if this is the first start. Nodes
/// sharing one data directory may start together: a lock on
/// `data_dir/pki.lock` lets one make the keys and the others load them.
/// The data directory holds the keys and the database: 0700 whatever the
/// umask, and narrowed (with a warning) if it was wider.
fn private_data_dir(config: &Config) -> Result<(), StartError> {
    let made =
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&config.data_dir)
            .and_then(|()| crate::signer::restrict_dir(&config.data_dir));
    match made {
        Ok(true) => tracing::warn!(
            dir = %config.data_dir.display(),
            "the data directory was open to others; narrowed it to 0700"
        ),
        Ok(false) => {}
        Err(e) => {
            return Err(StartError(format!(
                "cannot create data directory {}: {e}",
                config.data_dir.display()
            )));
        }
    }
    Ok(())
}

/// Makes the CA's keys and certificates as the first `serve` would, or
/// loads them (`cairn-ca init`).
pub fn init_keys(config: &Config) -> Result<Pki, StartError> {
    private_data_dir(config)?;
    load_keys(
        config,
        &Urls::new(config.public_url(), config.public_http_url()),
    )
}

fn load_keys(config: &Config, urls: &Urls) -> Result<Pki, StartError> {
    let lock_path = config.data_dir.join("pki.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StartError(format!("cannot open {}: {e}", lock_path.display())))?;
    lock.lock()
        .map_err(|e| StartError(format!("cannot lock {}: {e}", lock_path.display())))?;
    let pki = Pki::load_or_create(&PkiOptions {
        data_dir: config.data_dir.clone(),
        crl_base_url: urls.http_base().to_owned(),
        api_hostnames: config.server.hostnames.clone(),
    })
    .map_err(|e| StartError(format!("CA keys and certificates: {}", e.detail)));
    drop(lock);
    pki
}

/// Now and then, fails the orders whose finalize a crash cut off (see
/// [`Ra::fail_stalled_finalizes`]); every node does, and they agree.
async fn fail_stalled_finalizes(ra: Arc<Ra>, timeout: Duration) {
    let period = (timeout / 2_i32).clamp(Duration::SECOND, Duration::seconds(30));
    let mut tick = tokio::time::interval(period.unsigned_abs());
    loop {
        tick.tick().await;
        match ra.fail_stalled_finalizes(timeout).await {
            Ok(0) => {}
            Ok(count) => tracing::warn!(count, "failed orders whose issuance a crash interrupted"),
            Err(e) => tracing::warn!(error = %e.detail, "checking for interrupted issuance failed"),
        }
    }
}

/// Every minute, forgets used nonces too old to be redeemed anyway.
async fn prune_nonces(nonces: Arc<SharedNonces>) {
    let mut tick = tokio::time::interval(StdDuration::from_secs(60));
    loop {
        tick.tick().await;
        match nonces.prune().await {
            Ok(0) => {}
            Ok(count) => tracing::debug!(count, "forgot expired nonces"),
            Err(e) => tracing::warn!(error = %e.detail, "pruning used nonces failed"),
        }
    }
}

/// The API's TLS settings: the operator's certificate, or the CA's own.
fn tls_config(config: &Config, pki: &Pki) -> Result<rustls::ServerConfig, StartError> {
    let (chain, key): (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) =
        match (&config.server.tls_cert_file, &config.server.tls_key_file) {
            (Some(cert_file), Some(key_file)) => {
                let read = |path: &PathBuf| {
                    std::fs::read_to_string(path)
                        .map_err(|e| StartError(format!("cannot read {}: {e}", path.display())))
                };
                let certs = cairn_proto::pem::decode_all(&read(cert_file)?, "CERTIFICATE");
                if certs.is_empty() {
                    return Err(StartError(format!(
                        "{}: no CERTIFICATE in it",
                        cert_file.display()
                    )));
                }
                let key_text = read(key_file)?;
                let key = if let Some(der) = cairn_proto::pem::decode_one(&key_text, "PRIVATE KEY")
                {
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))
                } else if let Some(der) = cairn_proto::pem::decode_one(&key_text, "EC PRIVATE KEY")
                {
                    PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der))
                } else if let Some(der) = cairn_proto::pem::decode_one(&key_text, "RSA PRIVATE KEY")
                {
                    PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der))
                } else {
                    return Err(StartError(format!(
                        "{}: no private key in it",
                        key_file.display()
                    )));
                };
                (certs.into_iter().map(CertificateDer::from).collect(), key)
            }
            _ => {
                let (chain, key) = pki.api_tls();
                (
                    chain.into_iter().map(CertificateDer::from).collect(),
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
                )
            }
        };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| StartError(format!("the API certificate and key do not fit: {e}")))?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use cairn_proto::Identifier;
    use cairn_proto::objects::ChallengeType;
    use cairn_store::{
        AuthzSource, ChallengeState, NewAccount, NewAuthorization, NewOrder, SqliteStore,
    };

    use super::*;

    /// The data directory and the database are the owner's alone, whatever
    /// the umask: the CA's keys and every account key live there.
    #[tokio::test]
    async fn data_directory_and_database_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("new").join("data");
        let mut config = Config::defaults(true);
        config.data_dir = data_dir.clone();
        config.server.listen = "127.0.0.1:0".parse().expect("addr");
        config.server.http_listen = "127.0.0.1:0".parse().expect("addr");
        let running = start(config, Overrides::default()).await.expect("starts");
        let mode = |path: &std::path::Path| {
            std::fs::metadata(path)
                .expect("exists")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(&data_dir), 0o700, "data directory");
        assert_eq!(mode(&data_dir.join("cairn.db")), 0o600, "database");
        let wal = data_dir.join("cairn.db-wal");
        if wal.exists() {
            assert_eq!(mode(&wal), 0o600, "write-ahead log");
        }
        running.shutdown().await;

        // A directory and database left open to others are narrowed.
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(
            data_dir.join("cairn.db"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        let mut config = Config::defaults(true);
        config.data_dir = data_dir.clone();
        config.server.listen = "127.0.0.1:0".parse().expect("addr");
        config.server.http_listen = "127.0.0.1:0".parse().expect("addr");
        let running = start(config, Overrides::default())
            .await
            .expect("starts again");
        assert_eq!(mode(&data_dir), 0o700, "data directory narrowed");
        assert_eq!(mode(&data_dir.join("cairn.db")), 0o600, "database narrowed");
        running.shutdown().await;
    }

    /// A challenge left in processing by a crash is validated again when
    /// the CA starts, so its authorization does not stay pending forever.
    #[tokio::test]
    async fn interrupted_validations_resume_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::open_in_memory().await.expect("store"));
        let now = time::OffsetDateTime::now_utc();
        let key = cairn_proto::KeyPair::generate(cairn_proto::KeyType::EcdsaP256).expect("key");
        let (account, _) = store
            .create_account(NewAccount {
                jwk: key.public_jwk().canonical_json(),
                thumbprint: key.public_jwk().thumbprint(),
                contact: vec![],
                terms_agreed: true,
                created_at: now,
            })
            .await
            .expect("account");
        let token = cairn_proto::challenge::Token::generate()
            .expect("token")
            .to_string();
        let order = store
            .create_order(NewOrder {
                account_id: account.id,
                identifiers: vec![Identifier::dns("resume.example.com")],
                authorizations: vec![AuthzSource::New(NewAuthorization {
                    identifier: Identifier::dns("resume.example.com"),
                    wildcard: false,
                    expires: now + Duration::days(1),
                    challenges: vec![(ChallengeType::Http01, token)],
                })],
                expires: now + Duration::days(1),
                not_before: None,
                not_after: None,
                profile: None,
                replaces: None,
                created_at: now,
            })
            .await
            .expect("order");
        let authz = store
            .authorization(order.authz_ids[0])
            .await
            .expect("read")
            .expect("authz");
        let challenge = authz.challenges[0].id;
        assert!(store.start_challenge(challenge).await.expect("start"));

        let mut config = Config::defaults(true);
        config.data_dir = dir.path().to_owned();
        config.server.listen = "127.0.0.1:0".parse().expect("addr");
        config.server.http_listen = "127.0.0.1:0".parse().expect("addr");
        config.testing.always_valid = true;
        let running = start(
            config,
            Overrides {
                store: Some(store.clone()),
                ..Overrides::default()
            },
        )
        .await
        .expect("starts");
        let mut state = ChallengeState::Processing;
        for _ in 0..100 {
            state = store
                .challenge(challenge)
                .await
                .expect("read")
                .expect("challenge")
                .0
                .state;
            if state != ChallengeState::Processing {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        assert_eq!(state, ChallengeState::Valid);
        running.shutdown().await;
    }
}
