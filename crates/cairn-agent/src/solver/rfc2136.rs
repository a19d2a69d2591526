//! The dns-01 solver by DNS UPDATE (RFC 2136) signed with TSIG (RFC 8945):
//! adds the TXT record `_acme-challenge.NAME` on the zone's primary server,
//! waits for it to reach the secondaries, and deletes exactly the values it
//! added afterwards.
//!
//! The credentials file is certbot-dns-rfc2136's INI format:
//!
//! ```text
//! dns_rfc2136_server = 192.0.2.1
//! dns_rfc2136_port = 53
//! dns_rfc2136_name = keyname.
//! dns_rfc2136_secret = 4q4wM/2I180UXoMyN4INVhJNi8V9BCV+jMw2mXgZw/CSuxUT8C7NKKFs AmKd7ak51vWKgSl12ib86oQRPkpDjg==
//! dns_rfc2136_algorithm = HMAC-SHA512
//! ```
//!
//! The zone is found as certbot finds it: the closest enclosing name for
//! which the server answers an SOA query with an SOA record of that name.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use cairn_client::PreparedChallenge;
use hickory_proto::op::{Message, Query, ResponseCode, update_message};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{DNSClass, Name, RData, RecordSet, RecordType, TSigner};

/// TTL of the TXT records added.
const TTL: u32 = 60;
/// TSIG fudge: how far the server's clock may be from ours, in seconds.
const FUDGE: u16 = 300;
/// How long to wait for one answer, and how often to ask.
const TIMEOUT: Duration = Duration::from_secs(5);
const TRIES: usize = 3;

#[derive(Debug)]
pub(crate) struct Rfc2136 {
    server: SocketAddr,
    key_name: Name,
    algorithm: TsigAlgorithm,
    secret: Vec<u8>,
    propagation: Duration,
    /// (zone, record name, TXT value) of every record added, to delete.
    added: Vec<(Name, Name, String)>,
}

impl Rfc2136 {
    pub(crate) fn new(credentials: &Path, propagation_seconds: u64) -> Result<Self> {
        let text = std::fs::read_to_string(credentials).with_context(|| {
            format!("reading the RFC 2136 credentials {}", credentials.display())
        })?;
        let mut solver = parse_credentials(&text)
            .with_context(|| format!("in the RFC 2136 credentials {}", credentials.display()))?;
        solver.propagation = Duration::from_secs(propagation_seconds);
        Ok(solver)
    }

    pub(crate) fn server(&self) -> SocketAddr {
        self.server
    }

    fn signer(&self) -> Result<TSigner> {
        TSigner::new(
            self.secret.clone(),
            self.algorithm.clone(),
            self.key_name.clone(),
            FUDGE,
        )
        .map_err(|e| anyhow!("the TSIG key: {e}"))
    }

    pub(crate) async fn present(&mut self, challenges: &[PreparedChallenge]) -> Result<()> {
        for challenge in challenges {
            let record = Name::from_ascii(format!("{}.", challenge.dns01_record_name()))
                .with_context(|| format!("the record name for {}", challenge.identifier))?;
            let zone = self.find_zone(&record).await?;
            let value = challenge.dns01_txt_value();
            let rrset = txt_set(&record, &value);
            let message = update_message::append(rrset, zone.clone(), false, false);
            self.send_update(message)
                .await
                .with_context(|| format!("adding the TXT record {record} in zone {zone}"))?;
            tracing::info!(%record, %zone, "dns-01 TXT record added");
            self.added.push((zone, record, value));
        }
        if !self.propagation.is_zero() {
            crate::output::say(&format!(
                "  waiting {} s for the DNS records to propagate (--dns-rfc2136-propagation-seconds)",
                self.propagation.as_secs()
            ));
            tokio::time::sleep(self.propagation).await;
        }
        Ok(())
    }

    pub(crate) async fn cleanup(&mut self) -> Result<()> {
        let mut first_error = None;
        for (zone, record, value) in std::mem::take(&mut self.added) {
            let message =
                update_message::delete_by_rdata(txt_set(&record, &value), zone.clone(), false);
            if let Err(e) = self.send_update(message).await {
                first_error.get_or_insert(e.context(format!("deleting the TXT record {record}")));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Adds the TXT record `record` (a name, with or without the final
    /// dot) = `value`, for callers that keep their own list of what to
    /// delete (`cairn proxy`, through cairn-tls).
    pub(crate) async fn add_txt(&self, record: &str, value: &str) -> Result<()> {
        let record = Name::from_ascii(format!("{}.", record.trim_end_matches('.')))
            .with_context(|| format!("the record name {record}"))?;
        let zone = self.find_zone(&record).await?;
        let message = update_message::append(txt_set(&record, value), zone.clone(), false, false);
        self.send_update(message)
            .await
            .with_context(|| format!("adding the TXT record {record} in zone {zone}"))?;
        tracing::info!(%record, %zone, "dns-01 TXT record added");
        Ok(())
    }

    /// Deletes exactly the TXT value [`Rfc2136::add_txt`] added.
    pub(crate) async fn delete_txt(&self, record: &str, value: &str) -> Result<()> {
        let record = Name::from_ascii(format!("{}.", record.trim_end_matches('.')))
            .with_context(|| format!("the record name {record}"))?;
        let zone = self.find_zone(&record).await?;
        let message = update_message::delete_by_rdata(txt_set(&record, value), zone, false);
        self.send_update(message)
            .await
            .with_context(|| format!("deleting the TXT record {record}"))
    }

    /// How long to wait after an update before the CA looks.
    pub(crate) fn propagation(&self) -> Duration {
        self.propagation
    }

    /// The zone `record` lives in: the closest enclosing name whose SOA the
    /// server answers with.
    async fn find_zone(&self, record: &Name) -> Result<Name> {
        let mut candidate = record.base_name();
        loop {
            let mut query = Message::query();
            query.metadata.id = random_id();
            query.add_query(Query::query(candidate.clone(), RecordType::SOA));
            let answer = self.exchange(&query).await?;
            let authoritative = answer.metadata.response_code == ResponseCode::NoError
                && answer
                    .answers
                    .iter()
                    .any(|r| r.record_type() == RecordType::SOA && r.name == candidate);
            if authoritative {
                return Ok(candidate);
            }
            if candidate.is_root() {
                bail!(
                    "the DNS server {} is not authoritative for any zone holding {record}; \
                     check dns_rfc2136_server",
                    self.server
                );
            }
            candidate = candidate.base_name();
        }
    }

    /// Signs `message` with the TSIG key, sends it, and checks that the
    /// answer is signed by the same key and says NOERROR.
    async fn send_update(&self, mut message: Message) -> Result<()> {
        message.metadata.id = random_id();
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let signer = self.signer()?;
        let verifier = message
            .finalize(&signer, now)
            .map_err(|e| anyhow!("signing the update: {e}"))?;
        let bytes = self.exchange_bytes(&message).await?;
        let answer = match verifier {
            Some(mut verifier) => match verifier.verify(&bytes) {
                Ok(response) => response.into_message(),
                Err(e) => {
                    let code = Message::from_vec(&bytes).map(|m| m.metadata.response_code);
                    return Err(match code {
                        Ok(code) if code != ResponseCode::NoError => anyhow!(
                            "the server did not accept the TSIG key {} ({code}); check \
                             dns_rfc2136_name, dns_rfc2136_secret and dns_rfc2136_algorithm",
                            self.key_name
                        ),
                        _ => anyhow!(
                            "the server's answer is not signed by the key {}: {e}",
                            self.key_name
                        ),
                    });
                }
            },
            None => Message::from_vec(&bytes).map_err(|e| anyhow!("a malformed answer: {e}"))?,
        };
        match answer.metadata.response_code {
            ResponseCode::NoError => Ok(()),
            ResponseCode::Refused | ResponseCode::NotAuth => bail!(
                "the server refused the update ({}): does the key {} have an update-policy \
                 allowing TXT records here?",
                answer.metadata.response_code,
                self.key_name
            ),
            code => bail!("the server answered {code}"),
        }
    }

    async fn exchange(&self, message: &Message) -> Result<Message> {
        let bytes = self.exchange_bytes(message).await?;
        Message::from_vec(&bytes)
            .map_err(|e| anyhow!("a malformed answer from {}: {e}", self.server))
    }

    /// Sends over UDP (retrying), falling back to TCP for a truncated answer.
    async fn exchange_bytes(&self, message: &Message) -> Result<Vec<u8>> {
        let request = message.to_vec().map_err(|e| anyhow!("encoding: {e}"))?;
        let id = message.metadata.id;
        let bind: SocketAddr = match self.server.ip() {
            IpAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
            IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = tokio::net::UdpSocket::bind(bind).await?;
        socket.connect(self.server).await?;
        let mut buf = vec![0u8; 4096];
        for _ in 0..TRIES {
            socket.send(&request).await?;
            let deadline = tokio::time::Instant::now() + TIMEOUT;
            while let Ok(received) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await
            {
                let n = received?;
                let answer = &buf[..n];
                if n < 12 || u16::from_be_bytes([answer[0], answer[1]]) != id {
                    continue;
                }
                if answer[2] & 0x02 != 0 {
                    return self.exchange_tcp(&request).await;
                }
                return Ok(answer.to_vec());
            }
        }
        bail!(
            "no answer from the DNS server {} after {TRIES} tries; check dns_rfc2136_server and dns_rfc2136_port",
            self.server
        )
    }

    async fn exchange_tcp(&self, request: &[u8]) -> Result<Vec<u8>> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(self.server).await?;
            let len = u16::try_from(request.len()).context("DNS message too large")?;
            stream.write_all(&len.to_be_bytes()).await?;
            stream.write_all(request).await?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await?;
            let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut answer).await?;
            anyhow::Ok(answer)
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow!("no answer from {} over TCP", self.server))?
    }
}

fn txt_set(record: &Name, value: &str) -> RecordSet {
    let mut rrset = RecordSet::with_ttl(record.clone(), RecordType::TXT, TTL);
    rrset.set_dns_class(DNSClass::IN);
    rrset.add_rdata(RData::TXT(TXT::new(vec![value.to_owned()])));
    rrset
}

fn random_id() -> u16 {
    aws_lc_rs::rand::generate(&aws_lc_rs::rand::SystemRandom::new())
        .map(|r: aws_lc_rs::rand::Random<[u8; 2]>| u16::from_be_bytes(r.expose()))
        .unwrap_or(0x4242)
}

/// Reads the INI credentials; unknown keys are refused (a typo would
/// otherwise go unnoticed).
pub(crate) fn parse_credentials(text: &str) -> Result<Rfc2136> {
    let (mut server, mut port, mut name, mut secret, mut algorithm) =
        (None, 53u16, None, None, None);
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .with_context(|| format!("line {}: expected `key = value`", number + 1))?;
        let value = value.trim().to_owned();
        match key.trim() {
            "dns_rfc2136_server" => server = Some(value),
            "dns_rfc2136_port" => {
                port = value
                    .parse()
                    .with_context(|| format!("dns_rfc2136_port {value:?}"))?;
            }
            "dns_rfc2136_name" => name = Some(value),
            "dns_rfc2136_secret" => secret = Some(value),
            "dns_rfc2136_algorithm" => algorithm = Some(value),
            "dns_rfc2136_sign_query" => {}
            other => bail!("line {}: unknown key {other:?}", number + 1),
        }
    }
    let server = server.context("dns_rfc2136_server is missing")?;
    let ip: IpAddr = server
        .parse()
        .with_context(|| format!("dns_rfc2136_server {server:?} must be an IP address"))?;
    let name = name.context("dns_rfc2136_name is missing")?;
    let key_name = Name::from_ascii(&name).with_context(|| format!("dns_rfc2136_name {name:?}"))?;
    let secret = secret.context("dns_rfc2136_secret is missing")?;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(secret.replace(' ', ""))
        .context("dns_rfc2136_secret is not base64")?;
    let algorithm = match algorithm.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("HMAC-SHA512") => TsigAlgorithm::HmacSha512,
        Some("HMAC-SHA384") => TsigAlgorithm::HmacSha384,
        Some("HMAC-SHA256") => TsigAlgorithm::HmacSha256,
        Some(other) => bail!(
            "dns_rfc2136_algorithm {other} is not supported; use HMAC-SHA256, HMAC-SHA384 or HMAC-SHA512"
        ),
    };
    Ok(Rfc2136 {
        server: SocketAddr::new(ip, port),
        key_name,
        algorithm,
        secret,
        propagation: Duration::ZERO,
        added: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certbot_credentials_parse() {
        let solver = parse_credentials(
            "# certbot-dns-rfc2136\n\
             dns_rfc2136_server = 127.0.0.1\n\
             dns_rfc2136_port = 5353\n\
             dns_rfc2136_name = cairn-key.\n\
             dns_rfc2136_secret = c2VjcmV0\n\
             dns_rfc2136_algorithm = hmac-sha256\n",
        )
        .expect("parses");
        assert_eq!(solver.server, "127.0.0.1:5353".parse().expect("addr"));
        assert_eq!(solver.key_name.to_ascii(), "cairn-key.");
        assert_eq!(solver.secret, b"secret");
        assert_eq!(solver.algorithm, TsigAlgorithm::HmacSha256);

        for bad in [
            "dns_rfc2136_server = ns.example\ndns_rfc2136_name = k.\ndns_rfc2136_secret = c2VjcmV0",
            "dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_secret = c2VjcmV0",
            "dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_name = k.\ndns_rfc2136_secret = c2VjcmV0\ndns_rfc2136_algorithm = HMAC-MD5",
            "dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_name = k.\ndns_rfc2136_secret = c2VjcmV0\ndns_rfc2136_sever = x",
        ] {
            assert!(parse_credentials(bad).is_err(), "{bad}");
        }
    }
}
