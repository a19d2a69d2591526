//! Anti-replay nonces (RFC 8555 §6.5), on one node or shared by several.
//!
//! [`LocalNonces`], for a single node: a nonce is a counter and a MAC over
//! it, `base64url(counter_be8 || HMAC(key, counter)[..8])`. Issuing is one
//! atomic increment and one HMAC, with no table of outstanding nonces;
//! redeeming checks the MAC, that the counter is within the last [`WINDOW`]
//! issued, and flips its bit in a ring bitmap, so each nonce redeems once.
//! Memory is fixed (WINDOW bits) and nothing touches the database; a nonce
//! older than the window, or from before a restart (the key is per
//! process), gets `badNonce` and the client retries with the fresh one it
//! is sent.
//!
//! [`SharedNonces`], for several nodes behind one URL: a nonce is its issue
//! time, 8 random bytes and a MAC under a secret all nodes read from the
//! database. Issuing still touches nothing shared (any node can check any
//! node's MAC); redeeming checks the MAC and the age (at most
//! [`SHARED_LIFETIME`]) and then inserts the nonce into the database's
//! used-nonce table, whose primary key lets exactly one insert win, from
//! whichever node. The cost is that insert: one durable write per signed
//! request, which is why a single node keeps the local service.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use cairn_proto::base64url;
use cairn_store::Storage;
use time::OffsetDateTime;

use crate::error::{CaError, CaResult};

/// How many of the most recent nonces stay redeemable.
pub const WINDOW: u64 = 1 << 20;

/// How long a shared nonce stays redeemable after it was issued.
pub const SHARED_LIFETIME: StdDuration = StdDuration::from_secs(15 * 60);

/// How far ahead of this node's clock another node's clock may run.
const CLOCK_SKEW: StdDuration = StdDuration::from_secs(60);

/// Issues and redeems nonces.
#[async_trait]
pub trait NonceService: Send + Sync + 'static {
    /// A fresh nonce.
    fn issue(&self) -> String;
    /// `Ok(true)` exactly once for a nonce this CA issued and still
    /// honours; `Err` only when the record of used nonces cannot be reached.
    async fn redeem(&self, nonce: &str) -> CaResult<bool>;
}

/// Share (0–100) of good nonces refused, a test knob (Pebble's
/// PEBBLE_WFE_NONCEREJECT).
#[derive(Debug)]
struct Chaos {
    reject_percent: u8,
    rng: SystemRandom,
}

impl Chaos {
    fn new(reject_percent: u8) -> Self {
        Self {
            reject_percent: reject_percent.min(100),
            rng: SystemRandom::new(),
        }
    }

    fn reject(&self) -> bool {
        if self.reject_percent == 0 {
            return false;
        }
        let mut byte = [0u8; 1];
        self.rng.fill(&mut byte).is_ok()
            && u16::from(byte[0]) * 100 / 256 < u16::from(self.reject_percent)
    }
}

/// HMAC-SHA256 truncated to 8 bytes.
fn mac8(key: &hmac::Key, data: &[u8]) -> [u8; 8] {
    let tag = hmac::sign(key, data);
    tag.as_ref()[..8]
        .try_into()
        .expect("HMAC-SHA256 is 32 bytes")
}

/// The in-process nonce service of one node.
#[derive(Debug)]
pub struct LocalNonces {
    key: hmac::Key,
    next: AtomicU64,
    used: Vec<AtomicU64>,
    chaos: Chaos,
}

impl LocalNonces {
    pub fn new(reject_percent: u8) -> Self {
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .expect("the system random source works");
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            next: AtomicU64::new(1),
            used: (0..WINDOW / 64).map(|_| AtomicU64::new(0)).collect(),
            chaos: Chaos::new(reject_percent),
        }
    }

    fn slot(&self, counter: u64) -> (&AtomicU64, u64) {
        let index = counter % WINDOW;
        let word = usize::try_from(index / 64).expect("window fits in usize");
        (&self.used[word], 1u64 << (index % 64))
    }

    fn mac(&self, counter: u64) -> [u8; 8] {
        mac8(&self.key, &counter.to_be_bytes())
    }

    fn redeem_now(&self, nonce: &str) -> bool {
        let Ok(raw) = base64url::decode(nonce) else {
            return false;
        };
        let Ok(raw) = <[u8; 16]>::try_from(raw) else {
            return false;
        };
        let counter = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        if verify_slices_are_equal(&raw[8..], &self.mac(counter)).is_err() {
            return false;
        }
        let next = self.next.load(Ordering::Relaxed);
        if counter >= next || next - counter > WINDOW {
            return false;
        }
        let (word, bit) = self.slot(counter);
        let first_use = word.fetch_or(bit, Ordering::Relaxed) & bit == 0;
        first_use && !self.chaos.reject()
    }
}

#[async_trait]
impl NonceService for LocalNonces {
    fn issue(&self) -> String {
        let counter = self.next.fetch_add(1, Ordering::Relaxed);
        // The slot last held counter - WINDOW, which leaves the window now.
        let (word, bit) = self.slot(counter);
        word.fetch_and(!bit, Ordering::Relaxed);
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&counter.to_be_bytes());
        raw[8..].copy_from_slice(&self.mac(counter));
        base64url::encode(raw)
    }

    async fn redeem(&self, nonce: &str) -> CaResult<bool> {
        Ok(self.redeem_now(nonce))
    }
}

/// Nonces any node of a cluster sharing one database issues and redeems.
pub struct SharedNonces {
    key: hmac::Key,
    store: Arc<dyn Storage>,
    rng: SystemRandom,
    chaos: Chaos,
}

impl std::fmt::Debug for SharedNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedNonces").finish_non_exhaustive()
    }
}

/// Layout of a shared nonce: issue time (Unix seconds, 8 bytes), random
/// (8), MAC over the first 16 (8).
const SHARED_LEN: usize = 24;

impl SharedNonces {
    /// Reads the cluster's nonce secret, storing a fresh one if this is the
    /// first node to ask.
    pub async fn new(store: Arc<dyn Storage>, reject_percent: u8) -> CaResult<Self> {
        let rng = SystemRandom::new();
        let mut candidate = [0u8; 32];
        rng.fill(&mut candidate)
            .map_err(|_| CaError::internal("making the nonce secret", "no randomness"))?;
        let secret = store.nonce_secret(&candidate).await?;
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            store,
            rng,
            chaos: Chaos::new(reject_percent),
        })
    }

    /// Forgets used nonces that can no longer be redeemed anyway; run now
    /// and then by one task per node.
    pub async fn prune(&self) -> CaResult<u64> {
        Ok(self.store.prune_nonces(OffsetDateTime::now_utc()).await?)
    }

    fn issue_at(&self, now: u64) -> String {
        let mut raw = [0u8; SHARED_LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        self.rng
            .fill(&mut raw[8..16])
            .expect("the system random source works");
        let mac = mac8(&self.key, &raw[..16]);
        raw[16..].copy_from_slice(&mac);
        base64url::encode(raw)
    }

    /// The nonce's bytes and issue time if it is ours and young enough.
    fn check(&self, nonce: &str, now: u64) -> Option<([u8; 16], u64)> {
        let raw = <[u8; SHARED_LEN]>::try_from(base64url::decode(nonce).ok()?).ok()?;
        verify_slices_are_equal(&raw[16..], &mac8(&self.key, &raw[..16])).ok()?;
        let issued = u64::from_be_bytes(raw[..8].try_into().ok()?);
        let fresh = issued <= now + CLOCK_SKEW.as_secs()
            && now.saturating_sub(issued) <= SHARED_LIFETIME.as_secs();
        fresh.then(|| (raw[..16].try_into().expect("16 bytes"), issued))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[async_trait]
impl NonceService for SharedNonces {
    fn issue(&self) -> String {
        self.issue_at(unix_now())
    }

    async fn redeem(&self, nonce: &str) -> CaResult<bool> {
        let Some((id, issued)) = self.check(nonce, unix_now()) else {
            return Ok(false);
        };
        // Kept until no node would accept the nonce for its age.
        let forget_after = i64::try_from(issued + SHARED_LIFETIME.as_secs() + CLOCK_SKEW.as_secs())
            .ok()
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .ok_or_else(|| CaError::internal("dating a nonce", issued))?;
        let first_use = self.store.redeem_nonce(&id, forget_after).await?;
        Ok(first_use && !self.chaos.reject())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_redeems_exactly_once() {
        let nonces = LocalNonces::new(0);
        let a = nonces.issue();
        let b = nonces.issue();
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert!(nonces.redeem_now(&b));
        assert!(nonces.redeem_now(&a));
        assert!(!nonces.redeem_now(&a));
        assert!(!nonces.redeem_now(&b));
    }

    #[test]
    fn forged_foreign_and_malformed_nonces_fail() {
        let nonces = LocalNonces::new(0);
        let other = LocalNonces::new(0);
        let theirs = other.issue();
        assert!(!nonces.redeem_now(&theirs), "another process's nonce");
        let mine = nonces.issue();
        let mut raw = base64url::decode(&mine).expect("b64");
        raw[15] ^= 1;
        assert!(!nonces.redeem_now(&base64url::encode(&raw)), "tampered MAC");
        raw[15] ^= 1;
        raw[7] ^= 1;
        assert!(
            !nonces.redeem_now(&base64url::encode(&raw)),
            "other counter"
        );
        for junk in ["", "AAAA", "not base64!", &"A".repeat(200)] {
            assert!(!nonces.redeem_now(junk));
        }
        assert!(nonces.redeem_now(&mine));
    }

    #[test]
    fn nonces_older_than_the_window_expire() {
        let nonces = LocalNonces::new(0);
        let old = nonces.issue();
        nonces.next.fetch_add(WINDOW, Ordering::Relaxed);
        assert!(!nonces.redeem_now(&old));
        let fresh = nonces.issue();
        assert!(nonces.redeem_now(&fresh));
    }

    #[test]
    fn reject_percent_rejects_some_good_nonces() {
        let all = LocalNonces::new(100);
        assert!(!all.redeem_now(&all.issue()));
        let half = LocalNonces::new(50);
        let accepted = (0..2000).filter(|_| half.redeem_now(&half.issue())).count();
        assert!(
            (700..1300).contains(&accepted),
            "{accepted} of 2000 accepted at 50%"
        );
    }
}

#[cfg(test)]
mod shared_tests {
    use cairn_store::SqliteStore;

    use super::*;

    async fn shared() -> (SharedNonces, Arc<dyn Storage>) {
        let store: Arc<dyn Storage> = Arc::new(SqliteStore::open_in_memory().await.expect("store"));
        (
            SharedNonces::new(Arc::clone(&store), 0)
                .await
                .expect("nonces"),
            store,
        )
    }

    #[tokio::test]
    async fn a_nonce_from_one_node_redeems_once_at_another() {
        let (a, store) = shared().await;
        let b = SharedNonces::new(Arc::clone(&store), 0)
            .await
            .expect("second node");
        let nonce = a.issue();
        assert_eq!(nonce.len(), 32);
        assert_ne!(nonce, a.issue());
        assert!(b.redeem(&nonce).await.expect("redeem"));
        assert!(!a.redeem(&nonce).await.expect("redeem"));
        assert!(!b.redeem(&nonce).await.expect("redeem"));
    }

    #[tokio::test]
    async fn forged_old_future_and_foreign_nonces_fail() {
        let (nonces, _) = shared().await;
        let (other, _) = shared().await;
        assert!(
            !nonces.redeem(&other.issue()).await.expect("redeem"),
            "another cluster's"
        );
        let now = unix_now();
        let old = nonces.issue_at(now - SHARED_LIFETIME.as_secs() - 1);
        assert!(!nonces.redeem(&old).await.expect("redeem"), "too old");
        let ahead = nonces.issue_at(now + CLOCK_SKEW.as_secs() + 5);
        assert!(
            !nonces.redeem(&ahead).await.expect("redeem"),
            "from the future"
        );
        let skewed = nonces.issue_at(now + 5);
        assert!(
            nonces.redeem(&skewed).await.expect("redeem"),
            "small skew is fine"
        );
        let mut raw = base64url::decode(&nonces.issue()).expect("b64");
        raw[3] ^= 1;
        assert!(
            !nonces
                .redeem(&base64url::encode(&raw))
                .await
                .expect("redeem"),
            "tampered"
        );
        for junk in ["", "AAAA", "not base64!", &"A".repeat(200)] {
            assert!(!nonces.redeem(junk).await.expect("redeem"));
        }
    }

    #[tokio::test]
    async fn pruning_keeps_young_records() {
        let (nonces, _) = shared().await;
        let nonce = nonces.issue();
        assert!(nonces.redeem(&nonce).await.expect("redeem"));
        assert_eq!(nonces.prune().await.expect("prune"), 0);
        assert!(!nonces.redeem(&nonce).await.expect("redeem"));
    }
}
