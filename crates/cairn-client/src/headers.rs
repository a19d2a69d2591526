//! Parsing of the HTTP headers ACME relies on besides `Replay-Nonce`:
//! `Link` (RFC 8288, used by RFC 8555 §7.1.2.1, §7.4.2, §7.1.1) and
//! `Retry-After` (RFC 9110 §10.2.3, used by RFC 8555 §7.5.1, §8.2).

use std::time::Duration;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// One link of a `Link` header: its target, unresolved, and its relation
/// types, lowercased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) target: String,
    pub(crate) rels: Vec<String>,
}

/// The targets of every link with relation type `rel` (compared without
/// regard to case, RFC 8288 §2.1.1), across all the given `Link` header
/// values, in order.
pub(crate) fn link_targets<'a>(
    values: impl IntoIterator<Item = &'a str>,
    rel: &str,
) -> Vec<String> {
    values
        .into_iter()
        .flat_map(parse_links)
        .filter(|link| link.rels.iter().any(|r| r.eq_ignore_ascii_case(rel)))
        .map(|link| link.target)
        .collect()
}

/// Parses one `Link` header value: comma-separated `<target>; param=value`
/// elements (RFC 8288 §3). Quoted strings may hold commas and semicolons;
/// a malformed element is skipped, never an error. Only the first `rel`
/// parameter of an element counts (RFC 8288 §3.3).
pub(crate) fn parse_links(value: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return links;
        }
        let Some(after_open) = rest.strip_prefix('<') else {
            rest = skip_element(rest);
            continue;
        };
        let Some(close) = after_open.find('>') else {
            return links;
        };
        let target = after_open[..close].trim().to_owned();
        rest = &after_open[close + 1..];
        let mut rels = None;
        loop {
            rest = rest.trim_start();
            let Some(after_semi) = rest.strip_prefix(';') else {
                break;
            };
            let (name, value, after) = parse_param(after_semi);
            rest = after;
            if rels.is_none() && name.eq_ignore_ascii_case("rel") {
                rels = Some(
                    value
                        .unwrap_or_default()
                        .split_ascii_whitespace()
                        .map(str::to_ascii_lowercase)
                        .collect::<Vec<_>>(),
                );
            }
        }
        if !rest.is_empty() && !rest.starts_with(',') {
            rest = skip_element(rest);
        }
        links.push(Link {
            target,
            rels: rels.unwrap_or_default(),
        });
    }
}

/// Parses `name [= token | quoted-string]` and returns what follows.
fn parse_param(input: &str) -> (&str, Option<String>, &str) {
    let input = input.trim_start();
    let name_end = input
        .find(|c: char| c == '=' || c == ';' || c == ',' || c.is_ascii_whitespace())
        .unwrap_or(input.len());
    let name = &input[..name_end];
    let rest = input[name_end..].trim_start();
    let Some(rest) = rest.strip_prefix('=') else {
        return (name, None, rest);
    };
    let rest = rest.trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return (name, Some(value), &quoted[i + 1..]),
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                c => value.push(c),
            }
        }
        // Unterminated quoted string: take what there is.
        (name, Some(value), "")
    } else {
        let end = rest
            .find(|c: char| c == ';' || c == ',' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        (name, Some(rest[..end].to_owned()), &rest[end..])
    }
}

/// Skips to the next top-level comma, stepping over quoted strings.
fn skip_element(input: &str) -> &str {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in input.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => return &input[i..],
            _ => {}
        }
    }
    ""
}

/// How long a `Retry-After` value asks to wait, measured from `now`:
/// delta-seconds or an HTTP-date (RFC 9110 §10.2.3). A date in the past is
/// zero; a number too large for `u64` is `u64::MAX` seconds (the caller
/// caps it). Anything else is `None`.
pub(crate) fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(value, now)?;
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

/// Parses an HTTP-date in any of the three forms a recipient must accept
/// (RFC 9110 §5.6.7): IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, the
/// obsolete RFC 850 form `Sunday, 06-Nov-94 08:49:37 GMT` and C's asctime
/// form `Sun Nov  6 08:49:37 1994`. The weekday is not checked.
pub(crate) fn parse_http_date(value: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let words: Vec<&str> = value.split_ascii_whitespace().collect();
    let (day, month, year, clock) = match words.as_slice() {
        [weekday, day, month, year, clock, "GMT"] if weekday.ends_with(',') => {
            (*day, *month, parse_number(year)?, *clock)
        }
        [weekday, dmy, clock, "GMT"] if weekday.ends_with(',') => {
            let mut parts = dmy.split('-');
            let (day, month, yy) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || yy.len() != 2 {
                return None;
            }
            // RFC 9110 §5.6.7: a two-digit year more than 50 years in the
            // future is the most recent past year with those digits.
            let mut year = 2000 + parse_number(yy)?;
            if year > now.year() + 50 {
                year -= 100;
            }
            (day, month, year, *clock)
        }
        [_weekday, month, day, clock, year] => (*day, *month, parse_number(year)?, *clock),
        _ => return None,
    };
    let day = u8::try_from(parse_number(day)?).ok()?;
    let month = parse_month(month)?;
    let mut hms = clock.split(':');
    let (h, m, s) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() {
        return None;
    }
    let time = Time::from_hms(
        u8::try_from(parse_number(h)?).ok()?,
        u8::try_from(parse_number(m)?).ok()?,
        u8::try_from(parse_number(s)?).ok()?,
    )
    .ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

fn parse_number(text: &str) -> Option<i32> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_month(name: &str) -> Option<Month> {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let index = NAMES.iter().position(|n| *n == name)?;
    Month::try_from(u8::try_from(index + 1).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn several_links_in_one_header_and_several_headers() {
        let headers = [
            r#"<https://ca.test/acme/orders/1?cursor=2>; rel="next", <https://ca.test/dir>;rel=index"#,
            r#"</cert/1/alt/1>;rel="alternate", </cert/1/alt/2> ; rel = alternate"#,
        ];
        assert_eq!(
            link_targets(headers, "next"),
            ["https://ca.test/acme/orders/1?cursor=2"]
        );
        assert_eq!(link_targets(headers, "index"), ["https://ca.test/dir"]);
        assert_eq!(
            link_targets(headers, "alternate"),
            ["/cert/1/alt/1", "/cert/1/alt/2"]
        );
        assert!(link_targets(headers, "up").is_empty());
    }

    #[test]
    fn rel_lists_case_and_quoted_punctuation() {
        let header = r#"<a>; title="x, y; z"; rel="Next Alternate", <b>; rel=NEXT; rel=up, <c>"#;
        let links = parse_links(header);
        assert_eq!(
            links,
            [
                Link {
                    target: "a".into(),
                    rels: vec!["next".into(), "alternate".into()]
                },
                // Only the first rel parameter counts (RFC 8288 §3.3).
                Link {
                    target: "b".into(),
                    rels: vec!["next".into()]
                },
                Link {
                    target: "c".into(),
                    rels: vec![]
                },
            ]
        );
        assert_eq!(link_targets([header], "alternate"), ["a"]);
    }

    #[test]
    fn malformed_links_are_skipped() {
        assert!(parse_links("").is_empty());
        assert!(parse_links("garbage, more garbage").is_empty());
        assert!(parse_links("<unterminated; rel=next").is_empty());
        assert_eq!(
            link_targets([r#"junk "with, comma", <ok>;rel=next"#], "next"),
            ["ok"]
        );
        assert_eq!(link_targets([r#"<x>; rel="next"#], "next"), ["x"]);
    }

    #[test]
    fn retry_after_delta_seconds() {
        let now = datetime!(2024-05-01 12:00:00 UTC);
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "-1", "1.5", "soon", "12s"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_http_dates_in_all_three_forms() {
        let now = datetime!(1994-11-06 08:49:00 UTC);
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(form, now),
                Some(Duration::from_secs(37)),
                "{form}"
            );
        }
        // A date in the past means: now.
        let later = datetime!(2030-01-01 00:00:00 UTC);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "1994-11-06T08:49:37Z",
        ] {
            assert_eq!(parse_http_date(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn two_digit_years_follow_rfc_9110() {
        let now = datetime!(2024-01-01 00:00:00 UTC);
        let date = |s| parse_http_date(s, now).map(|d| d.year());
        assert_eq!(date("Monday, 01-Jan-24 00:00:00 GMT"), Some(2024));
        assert_eq!(date("Monday, 01-Jan-74 00:00:00 GMT"), Some(2074));
        assert_eq!(date("Monday, 01-Jan-75 00:00:00 GMT"), Some(1975));
    }
}
