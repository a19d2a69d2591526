//! Tests that run a real peer show as ignored unless the peer is named:
//! `CAIRN_NGINX=/usr/sbin/nginx`, `CAIRN_APACHE=/usr/sbin/apache2ctl`,
//! `CAIRN_PEBBLE=1`, `CAIRN_BIND=1` (BIND 9's `named` for RFC 2136),
//! `CAIRN_CHROMIUM` (with `CAIRN_CERTUTIL`) for the proxy's
//! browser test (scripts/install-peers prints them).
fn main() {
    for (cfg, var) in [
        ("peer_nginx", "CAIRN_NGINX"),
        ("peer_apache", "CAIRN_APACHE"),
        ("peer_pebble", "CAIRN_PEBBLE"),
        ("peer_chromium", "CAIRN_CHROMIUM"),
        ("peer_bind", "CAIRN_BIND"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var_os(var).is_some() {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
