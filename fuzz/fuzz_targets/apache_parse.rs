//! The Apache parser never panics, and what parses prints back byte for
//! byte.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(printed) = cairn_install::apache::parse_and_print(data) {
        assert_eq!(printed, data);
    }
});
