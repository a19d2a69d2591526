//! What a person sees: progress on standard output, warnings and errors
//! on standard error. `--quiet` keeps only errors.

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// A line of progress.
pub(crate) fn say(message: &str) {
    if !QUIET.load(Ordering::Relaxed) {
        println!("{message}");
    }
}

/// A warning: something went wrong that does not stop the run.
pub(crate) fn warn(message: &str) {
    eprintln!("warning: {message}");
}
