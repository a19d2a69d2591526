//! Interop tests that run a real peer through cairn-testkit's launchers
//! show as ignored unless the peer is named: `CAIRN_CADDY=/usr/bin/caddy`
//! (scripts/install-peers prints it).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(peer_caddy)");
    println!("cargo::rerun-if-env-changed=CAIRN_CADDY");
    if std::env::var_os("CAIRN_CADDY").is_some() {
        println!("cargo::rustc-cfg=peer_caddy");
    }
}
