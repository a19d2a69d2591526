//! Anti-replay nonces (RFC 8555 §6.5).
//!
//! A nonce is a counter and a MAC over it: `base64url(counter_be8 || HMAC(key,
//! counter)[..8])`. Issuing is one atomic increment and one HMAC, with no
//! table of outstanding nonces; redeeming checks the MAC, that the counter is
//! within the last [`WINDOW`] issued, and flips its bit in a ring bitmap, so
//! each nonce redeems once. Memory is fixed (WINDOW bits); a nonce older
//! than the window, or from before a restart (the key is per process), gets
//! `badNonce` and the client retries with the fresh one it is sent.
//!
//! One node needs no database round trip for nonces. Several nodes behind a
//! load balancer need a shared redemption record; that comes with the
//! multi-node work and implements the same [`NonceService`] trait.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use cairn_proto::base64url;

/// How many of the most recent nonces stay redeemable.
pub const WINDOW: u64 = 1 << 20;

/// Issues and redeems nonces.
pub trait NonceService: Send + Sync + 'static {
    /// A fresh nonce.
    fn issue(&self) -> String;
    /// True exactly once for a nonce this service issued and still holds.
    fn redeem(&self, nonce: &str) -> bool;
}

/// The in-process nonce service of one node.
#[derive(Debug)]
pub struct LocalNonces {
    key: hmac::Key,
    next: AtomicU64,
    used: Vec<AtomicU64>,
    /// Share (0–100) of good nonces refused, a test knob (Pebble's
    /// PEBBLE_WFE_NONCEREJECT).
    reject_percent: u8,
    rng: SystemRandom,
}

impl LocalNonces {
    pub fn new(reject_percent: u8) -> Self {
        let rng = SystemRandom::new();
        let mut secret = [0u8; 32];
        rng.fill(&mut secret)
            .expect("the system random source works");
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            next: AtomicU64::new(1),
            used: (0..WINDOW / 64).map(|_| AtomicU64::new(0)).collect(),
            reject_percent: reject_percent.min(100),
            rng,
        }
    }

    fn slot(&self, counter: u64) -> (&AtomicU64, u64) {
        let index = counter % WINDOW;
        let word = usize::try_from(index / 64).expect("window fits in usize");
        (&self.used[word], 1u64 << (index % 64))
    }

    fn mac(&self, counter: u64) -> [u8; 8] {
        let tag = hmac::sign(&self.key, &counter.to_be_bytes());
        tag.as_ref()[..8]
            .try_into()
            .expect("HMAC-SHA256 is 32 bytes")
    }

    fn reject_by_chance(&self) -> bool {
        if self.reject_percent == 0 {
            return false;
        }
        let mut byte = [0u8; 1];
        self.rng.fill(&mut byte).is_ok()
            && u16::from(byte[0]) * 100 / 256 < u16::from(self.reject_percent)
    }
}

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

    fn redeem(&self, nonce: &str) -> bool {
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
        first_use && !self.reject_by_chance()
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
        assert!(nonces.redeem(&b));
        assert!(nonces.redeem(&a));
        assert!(!nonces.redeem(&a));
        assert!(!nonces.redeem(&b));
    }

    #[test]
    fn forged_foreign_and_malformed_nonces_fail() {
        let nonces = LocalNonces::new(0);
        let other = LocalNonces::new(0);
        let theirs = other.issue();
        assert!(!nonces.redeem(&theirs), "another process's nonce");
        let mine = nonces.issue();
        let mut raw = base64url::decode(&mine).expect("b64");
        raw[15] ^= 1;
        assert!(!nonces.redeem(&base64url::encode(&raw)), "tampered MAC");
        raw[15] ^= 1;
        raw[7] ^= 1;
        assert!(!nonces.redeem(&base64url::encode(&raw)), "other counter");
        for junk in ["", "AAAA", "not base64!", &"A".repeat(200)] {
            assert!(!nonces.redeem(junk));
        }
        assert!(nonces.redeem(&mine));
    }

    #[test]
    fn nonces_older_than_the_window_expire() {
        let nonces = LocalNonces::new(0);
        let old = nonces.issue();
        nonces.next.fetch_add(WINDOW, Ordering::Relaxed);
        assert!(!nonces.redeem(&old));
        let fresh = nonces.issue();
        assert!(nonces.redeem(&fresh));
    }

    #[test]
    fn reject_percent_rejects_some_good_nonces() {
        let all = LocalNonces::new(100);
        assert!(!all.redeem(&all.issue()));
        let half = LocalNonces::new(50);
        let accepted = (0..2000).filter(|_| half.redeem(&half.issue())).count();
        assert!(
            (700..1300).contains(&accepted),
            "{accepted} of 2000 accepted at 50%"
        );
    }
}
