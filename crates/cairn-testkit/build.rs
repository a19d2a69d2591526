//! Tests that run a real peer show as ignored unless the peer is named:
//! `CAIRN_NGINX`, `CAIRN_APACHE`, `CAIRN_CADDY`, `CAIRN_CHROMIUM`
//! (scripts/install-peers prints them).
fn main() {
    for (cfg, var) in [
        ("peer_nginx", "CAIRN_NGINX"),
        ("peer_apache", "CAIRN_APACHE"),
        ("peer_caddy", "CAIRN_CADDY"),
        ("peer_chromium", "CAIRN_CHROMIUM"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var_os(var).is_some() {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
