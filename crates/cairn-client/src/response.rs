//! Reading a server's answer: a capped body, problem documents turned into
//! errors, and the headers ACME puts meaning in.

use std::time::Duration;

use cairn_proto::Problem;
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::headers;

/// The content type of a problem document (RFC 7807 §3, RFC 8555 §6.7).
const PROBLEM_JSON: &str = "application/problem+json";

/// How much of a bad body an error message quotes.
const EXCERPT_CHARS: usize = 160;

/// A response read in full, with a 2xx status unless it came from
/// [`Received::error_status`]'s caller.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) url: String,
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Received {
    /// Reads `response`'s body, refusing more than `max_bytes`: a
    /// `Content-Length` over the cap is refused before reading, and a body
    /// without one is read chunk by chunk and abandoned as soon as it
    /// passes the cap.
    pub(crate) async fn read(
        url: &str,
        mut response: reqwest::Response,
        max_bytes: usize,
        on_error: impl Fn(reqwest::Error) -> Error,
    ) -> Result<Self> {
        let status = response.status();
        let too_large = || {
            Error::invalid(
                url,
                format!("HTTP {status}: the body is larger than the {max_bytes}-byte limit"),
            )
        };
        if response
            .content_length()
            .is_some_and(|len| len > max_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(&on_error)? {
            if body.len() + chunk.len() > max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Self {
            url: url.to_owned(),
            status,
            headers: response.headers().clone(),
            body,
        })
    }

    /// Passes a 2xx response through; turns anything else into an error:
    /// a problem document into [`Error::Problem`], and a redirect, an HTML
    /// page or other junk into [`Error::InvalidResponse`] quoting the start
    /// of the body.
    pub(crate) fn into_success(self) -> Result<Self> {
        if self.status.is_success() {
            return Ok(self);
        }
        if self.status.is_redirection() {
            let to = self.header(LOCATION.as_str()).unwrap_or("nowhere");
            return Err(Error::invalid(
                &self.url,
                format!(
                    "unexpected redirect (HTTP {}) to {to}; ACME requests are not redirected",
                    self.status
                ),
            ));
        }
        let content_type = self.content_type();
        let looks_like_problem = content_type.eq_ignore_ascii_case(PROBLEM_JSON)
            || content_type.eq_ignore_ascii_case("application/json");
        if looks_like_problem && let Ok(problem) = serde_json::from_slice::<Problem>(&self.body) {
            return Err(Error::Problem {
                problem: Box::new(problem),
                url: self.url,
            });
        }
        Err(Error::invalid(
            &self.url,
            self.describe("not a problem document"),
        ))
    }

    /// The body as JSON of type `T`.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::invalid(
                &self.url,
                self.describe(&format!("not the expected JSON ({e})")),
            )
        })
    }

    /// The body as UTF-8 text.
    pub(crate) fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body)
            .map_err(|_| Error::invalid(&self.url, self.describe("not UTF-8 text")))
    }

    /// The `Location` header, resolved against the request URL. RFC 8555
    /// §7.3 and §7.4 require it on a created account or order.
    pub(crate) fn location(&self) -> Result<String> {
        self.header(LOCATION.as_str())
            .and_then(|target| resolve(&self.url, target))
            .ok_or_else(|| {
                Error::invalid(
                    &self.url,
                    format!("HTTP {} without a usable Location header", self.status),
                )
            })
    }

    /// The targets of `Link` headers with relation `rel`, resolved against
    /// the request URL (RFC 8288 §3.1).
    pub(crate) fn links(&self, rel: &str) -> Vec<String> {
        let values = self
            .headers
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok());
        headers::link_targets(values, rel)
            .into_iter()
            .filter_map(|target| resolve(&self.url, &target))
            .collect()
    }

    /// The `Retry-After` header as a wait from now (RFC 9110 §10.2.3).
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        self.header(RETRY_AFTER.as_str())
            .and_then(|v| headers::parse_retry_after(v, time::OffsetDateTime::now_utc()))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type of the body, parameters removed.
    fn content_type(&self) -> &str {
        self.header(CONTENT_TYPE.as_str())
            .and_then(|v| v.split(';').next())
            .unwrap_or("")
            .trim()
    }

    /// `HTTP 500 Internal Server Error, text/html, <what>: <excerpt>`.
    fn describe(&self, what: &str) -> String {
        let content_type = match self.content_type() {
            "" => "no content type",
            other => other,
        };
        format!(
            "HTTP {}, {content_type}, {what}: {:?}",
            self.status,
            excerpt(&self.body)
        )
    }
}

/// The start of `body` as one line of text, for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() >= EXCERPT_CHARS {
            let cut: String = out.chars().take(EXCERPT_CHARS).collect();
            return format!("{cut}…");
        }
    }
    out
}

/// Resolves a possibly relative reference against `base`.
pub(crate) fn resolve(base: &str, target: &str) -> Option<String> {
    let base = Url::parse(base).ok()?;
    base.join(target).ok().map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(status: u16, content_type: &str, body: &str) -> Received {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, content_type.parse().expect("header value"));
        Received {
            url: "http://ca.test/acme/x".into(),
            status: StatusCode::from_u16(status).expect("status"),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn problem_documents_become_problem_errors() {
        // RFC 8555 §6.7.1's example, abridged.
        let body = r#"{"type":"urn:ietf:params:acme:error:malformed","detail":"Some of the identifiers requested were rejected","subproblems":[{"type":"urn:ietf:params:acme:error:malformed","detail":"Invalid underscore in DNS name \"_example.org\"","identifier":{"type":"dns","value":"_example.org"}}]}"#;
        let err = received(403, "application/problem+json", body)
            .into_success()
            .expect_err("an error");
        let Error::Problem { problem, url } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(url, "http://ca.test/acme/x");
        assert_eq!(problem.kind, cairn_proto::ProblemType::Malformed);
        assert!(err.to_string().contains("dns:_example.org"), "{err}");
    }

    #[test]
    fn html_error_pages_are_invalid_responses_with_an_excerpt() {
        let body = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>...</body></html>";
        let err = received(502, "text/html; charset=utf-8", body)
            .into_success()
            .expect_err("an error");
        let msg = err.to_string();
        assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
        assert!(msg.contains("502 Bad Gateway"), "{msg}");
        assert!(msg.contains("text/html"), "{msg}");
        assert!(msg.contains("<title>502 Bad Gateway</title>"), "{msg}");
    }

    #[test]
    fn excerpts_are_short_single_lines() {
        assert_eq!(excerpt(b"  a\n\tb\r\n c  "), "a b c");
        let long = excerpt("x ".repeat(1000).as_bytes());
        assert_eq!(long.chars().count(), EXCERPT_CHARS + 1);
        assert_eq!(excerpt(&[0xff, 0xfe, b'o', b'k']), "\u{fffd}\u{fffd}ok");
    }

    #[test]
    fn relative_locations_resolve_against_the_request() {
        let mut r = received(201, "application/json", "{}");
        r.headers
            .insert(LOCATION, "/acme/order/7".parse().expect("value"));
        assert_eq!(
            r.location().expect("location"),
            "http://ca.test/acme/order/7"
        );
        r.headers.remove(LOCATION);
        assert!(matches!(r.location(), Err(Error::InvalidResponse { .. })));
    }
}
