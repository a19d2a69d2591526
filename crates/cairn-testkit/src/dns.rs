//! The mock DNS server: answers from [`Records`] over UDP and TCP on one
//! address, authoritative for every name.
//!
//! - A / AAAA: the name's own addresses, else the default address, else an
//!   empty answer.
//! - TXT, CAA: what was set; CNAME: the alias, then the target's records of
//!   the asked type (followed up to [`MAX_CNAME_CHAIN`] links).
//! - A name with no data of the asked type gets NOERROR with no answers, not
//!   NXDOMAIN; only names set to NXDOMAIN (or SERVFAIL) get those codes.
//!
//! Every record has TTL 0, so a resolver under test never answers from a
//! cache after a record changes.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CAA, CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::records::{Inner, Records};

/// How many CNAME links are followed before the answer is SERVFAIL.
pub const MAX_CNAME_CHAIN: usize = 8;

/// TTL of every record served.
const TTL: u32 = 0;

/// A TCP connection that sends nothing for this long is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds UDP and TCP on `addr` (port 0: one free port for both) and serves
/// `records` there. Returns the bound address and the task running the
/// server; aborting the task stops it.
pub(crate) async fn spawn(
    addr: SocketAddr,
    records: Records,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let (udp, tcp) = bind_udp_and_tcp(addr).await?;
    let bound = udp.local_addr().context("reading the DNS UDP address")?;
    let mut server = Server::new(Handler { records });
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE_TIMEOUT, 64);
    let task = tokio::spawn(async move {
        if let Err(error) = server.block_until_done().await {
            warn!(%error, "DNS server stopped");
        }
    });
    Ok((bound, task))
}

/// UDP and TCP sockets on the same port. With port 0 the UDP port is chosen
/// by the system and TCP tries it too; a few attempts cover the rare case
/// where that TCP port is taken.
async fn bind_udp_and_tcp(addr: SocketAddr) -> anyhow::Result<(UdpSocket, TcpListener)> {
    const ATTEMPTS: usize = 10;
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        let udp = UdpSocket::bind(addr)
            .await
            .with_context(|| format!("binding the DNS server to {addr} (UDP)"))?;
        let udp_addr = udp.local_addr().context("reading the DNS UDP address")?;
        match TcpListener::bind(udp_addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) if addr.port() == 0 => last_error = Some(error),
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("binding the DNS server to {addr} (TCP)"));
            }
        }
    }
    Err(anyhow::anyhow!(
        "no port free for both UDP and TCP on {} after {ATTEMPTS} attempts (last error: {})",
        addr.ip(),
        last_error.map_or_else(|| "none".to_owned(), |e| e.to_string())
    ))
}

#[derive(Debug)]
struct Handler {
    records: Records,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        // We answer every name ourselves; saying so keeps stub resolvers
        // that distrust non-recursive answers (Go's) content.
        metadata.recursion_available = true;

        // RFC 6891 §6.1.1: a query with OPT gets OPT back.
        let response_edns = request.edns.as_ref().map(|edns| {
            let mut ours = Edns::new();
            ours.set_max_payload(edns.max_payload().max(512));
            ours.set_version(0);
            ours
        });

        let answers = match (request.metadata.message_type, request.metadata.op_code) {
            (MessageType::Query, OpCode::Query) => match request.request_info() {
                Ok(info) => {
                    let query = info.query.original();
                    let (code, answers) =
                        resolve(&self.records.read(), query.name(), query.query_type());
                    debug!(
                        name = %query.name(),
                        r#type = %query.query_type(),
                        response = %code,
                        answers = answers.len(),
                        "DNS query"
                    );
                    metadata.response_code = code;
                    answers
                }
                Err(_) => {
                    metadata.response_code = ResponseCode::FormErr;
                    Vec::new()
                }
            },
            _ => {
                metadata.response_code = ResponseCode::NotImp;
                Vec::new()
            }
        };

        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &response_edns {
            builder.edns(edns);
        }
        let response = builder.build(metadata, answers.iter(), [], [], []);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                warn!(%error, "failed to send a DNS response");
                let mut failed = Metadata::response_from_request(&request.metadata);
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata: failed,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// The response code and answers for one question.
fn resolve(records: &Inner, qname: &Name, qtype: RecordType) -> (ResponseCode, Vec<Record>) {
    let mut answers = Vec::new();
    let mut owner = qname.clone();
    let mut key = lookup_key(qname);
    for _ in 0..=MAX_CNAME_CHAIN {
        if records.servfail.contains(&key) {
            return (ResponseCode::ServFail, Vec::new());
        }
        if records.nxdomain.contains(&key) {
            return (ResponseCode::NXDomain, answers);
        }
        let Some(target) = records.cname.get(&key) else {
            answers.extend(data_of_type(records, &owner, &key, qtype));
            return (ResponseCode::NoError, answers);
        };
        let Ok(target_name) = Name::from_ascii(format!("{target}.")) else {
            return (ResponseCode::ServFail, Vec::new());
        };
        answers.push(Record::from_rdata(
            owner,
            TTL,
            RData::CNAME(CNAME(target_name.clone())),
        ));
        if qtype == RecordType::CNAME {
            return (ResponseCode::NoError, answers);
        }
        owner = target_name;
        key = target.clone();
    }
    warn!(name = %qname, "CNAME chain longer than {MAX_CNAME_CHAIN} links (a loop?)");
    (ResponseCode::ServFail, Vec::new())
}

/// Records of `qtype` held for one name (no CNAME processing).
fn data_of_type(records: &Inner, owner: &Name, key: &str, qtype: RecordType) -> Vec<Record> {
    let record = |data: RData| Record::from_rdata(owner.clone(), TTL, data);
    match qtype {
        RecordType::A => match records.a.get(key) {
            Some(addresses) => addresses.iter().map(|a| record(RData::A(A(*a)))).collect(),
            None => records
                .default_ipv4
                .map(|a| record(RData::A(A(a))))
                .into_iter()
                .collect(),
        },
        RecordType::AAAA => match records.aaaa.get(key) {
            Some(addresses) => addresses
                .iter()
                .map(|a| record(RData::AAAA(AAAA(*a))))
                .collect(),
            None => records
                .default_ipv6
                .map(|a| record(RData::AAAA(AAAA(a))))
                .into_iter()
                .collect(),
        },
        RecordType::TXT => records
            .txt
            .get(key)
            .into_iter()
            .flatten()
            .map(|value| record(RData::TXT(txt(value))))
            .collect(),
        RecordType::CAA => records
            .caa
            .get(key)
            .into_iter()
            .flatten()
            .map(|policy| {
                // CAA is non-exhaustive: start from a constructor, then set
                // the wire fields as given (RFC 8659 §4.1).
                let mut caa = CAA::new_issue(false, None, Vec::new());
                caa.issuer_critical = policy.flags & 0x80 != 0;
                caa.reserved_flags = policy.flags & 0x7f;
                caa.tag.clone_from(&policy.tag);
                caa.value = policy.value.as_bytes().to_vec();
                record(RData::CAA(caa))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A TXT record with `value` split into character-strings of at most 255
/// bytes (RFC 1035 §3.3.14); a resolver joins them back.
fn txt(value: &str) -> TXT {
    if value.is_empty() {
        return TXT::from_bytes(vec![b"".as_slice()]);
    }
    TXT::from_bytes(value.as_bytes().chunks(255).collect())
}

/// The key a query name is stored under: lowercase, no trailing dot.
fn lookup_key(name: &Name) -> String {
    let ascii = name.to_ascii();
    ascii
        .strip_suffix('.')
        .unwrap_or(&ascii)
        .to_ascii_lowercase()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::records::CaaPolicy;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn cname_chain_then_target_data() {
        let records = Records::new(Some(Ipv4Addr::LOCALHOST), None);
        records.set_cname("www.a.example", "B.example.").unwrap();
        records.set_cname("b.example", "c.example").unwrap();
        records
            .add_a("c.example", &[Ipv4Addr::new(192, 0, 2, 7)])
            .unwrap();
        let (code, answers) = resolve(&records.read(), &name("WWW.a.example."), RecordType::A);
        assert_eq!(code, ResponseCode::NoError);
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[0].name, name("WWW.a.example."));
        assert_eq!(answers[2].data, RData::A(A(Ipv4Addr::new(192, 0, 2, 7))));

        let (_, answers) = resolve(&records.read(), &name("www.a.example."), RecordType::CNAME);
        assert_eq!(answers.len(), 1);
    }

    #[test]
    fn cname_loop_is_servfail() {
        let records = Records::default();
        records.set_cname("a.example", "b.example").unwrap();
        records.set_cname("b.example", "a.example").unwrap();
        let (code, _) = resolve(&records.read(), &name("a.example."), RecordType::A);
        assert_eq!(code, ResponseCode::ServFail);
    }

    #[test]
    fn long_txt_values_are_split() {
        let value = "x".repeat(600);
        let record = txt(&value);
        assert_eq!(record.txt_data.len(), 3);
        let joined: Vec<u8> = record.txt_data.iter().flatten().copied().collect();
        assert_eq!(joined, value.as_bytes());
    }

    #[test]
    fn caa_flags_round_trip() {
        let records = Records::default();
        records
            .add_caa(
                "a.example",
                &[CaaPolicy::issue("cairn.test").with_flags(128)],
            )
            .unwrap();
        let (_, answers) = resolve(&records.read(), &name("a.example."), RecordType::CAA);
        let RData::CAA(caa) = &answers[0].data else {
            panic!("not CAA: {answers:?}");
        };
        assert_eq!(caa.flags(), 128);
        assert_eq!(caa.tag, "issue");
        assert_eq!(caa.value, b"cairn.test");
    }
}
