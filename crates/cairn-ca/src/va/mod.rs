//! Placeholder: the validation authority is being written.
