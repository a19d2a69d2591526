//! Access logs in the NCSA Common and Combined Log Formats, one line per
//! request, written when the response body ends (so the byte count is what
//! was sent). A file is opened once per path and shared by the sites that
//! name it; it is reopened on reload, which is what log rotation needs.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use time::OffsetDateTime;

use super::config::LogFormat;
use super::forward::ProxyBody;

/// One open log file.
#[derive(Debug)]
pub(crate) struct AccessLog {
    path: PathBuf,
    format: LogFormat,
    file: Mutex<File>,
}

impl AccessLog {
    /// Opens (creates) `path` for appending.
    pub(crate) fn open(path: &Path, format: LogFormat) -> Result<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the log directory {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the access log {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            format,
            file: Mutex::new(file),
        })
    }

    fn write(&self, entry: &Entry, bytes: u64) {
        let line = entry.line(self.format, bytes);
        let Ok(mut file) = self.file.lock() else {
            return;
        };
        if let Err(e) = file.write_all(line.as_bytes()) {
            tracing::warn!("cannot write the access log {}: {e}", self.path.display());
        }
    }
}

/// What is known of a request when its response headers are ready.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) remote: IpAddr,
    pub(crate) time: OffsetDateTime,
    /// `METHOD TARGET VERSION`.
    pub(crate) request_line: String,
    pub(crate) status: u16,
    pub(crate) referer: Option<String>,
    pub(crate) user_agent: Option<String>,
}

impl Entry {
    /// `host ident authuser [date] "request" status bytes` (+ `"referer" "agent"`).
    fn line(&self, format: LogFormat, bytes: u64) -> String {
        let mut line = format!(
            "{} - - [{}] \"{}\" {} {}",
            self.remote,
            clf_time(self.time),
            escape(&self.request_line),
            self.status,
            if bytes == 0 {
                "-".to_owned()
            } else {
                bytes.to_string()
            }
        );
        if format == LogFormat::Combined {
            let quoted = |v: &Option<String>| v.as_deref().map_or("-".to_owned(), escape);
            line.push_str(&format!(
                " \"{}\" \"{}\"",
                quoted(&self.referer),
                quoted(&self.user_agent)
            ));
        }
        line.push('\n');
        line
    }
}

/// `10/Oct/2000:13:55:36 +0000`.
fn clf_time(t: OffsetDateTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        t.day(),
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Quotes, backslashes and control bytes escaped, so a request cannot
/// forge a log line.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// A response body that counts what it sends and logs the request when it
/// is dropped (finished, or abandoned by the client).
#[derive(Debug)]
pub(crate) struct Logged {
    inner: ProxyBody,
    sent: u64,
    log: Option<(Arc<AccessLog>, Entry)>,
}

impl Logged {
    pub(crate) fn new(inner: ProxyBody, log: Arc<AccessLog>, entry: Entry) -> Self {
        Self {
            inner,
            sent: 0,
            log: Some((log, entry)),
        }
    }
}

impl Body for Logged {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.sent += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some((log, entry)) = self.log.take() {
            log.write(&entry, self.sent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_format_lines_are_escaped() {
        let entry = Entry {
            remote: "192.0.2.7".parse().expect("ip"),
            time: time::macros::datetime!(2000-10-10 13:55:36 UTC),
            request_line: "GET /a\"b HTTP/1.1".to_owned(),
            status: 200,
            referer: None,
            user_agent: Some("curl/8\n".to_owned()),
        };
        assert_eq!(
            entry.line(LogFormat::Combined, 2326),
            "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] \"GET /a\\\"b HTTP/1.1\" 200 2326 \
             \"-\" \"curl/8\\x0a\"\n"
        );
        assert_eq!(
            entry.line(LogFormat::Common, 0),
            "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] \"GET /a\\\"b HTTP/1.1\" 200 -\n"
        );
    }
}
