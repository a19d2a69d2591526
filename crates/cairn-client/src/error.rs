//! The crate's one error type.

use std::fmt;
use std::time::Duration;

use cairn_proto::objects::{AuthorizationStatus, ChallengeType};
use cairn_proto::{Identifier, Problem, ProblemType};

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to an ACME server.
///
/// Messages name the URL or the identifier concerned, so that what a user
/// sees says what failed and where; [`Error::problem`] gives the server's
/// own problem document when there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be sent or its response not read: connection
    /// refused, TLS failure, reset connection. The message ends with the
    /// innermost cause (say, the TLS certificate error).
    #[error("request to {url} failed: {}", RootCause(source))]
    Http {
        /// The URL requested.
        url: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a problem document (RFC 8555 §6.7,
    /// RFC 7807), after any `badNonce` retries were spent.
    #[error("the ACME server refused the request to {url}: {problem}")]
    Problem {
        /// The problem document (boxed, as everywhere in this enum, to
        /// keep `Result`s small).
        problem: Box<Problem>,
        /// The URL that answered with it.
        url: String,
    },
    /// A request got no answer in time, or polling passed its deadline
    /// (see [`crate::ClientOptions::timeout`] and
    /// [`crate::ClientOptions::poll_deadline`]).
    #[error("gave up on {url} after {waited:?}: {detail}")]
    Timeout {
        /// The URL requested or polled.
        url: String,
        /// How long was waited.
        waited: Duration,
        /// What was being waited for.
        detail: String,
    },
    /// The answer is not what RFC 8555 says it must be: not JSON, an HTML
    /// error page, larger than the configured cap, a missing `Location`
    /// or `Replay-Nonce` header, an unexpected redirect.
    #[error("unusable response from {url}: {detail}")]
    InvalidResponse {
        /// The URL that answered.
        url: String,
        /// What is wrong: the HTTP status, the content type and the start
        /// of the body, where they help.
        detail: String,
    },
    /// A challenge carries a token that is not 22–256 base64url characters
    /// (RFC 8555 §8.1, §8.3). Nothing was written anywhere for it.
    #[error("refusing the {kind} challenge for {identifier}: {reason}")]
    BadToken {
        /// The identifier the challenge is for.
        identifier: Identifier,
        /// The challenge type.
        kind: ChallengeType,
        /// Why the token was refused.
        reason: String,
    },
    /// The server offers no challenge of the wanted type for an identifier.
    #[error("the CA offers no {kind} challenge for {identifier} (it offers: {offered})")]
    ChallengeUnavailable {
        /// The identifier to prove.
        identifier: Identifier,
        /// The challenge type wanted.
        kind: ChallengeType,
        /// The types offered, comma-separated.
        offered: String,
    },
    /// An authorization ended in a state other than `valid` (RFC 8555
    /// §7.1.6).
    #[error("authorization for {identifier} is {status}{}", OptProblem(problem))]
    AuthorizationFailed {
        /// The identifier the authorization is for.
        identifier: Identifier,
        /// The authorization URL.
        url: String,
        /// The final status.
        status: AuthorizationStatus,
        /// The `error` of the challenge that failed, if the server gave one.
        problem: Option<Box<Problem>>,
    },
    /// The order became `invalid` (RFC 8555 §7.1.6).
    #[error("order {url} is invalid{}", OptProblem(problem))]
    OrderInvalid {
        /// The order URL.
        url: String,
        /// The order's `error` field, if the server gave one.
        problem: Option<Box<Problem>>,
    },
    /// An order or authorization is in a state the operation cannot
    /// proceed from (waiting for a pending order to become valid,
    /// downloading the certificate of an order that is not valid).
    #[error("{url} is {status}; {expected}")]
    UnexpectedStatus {
        /// The order URL.
        url: String,
        /// Its status.
        status: String,
        /// What the operation needs.
        expected: &'static str,
    },
    /// [`crate::check_certificate`] refused the certificate: it must not
    /// be installed.
    #[error("certificate refused: {0}")]
    CertificateRefused(String),
    /// A CSR could not be built for these identifiers and key.
    #[error("could not build the CSR: {0}")]
    Csr(String),
    /// A key could not be generated, loaded or used to sign.
    #[error(transparent)]
    Key(#[from] cairn_proto::Error),
    /// The client was configured wrongly: an unreadable CA bundle,
    /// credentials for another directory.
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The server's problem document, if this error carries one: the
    /// response to a request, an invalid order's `error`, or the failed
    /// challenge's `error`.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Problem { problem, .. } => Some(problem),
            Self::OrderInvalid { problem, .. } | Self::AuthorizationFailed { problem, .. } => {
                problem.as_deref()
            }
            _ => None,
        }
    }

    /// True if the server's problem document has type `kind`.
    pub fn is_problem(&self, kind: &ProblemType) -> bool {
        self.problem().is_some_and(|p| &p.kind == kind)
    }

    pub(crate) fn invalid(url: &str, detail: impl Into<String>) -> Self {
        Self::InvalidResponse {
            url: url.to_owned(),
            detail: detail.into(),
        }
    }
}

/// Formats the last error of a source chain: reqwest's own message is
/// only "error sending request", the reason is at the bottom.
struct RootCause<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for RootCause<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut cause = self.0;
        while let Some(next) = cause.source() {
            cause = next;
        }
        write!(f, "{cause}")
    }
}

/// Formats `: problem` or nothing.
struct OptProblem<'a>(&'a Option<Box<Problem>>);

impl fmt::Display for OptProblem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(problem) => write!(f, ": {problem}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_identifier_and_the_problem() {
        let err = Error::AuthorizationFailed {
            identifier: Identifier::dns("a.example"),
            url: "http://ca.test/authz/1".into(),
            status: AuthorizationStatus::Invalid,
            problem: Some(Box::new(Problem::new(
                ProblemType::IncorrectResponse,
                "key authorization mismatch",
            ))),
        };
        assert_eq!(
            err.to_string(),
            "authorization for dns:a.example is invalid: incorrectResponse: key authorization mismatch"
        );
        assert!(err.is_problem(&ProblemType::IncorrectResponse));
        let err = Error::OrderInvalid {
            url: "http://ca.test/order/1".into(),
            problem: None,
        };
        assert_eq!(err.to_string(), "order http://ca.test/order/1 is invalid");
        assert!(err.problem().is_none());
    }
}
