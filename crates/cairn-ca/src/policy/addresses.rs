//! Which addresses are public: the IANA special-purpose registries (RFC
//! 6890 and its updates). newOrder refuses an IP identifier that is not
//! public, and the VA never connects to one; both ask [`non_public`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// True for globally routable unicast addresses.
pub fn is_public(ip: IpAddr) -> bool {
    non_public(ip).is_none()
}

/// Why `ip` is not a public unicast address, if it is not: the ranges of
/// the IANA special-purpose registries that must not be reached from the
/// CA (RFC 6890 and its updates).
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

const V4_RANGES: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 8, "\"this network\" address"),
    ([10, 0, 0, 0], 8, "private address"),
    ([100, 64, 0, 0], 10, "shared (carrier-grade NAT) address"),
    ([127, 0, 0, 0], 8, "loopback address"),
    ([169, 254, 0, 0], 16, "link-local address"),
    ([172, 16, 0, 0], 12, "private address"),
    ([192, 0, 0, 0], 24, "IETF protocol assignment"),
    ([192, 0, 2, 0], 24, "documentation address"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast address"),
    ([192, 168, 0, 0], 16, "private address"),
    ([198, 18, 0, 0], 15, "benchmarking address"),
    ([198, 51, 100, 0], 24, "documentation address"),
    ([203, 0, 113, 0], 24, "documentation address"),
    ([224, 0, 0, 0], 4, "multicast address"),
    ([240, 0, 0, 0], 4, "reserved address"),
];

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    V4_RANGES.iter().find_map(|(net, len, why)| {
        let mask = u32::MAX << (32 - u32::from(*len));
        (bits & mask == u32::from_be_bytes(*net)).then_some(*why)
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // Addresses that carry an IPv4 address are judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4).or(Some("IPv4-mapped address"));
    }
    let bits = u128::from(ip);
    let within = |net: u128, len: u32| bits & (u128::MAX << (128 - len)) == net;
    if bits == 0 {
        return Some("unspecified address");
    }
    if bits == 1 {
        return Some("loopback address");
    }
    if within(0xfc00 << 112, 7) {
        return Some("unique local address");
    }
    if within(0xfe80 << 112, 10) {
        return Some("link-local address");
    }
    if within(0xff00 << 112, 8) {
        return Some("multicast address");
    }
    // Only global unicast (2000::/3) is reachable; inside it, these are not.
    if !within(0x2000 << 112, 3) {
        return Some("reserved address");
    }
    const V6_RANGES: &[(u128, u32, &str)] = &[
        (0x2001_0db8 << 96, 32, "documentation address"),
        (0x2001 << 112, 23, "IETF protocol assignment"),
        (0x2002 << 112, 16, "6to4 address"),
        (0x3fff << 112, 20, "documentation address"),
    ];
    V6_RANGES
        .iter()
        .find_map(|(net, len, why)| within(*net, *len).then_some(*why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn public_addresses_pass() {
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
        ] {
            assert_eq!(non_public(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn special_purpose_addresses_are_refused() {
        for (addr, why) in [
            ("0.0.0.0", "\"this network\" address"),
            ("10.1.2.3", "private address"),
            ("100.64.0.1", "shared (carrier-grade NAT) address"),
            ("127.0.0.1", "loopback address"),
            ("169.254.169.254", "link-local address"),
            ("172.31.255.255", "private address"),
            ("192.0.2.1", "documentation address"),
            ("192.168.1.1", "private address"),
            ("198.19.0.1", "benchmarking address"),
            ("224.0.0.1", "multicast address"),
            ("255.255.255.255", "reserved address"),
            ("::", "unspecified address"),
            ("::1", "loopback address"),
            ("::ffff:127.0.0.1", "loopback address"),
            ("::ffff:8.8.8.8", "IPv4-mapped address"),
            ("fd00::1", "unique local address"),
            ("fe80::1", "link-local address"),
            ("ff02::1", "multicast address"),
            ("2001:db8::1", "documentation address"),
            ("2001::1", "IETF protocol assignment"),
            ("2002:7f00:1::", "6to4 address"),
            ("64:ff9b::7f00:1", "reserved address"),
            ("::7f00:1", "reserved address"),
        ] {
            assert_eq!(non_public(ip(addr)), Some(why), "{addr}");
        }
    }
}
