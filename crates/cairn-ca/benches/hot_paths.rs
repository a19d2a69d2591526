//! The CA's per-request CPU work, one step at a time: a nonce issued and
//! redeemed (RFC 8555 §6.5), a finalize's CSR checked (§7.4), a leaf
//! signed, and a CRL signed (RFC 5280 §5) for many revoked serials. Each
//! calls the same public functions the RA does; keys, CSRs and CRL entries
//! are made once, outside the measured loops.
//!
//! ```sh
//! cargo bench -p cairn-ca --bench hot_paths
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_ca::nonce::{LocalNonces, NonceService, SharedNonces};
use cairn_ca::signer::{self, CheckedCsr, CrlEntry, LeafRequest, Pki, PkiOptions};
use cairn_proto::{Identifier, Jwk, KeyPair, KeyType};
use cairn_store::{SqliteStore, Storage};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use time::OffsetDateTime;
use tokio::runtime::Runtime;

/// The names of every CSR and leaf here: a typical two-name order.
fn names() -> Vec<Identifier> {
    vec![
        Identifier::dns("example.com"),
        Identifier::dns("www.example.com"),
    ]
}

/// A single-threaded runtime, made once: each sample runs its whole loop
/// in one `block_on`, so the runtime's cost is not in the figures.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// Runs `iters` rounds of issue then redeem inside one `block_on`.
fn issue_and_redeem(rt: &Runtime, nonces: &dyn NonceService, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let nonce = nonces.issue();
            let fresh = nonces.redeem(black_box(&nonce)).await.expect("redeems");
            assert!(fresh, "a fresh nonce redeems");
        }
        start.elapsed()
    })
}

fn nonces(c: &mut Criterion) {
    let rt = runtime();
    let local = LocalNonces::new(0);
    let store: Arc<dyn Storage> = Arc::new(
        rt.block_on(SqliteStore::open_in_memory())
            .expect("an in-memory SQLite store opens"),
    );
    let shared = rt
        .block_on(SharedNonces::new(store, 0))
        .expect("the shared nonce secret is stored");

    let mut group = c.benchmark_group("nonce");
    group.throughput(Throughput::Elements(1));
    group.bench_function("issue+redeem/LocalNonces", |b| {
        b.iter_custom(|iters| issue_and_redeem(&rt, &local, iters));
    });
    group.bench_function("issue+redeem/SharedNonces-sqlite-in-memory", |b| {
        b.iter_custom(|iters| issue_and_redeem(&rt, &shared, iters));
    });
    group.finish();
}

/// A CSR for [`names`] under a new `kind` certificate key.
fn csr(kind: KeyType) -> Vec<u8> {
    let key = KeyPair::generate(kind).expect("generates");
    cairn_client::csr(&names(), &key).expect("makes a CSR")
}

fn account_key() -> Jwk {
    let account = KeyPair::generate(KeyType::EcdsaP256).expect("generates");
    account.public_jwk().clone()
}

fn csrs(c: &mut Criterion) {
    let account = account_key();
    let mut group = c.benchmark_group("csr");
    group.throughput(Throughput::Elements(1));
    for (name, kind) in [
        ("P-256", KeyType::EcdsaP256),
        ("RSA-2048", KeyType::Rsa2048),
    ] {
        let der = csr(kind);
        group.bench_function(format!("check_csr/{name}"), |b| {
            b.iter(|| signer::check_csr(black_box(&der), &account).expect("accepted"));
        });
    }
    group.finish();
}

/// A CA in a temporary directory, dated a day back so a leaf valid from
/// now fits inside its intermediates' validity.
fn pki(dir: &tempfile::TempDir) -> Pki {
    let opts = PkiOptions {
        data_dir: dir.path().to_owned(),
        crl_base_url: "http://127.0.0.1:14080".into(),
        api_hostnames: Vec::new(),
    };
    let created = OffsetDateTime::now_utc() - time::Duration::DAY;
    Pki::load_or_create_at(&opts, created).expect("the CA's keys are made")
}

/// What finalize asks the signer for: a fresh serial, the issuer for the
/// CSR's key, the order's names, 90 days from an hour ago.
fn leaf_request(pki: &Pki, csr: &CheckedCsr, now: OffsetDateTime) -> LeafRequest {
    let not_before = now - time::Duration::HOUR;
    LeafRequest {
        serial: signer::new_serial(),
        issuer: pki.issuer_for_key(&csr.key),
        names: csr.names.clone(),
        public_key_spki_der: csr.public_key_spki_der.clone(),
        not_before,
        not_after: not_before + time::Duration::days(90),
    }
}

fn leaves(c: &mut Criterion, pki: &Pki) {
    let account = account_key();
    let now = OffsetDateTime::now_utc();
    let mut group = c.benchmark_group("leaf");
    group.throughput(Throughput::Elements(1));
    for (name, kind) in [
        ("P-256-key-by-ecdsa-1", KeyType::EcdsaP256),
        ("RSA-2048-key-by-rsa-1", KeyType::Rsa2048),
    ] {
        let checked = signer::check_csr(&csr(kind), &account).expect("accepted");
        group.bench_function(format!("issue_leaf/{name}"), |b| {
            b.iter(|| {
                pki.issue_leaf(&leaf_request(pki, black_box(&checked), now))
                    .expect("signs")
            });
        });
    }
    group.finish();
}

/// `count` revoked serials, as the store would return them: 16-byte
/// serials from [`signer::new_serial`], a spread of reasons.
fn crl_entries(count: usize, now: OffsetDateTime) -> Vec<CrlEntry> {
    const REASONS: [u8; 4] = [0, 1, 4, 5];
    (0..count)
        .map(|i| CrlEntry {
            serial: signer::new_serial(),
            revoked_at: now - time::Duration::seconds(i64::try_from(i).expect("small")),
            reason: REASONS[i % REASONS.len()],
        })
        .collect()
}

fn crls(c: &mut Criterion, pki: &Pki) {
    let now = OffsetDateTime::now_utc();
    let mut group = c.benchmark_group("crl");
    for count in [10_000, 100_000] {
        let entries = crl_entries(count, now);
        if count >= 100_000 {
            group.sample_size(10);
        }
        group.throughput(Throughput::Elements(u64::try_from(count).expect("small")));
        group.bench_with_input(
            BenchmarkId::new("ecdsa-1", count),
            &entries,
            |b, entries| {
                b.iter(|| {
                    pki.crl("ecdsa-1", entries, now, now + time::Duration::days(7), 42)
                        .expect("signs")
                });
            },
        );
    }
    group.finish();
}

fn signing(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let pki = pki(&dir);
    leaves(c, &pki);
    crls(c, &pki);
}

criterion_group!(benches, nonces, csrs, signing);
criterion_main!(benches);
