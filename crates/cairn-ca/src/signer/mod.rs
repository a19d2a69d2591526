//! Placeholder: the signer is being written.
