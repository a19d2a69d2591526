//! Automatic HTTPS for any rustls server: certificates are obtained,
//! renewed and served by SNI with nobody at the keyboard.
#![forbid(unsafe_code)]
