//! The CA's identifier policy (cairn-ca's `policy::Policy`, which newOrder
//! checks every identifier with) on arbitrary names.
//!
//! The input is read as lines (invalid UTF-8 replaced): a line `ip:VALUE`
//! is an IP identifier, any other a DNS name. Each line is checked alone as
//! a DNS name, as the wildcard `*.LINE` and as an IP address, under the
//! production policy and the permissive (dev) one; all lines together are
//! one order. Nothing may panic, and what is accepted keeps the policy's
//! promises:
//! - an accepted DNS name is LDH ASCII: lowercase letters, digits and
//!   hyphens in labels of 1 to 63 characters, at most 253 in all, a
//!   wildcard only as the whole leftmost label; never an IP address;
//! - an accepted IP address is in canonical form, and public in production;
//! - production accepts nothing dev refuses, and a wildcard only when it
//!   accepts the name under it;
//! - wildcards are offered dns-01 only, IP addresses never dns-01;
//! - an order passes when, and only when, each identifier does (and their
//!   number is 1 to MAX_IDENTIFIERS); what comes back is the identifiers
//!   sorted and without duplicates.
#![no_main]

use std::net::IpAddr;

use cairn_ca::policy::{MAX_IDENTIFIERS, Policy, is_public};
use cairn_proto::objects::ChallengeType;
use cairn_proto::{Identifier, IdentifierType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let production = Policy { permissive: false };
    let dev = Policy { permissive: true };
    let mut order = Vec::new();
    // One more than an order may have, to reach that refusal.
    for line in text.split('\n').take(MAX_IDENTIFIERS + 1) {
        order.push(match line.strip_prefix("ip:") {
            Some(value) => ip(value),
            None => Identifier::dns(line),
        });
        for id in [
            Identifier::dns(line),
            Identifier::dns(format!("*.{line}")),
            ip(line),
        ] {
            one(&production, &dev, &id);
        }
    }
    for policy in [&production, &dev] {
        check_order(policy, &order);
    }
});

fn ip(value: &str) -> Identifier {
    Identifier {
        kind: IdentifierType::Ip,
        value: value.to_owned(),
    }
}

fn one(production: &Policy, dev: &Policy, id: &Identifier) {
    let in_production = production.check_identifier(id).is_ok();
    let in_dev = dev.check_identifier(id).is_ok();
    assert!(
        !in_production || in_dev,
        "production accepts {id:?}, dev refuses it"
    );
    if !in_dev {
        return;
    }
    match id.kind {
        IdentifierType::Dns => {
            let base = id.value.strip_prefix("*.").unwrap_or(&id.value);
            assert!(is_ldh_name(base), "accepted DNS name {:?}", id.value);
            assert!(base.parse::<IpAddr>().is_err(), "accepted {:?}", id.value);
            if in_production && id.is_wildcard() {
                assert!(
                    production.check_identifier(&Identifier::dns(base)).is_ok(),
                    "production accepts {:?} but not {base:?}",
                    id.value
                );
            }
        }
        IdentifierType::Ip => {
            let ip: IpAddr = id.value.parse().expect("an accepted IP address parses");
            assert_eq!(ip.to_string(), id.value, "accepted a non-canonical IP");
            assert!(!in_production || is_public(ip), "production accepts {ip}");
        }
        ref other => panic!("accepted identifier type {other:?}"),
    }
    let wildcard = id.is_wildcard();
    let types = dev.challenge_types(id, wildcard);
    assert!(!types.is_empty(), "no challenge for {id:?}");
    if wildcard {
        assert_eq!(types, [ChallengeType::Dns01], "{id:?}");
    }
    if id.kind == IdentifierType::Ip {
        assert!(!types.contains(&ChallengeType::Dns01), "{id:?}");
    }
}

fn is_ldh_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn check_order(policy: &Policy, order: &[Identifier]) {
    let each_passes = order.iter().all(|id| policy.check_identifier(id).is_ok());
    let counted = (1..=MAX_IDENTIFIERS).contains(&order.len());
    match policy.check_order_identifiers(order) {
        Ok(checked) => {
            assert!(counted && each_passes, "order passed: {order:?}");
            let mut want = order.to_vec();
            want.sort();
            want.dedup();
            assert_eq!(checked, want);
        }
        Err(e) => {
            assert!(!(counted && each_passes), "order refused: {order:?}: {e:?}");
            if counted {
                let refused = order
                    .iter()
                    .filter(|id| policy.check_identifier(id).is_err())
                    .count();
                assert_eq!(e.subproblems.len(), refused, "{e:?}");
            }
        }
    }
}
