//! The one error type that crosses the CA's components. Only `wfe` turns
//! it into an RFC 8555 problem document; internal details stay in the log.

use std::fmt;
use std::time::Duration;

use cairn_proto::problem::{Problem, ProblemType, Subproblem};

/// An error on its way to a client: its problem type, a detail written for
/// the person reading it, and optional subproblems and Retry-After.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaError {
    pub kind: ProblemType,
    pub detail: String,
    pub subproblems: Vec<Subproblem>,
    pub retry_after: Option<Duration>,
    /// The HTTP status, when not the type's default.
    pub status: Option<u16>,
    /// With `badSignatureAlgorithm`: the algorithms accepted.
    pub algorithms: Option<Vec<String>>,
}

pub type CaResult<T> = Result<T, CaError>;

impl CaError {
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            subproblems: Vec::new(),
            retry_after: None,
            status: None,
            algorithms: None,
        }
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Malformed, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Unauthorized, detail)
    }

    /// A missing resource: `malformed` with status 404, as Boulder answers.
    pub fn not_found(what: impl fmt::Display) -> Self {
        Self::malformed(format!("{what} not found")).with_status(404)
    }

    /// An internal failure: the cause is logged here, the client sees only
    /// that something went wrong on our side.
    pub fn internal(context: &str, cause: impl fmt::Display) -> Self {
        tracing::error!(target: "cairn::internal", context, %cause, "internal error");
        Self::new(
            ProblemType::ServerInternal,
            format!("internal error while {context}; the CA operator can find it in the log"),
        )
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_subproblems(mut self, subproblems: Vec<Subproblem>) -> Self {
        self.subproblems = subproblems;
        self
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// The HTTP status this error is sent with.
    pub fn http_status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.kind.default_status())
    }

    /// The problem document (RFC 8555 §6.7) for the wire.
    pub fn to_problem(&self) -> Problem {
        let mut problem = Problem::new(self.kind.clone(), self.detail.clone())
            .with_status(self.http_status())
            .with_subproblems(self.subproblems.clone());
        problem.algorithms = self.algorithms.clone();
        problem
    }
}

impl fmt::Display for CaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for CaError {}

impl From<cairn_proto::Error> for CaError {
    fn from(e: cairn_proto::Error) -> Self {
        let problem = e.to_problem();
        let mut err = Self::new(problem.kind, problem.detail.unwrap_or_default());
        err.algorithms = problem.algorithms;
        err
    }
}

impl From<cairn_store::StoreError> for CaError {
    fn from(e: cairn_store::StoreError) -> Self {
        match e {
            cairn_store::StoreError::NotFound(what) => Self::not_found(what),
            other => Self::internal("talking to the database", other),
        }
    }
}
