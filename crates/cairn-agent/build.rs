//! Tests that run a real peer show as ignored unless the peer is named:
//! `CAIRN_CHROMIUM` (with `CAIRN_CERTUTIL`) for the proxy's browser test
//! (scripts/install-peers prints them).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(peer_chromium)");
    println!("cargo::rerun-if-env-changed=CAIRN_CHROMIUM");
    if std::env::var_os("CAIRN_CHROMIUM").is_some() {
        println!("cargo::rustc-cfg=peer_chromium");
    }
}
