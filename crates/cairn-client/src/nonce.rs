//! The pool of replay nonces (RFC 8555 §6.5).
//!
//! Every response may carry a fresh nonce in `Replay-Nonce`; keeping them
//! saves a `HEAD newNonce` round trip before most requests. The newest
//! nonce is used first (an older one is likelier to have expired on the
//! server), and the pool is bounded so that a long-lived client that gets
//! more nonces than it spends does not grow.

use std::collections::VecDeque;
use std::sync::Mutex;

/// How many unused nonces are kept; the oldest are dropped beyond this.
pub(crate) const NONCE_POOL_CAPACITY: usize = 16;

/// Longest `Replay-Nonce` value kept. Nonces are short; a long value is a
/// broken or hostile server.
const MAX_NONCE_LEN: usize = 512;

#[derive(Debug, Default)]
pub(crate) struct NoncePool {
    nonces: Mutex<VecDeque<String>>,
}

impl NoncePool {
    /// Adds a nonce from a `Replay-Nonce` header. Values that are not
    /// base64url are ignored, as RFC 8555 §6.5.1 requires of clients.
    pub(crate) fn put(&self, nonce: &str) {
        if !is_valid_nonce(nonce) {
            tracing::debug!(nonce, "ignoring a Replay-Nonce that is not base64url");
            return;
        }
        let mut nonces = self.lock();
        if nonces.len() == NONCE_POOL_CAPACITY {
            nonces.pop_front();
        }
        nonces.push_back(nonce.to_owned());
    }

    /// Takes the newest nonce, if any.
    pub(crate) fn take(&self) -> Option<String> {
        self.lock().pop_back()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        // A panic while holding this lock cannot leave the queue in a
        // broken state, so a poisoned lock is still usable.
        self.nonces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A nonce is a non-empty string of base64url characters (RFC 8555
/// §6.5.1). Only the alphabet is checked, not canonical padding bits: the
/// value is echoed back, never decoded, and the server is the judge.
pub(crate) fn is_valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use cairn_proto::base64url;

    use super::*;

    #[test]
    fn newest_nonce_first() {
        let pool = NoncePool::default();
        assert_eq!(pool.take(), None);
        pool.put("AAAA");
        pool.put("BBBB");
        assert_eq!(pool.take().as_deref(), Some("BBBB"));
        assert_eq!(pool.take().as_deref(), Some("AAAA"));
        assert_eq!(pool.take(), None);
    }

    #[test]
    fn invalid_nonces_are_ignored() {
        let pool = NoncePool::default();
        for bad in ["", "has space", "pad==", "a+b/", "x\n", &"A".repeat(600)] {
            pool.put(bad);
        }
        assert_eq!(pool.len(), 0);
    }

    #[test]
    fn bounded_and_drops_the_oldest() {
        let pool = NoncePool::default();
        let nonce = |i: usize| base64url::encode(i.to_be_bytes());
        for i in 0..NONCE_POOL_CAPACITY + 5 {
            pool.put(&nonce(i));
        }
        assert_eq!(pool.len(), NONCE_POOL_CAPACITY);
        let mut taken = Vec::new();
        while let Some(n) = pool.take() {
            taken.push(n);
        }
        assert_eq!(taken.first(), Some(&nonce(NONCE_POOL_CAPACITY + 4)));
        assert_eq!(
            taken.last(),
            Some(&nonce(5)),
            "the five oldest were dropped"
        );
    }
}
