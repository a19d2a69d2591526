//! nginx: the configuration language, block choice and edits.
