//! tls-alpn-01 (RFC 8737, RFC 8738 §6).

use std::net::IpAddr;

use cairn_ca::va::{VaConfig, ValidationRequest, Validator};
use cairn_proto::challenge::ACME_TLS_ALPN_PROTOCOL;
use cairn_proto::objects::ChallengeType;
use cairn_proto::{Identifier, ProblemType};

use crate::support::{
    Acme, FakeDns, alpn_server, alpn_server_with, closed_port, config, request, serve_tls,
    validator,
};

fn tls_alpn01(name: &str) -> ValidationRequest {
    request(Identifier::dns(name), ChallengeType::TlsAlpn01)
}

async fn dns() -> FakeDns {
    let dns = FakeDns::start().await;
    dns.ip("a.example", "127.0.0.1");
    dns
}

/// Validates `req` against a server with the certificate and ALPN given.
async fn against(
    req: &ValidationRequest,
    sans: &[&str],
    acme: Acme<'_>,
    alpn: &[&[u8]],
) -> Result<cairn_ca::va::ValidationRecord, cairn_ca::CaError> {
    let dns = dns().await;
    let (server, _) = serve_tls(alpn_server(sans, acme, alpn)).await;
    let config = VaConfig {
        tls_alpn01_port: server.port(),
        ..config(&dns)
    };
    validator(config).validate(req).await
}

#[tokio::test]
async fn the_acme_certificate_validates() {
    let req = tls_alpn01("a.example");
    let dns = dns().await;
    let server_config = alpn_server(
        &["a.example"],
        Acme::Critical(&req.key_authorization),
        &[ACME_TLS_ALPN_PROTOCOL],
    );
    let (server, hellos) = serve_tls(server_config).await;
    let config = VaConfig {
        tls_alpn01_port: server.port(),
        ..config(&dns)
    };
    let record = validator(config).validate(&req).await.unwrap();
    assert_eq!(record.connections.len(), 1);
    assert_eq!(record.connections[0].url, None);
    assert_eq!(record.connections[0].port, server.port());
    assert_eq!(
        record.connections[0].address_used,
        Some("127.0.0.1".parse().unwrap())
    );
    // RFC 8737 §3: SNI is the name, ALPN offers acme-tls/1 alone.
    let hellos = hellos.lock().unwrap();
    assert_eq!(hellos.len(), 1);
    assert_eq!(hellos[0].sni.as_deref(), Some("a.example"));
    assert_eq!(hellos[0].alpn, vec![ACME_TLS_ALPN_PROTOCOL.to_vec()]);
}

#[tokio::test]
async fn tls_1_2_servers_validate() {
    let req = tls_alpn01("a.example");
    let dns = dns().await;
    let server_config = alpn_server_with(
        &["a.example"],
        Acme::Critical(&req.key_authorization),
        &[ACME_TLS_ALPN_PROTOCOL],
        &[&rustls::version::TLS12],
    );
    let (server, _) = serve_tls(server_config).await;
    let config = VaConfig {
        tls_alpn01_port: server.port(),
        ..config(&dns)
    };
    validator(config).validate(&req).await.unwrap();
}

#[tokio::test]
async fn ip_identifiers_use_the_reverse_name_as_sni() {
    let mut req = tls_alpn01("unused");
    req.identifier = Identifier::ip("127.0.0.1".parse::<IpAddr>().unwrap());
    let dns = dns().await;
    let server_config = alpn_server(
        &["127.0.0.1"],
        Acme::Critical(&req.key_authorization),
        &[ACME_TLS_ALPN_PROTOCOL],
    );
    let (server, hellos) = serve_tls(server_config).await;
    let config = VaConfig {
        tls_alpn01_port: server.port(),
        ..config(&dns)
    };
    validator(config).validate(&req).await.unwrap();
    let hellos = hellos.lock().unwrap();
    assert_eq!(hellos[0].sni.as_deref(), Some("1.0.0.127.in-addr.arpa"));
}

#[tokio::test]
async fn another_alpn_protocol_is_a_tls_problem() {
    let req = tls_alpn01("a.example");
    let err = against(
        &req,
        &["a.example"],
        Acme::Critical(&req.key_authorization),
        &[b"h2"],
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ProblemType::Tls);
    assert!(
        err.detail.contains("TLS handshake with 127.0.0.1:"),
        "{}",
        err.detail
    );
}

#[tokio::test]
async fn no_alpn_is_a_tls_problem() {
    let req = tls_alpn01("a.example");
    let err = against(
        &req,
        &["a.example"],
        Acme::Critical(&req.key_authorization),
        &[],
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ProblemType::Tls);
    assert!(
        err.detail
            .contains("did not negotiate the acme-tls/1 protocol for a.example"),
        "{}",
        err.detail
    );
}

#[tokio::test]
async fn the_certificate_must_carry_the_key_authorization() {
    let req = tls_alpn01("a.example");
    let ka = req.key_authorization.clone();
    let cases: [(&[&str], Acme<'_>, &str); 5] = [
        (
            &["a.example"],
            Acme::Missing,
            "has no acmeIdentifier extension",
        ),
        (
            &["a.example"],
            Acme::NonCritical(&ka),
            "has an acmeIdentifier extension that is not marked critical",
        ),
        (
            &["a.example"],
            Acme::Critical("someone-else.key-authorization"),
            "does not hold the SHA-256 digest of the expected key authorization",
        ),
        (
            &["b.example"],
            Acme::Critical(&ka),
            "names b.example instead of a.example",
        ),
        (
            &["a.example", "b.example"],
            Acme::Critical(&ka),
            "has 2 subjectAltName entries; it must have exactly one, a.example",
        ),
    ];
    for (sans, acme, why) in cases {
        let err = against(&req, sans, acme, &[ACME_TLS_ALPN_PROTOCOL])
            .await
            .unwrap_err();
        assert_eq!(err.kind, ProblemType::Unauthorized, "{why}");
        assert!(err.detail.contains(why), "{why}: {}", err.detail);
        assert!(
            err.detail.starts_with("the certificate 127.0.0.1:"),
            "{}",
            err.detail
        );
    }
}

#[tokio::test]
async fn connection_refused_is_a_connection_problem() {
    let dns = dns().await;
    let port = closed_port().await;
    let config = VaConfig {
        tls_alpn01_port: port,
        ..config(&dns)
    };
    let err = validator(config)
        .validate(&tls_alpn01("a.example"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProblemType::Connection);
    assert_eq!(
        err.detail,
        format!("could not connect to 127.0.0.1:{port} for a.example: connection refused")
    );
}
