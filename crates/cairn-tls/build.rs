//! The Pebble test shows as ignored unless the peer is named:
//! `CAIRN_PEBBLE=1` (scripts/install-peers prints it).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(peer_pebble)");
    println!("cargo::rerun-if-env-changed=CAIRN_PEBBLE");
    if std::env::var_os("CAIRN_PEBBLE").is_some() {
        println!("cargo::rustc-cfg=peer_pebble");
    }
}
