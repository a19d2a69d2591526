//! The edits of [`Config`] on an [`NginxConfig`]: deploy, enhance,
//! http-01, each as byte splices that leave every other byte alone.

use std::collections::BTreeSet;
use std::path::Path;

use super::super::choose::{Addr, DEFAULT_PORT, Listen, is_certifiable};
use super::super::parse::{Directive, Span, is_space, parse, quote};
use super::{Loc, NginxConfig, OPTIONS_DIRECTIVES, Server, Walk, choose, default_server};
use crate::{CertPaths, Change, ChangeSet, Config, Enhancement, Error, MARKER, Settings};

impl NginxConfig {
    /// The edit that appends `lines` (each marked) at the end of the block
    /// at `loc`, indented like the block's children.
    fn append_to_block(&self, loc: &Loc, lines: &[String]) -> (usize, Span, Vec<u8>) {
        let src = self.files[loc.file].doc.source();
        let d = self.directive(loc);
        let own = line_indent(src, d.name.span.start).unwrap_or_default();
        let inner = d
            .children()
            .first()
            .and_then(|c| line_indent(src, c.name.span.start))
            .unwrap_or_else(|| format!("{own}{}", if own.contains('\t') { "\t" } else { "    " }));
        let close = d.block().map_or(d.span().end, |b| b.close.start);
        let mut text = String::new();
        for line in lines {
            text.push_str(&marked(&inner, line));
            text.push('\n');
        }
        match line_indent(src, close) {
            // `}` alone on its line: the new lines go before that line.
            Some(indent) => {
                let at = close - indent.len();
                (loc.file, at..at, text.into_bytes())
            }
            // `... }` on one line: break it.
            None => (
                loc.file,
                close..close,
                format!("\n{text}{own}").into_bytes(),
            ),
        }
    }

    /// The edit that replaces the directive at `loc` by `text`, marked:
    /// what followed it on its line (a comment, say) stays byte for byte,
    /// and the line ends with the marker.
    fn replace_directive(&self, loc: &Loc, text: &[u8]) -> (usize, Span, Vec<u8>) {
        let src = self.files[loc.file].doc.source();
        let span = self.directive(loc).span();
        let kept = trim_space_end(rest_of_line(src, span.end));
        if kept.ends_with(MARKER.as_bytes()) {
            return (loc.file, span, text.to_vec());
        }
        let end = span.end + kept.len();
        let text = [text, kept, b" ", MARKER.as_bytes()].concat();
        (loc.file, span.start..end, text)
    }

    /// The HTTPS block for `name`: by name among those on `https_port`,
    /// else by name among those on `http_port`.
    fn deploy_name(
        &mut self,
        name: &str,
        cert: &CertPaths,
        settings: &Settings,
    ) -> Result<(), Error> {
        let walk = self.walk();
        let chosen = match choose(&walk.servers, name, settings.https_port)? {
            Some(i) => Some(i),
            None => choose(&walk.servers, name, settings.http_port)?,
        };
        if let Some(i) = chosen {
            let edits = self.tls_edits(&walk.servers[i], cert, settings)?;
            return self.apply(edits);
        }
        let any_v6 = |s: &Server| s.listens.iter().any(|(_, l)| l.addr.is_v6());
        if let Some(i) = default_server(&walk.servers, settings.http_port) {
            let lines = self.new_server_lines(name, cert, settings, any_v6(&walk.servers[i]))?;
            let edit = self.new_block_after(&walk.servers[i], &lines, true);
            return self.apply(vec![edit]);
        }
        let lines = self.new_server_lines(name, cert, settings, walk.servers.iter().any(any_v6))?;
        let Some(http) = walk.http else {
            return Err(Error::NoBlock {
                server: "nginx",
                name: name.to_owned(),
                hint: "the configuration has no http { } block to add a server block to".to_owned(),
            });
        };
        let mut block = vec!["server {".to_owned()];
        block.extend(lines.iter().map(|l| format!("    {l}")));
        block.push("}".to_owned());
        let edit = self.append_to_block(&http, &block);
        self.apply(vec![edit])
    }

    /// What makes `server` serve `cert` over TLS on `settings.https_port`.
    fn tls_edits(
        &self,
        server: &Server,
        cert: &CertPaths,
        settings: &Settings,
    ) -> Result<Vec<(usize, Span, Vec<u8>)>, Error> {
        let mut edits = Vec::new();
        let mut lines = Vec::new();
        // Listen: per address the block listens on, one TLS listen.
        let mut addrs: BTreeSet<Addr> = BTreeSet::new();
        for (_, l) in &server.listens {
            if !matches!(l.addr, Addr::Unix(_)) {
                addrs.insert(l.addr.clone());
            }
        }
        if !server.has_explicit_listen() {
            // A first `listen` turns off the implicit `*:80`: keep it.
            lines.push(format!("listen {DEFAULT_PORT};"));
        }
        for addr in &addrs {
            let existing: Vec<&(Option<Loc>, Listen)> = server
                .listens
                .iter()
                .filter(|(_, l)| l.port == settings.https_port && &l.addr == addr)
                .collect();
            if existing.is_empty() {
                if let Some(arg) = addr.with_port(settings.https_port) {
                    lines.push(format!("listen {arg} ssl;"));
                }
                continue;
            }
            for (loc, l) in existing {
                if let (false, Some(loc)) = (l.ssl, loc) {
                    // The arguments as written, whatever their bytes.
                    let d = self.directive(loc);
                    let mut text = b"listen".to_vec();
                    for a in &d.args {
                        text.push(b' ');
                        text.extend_from_slice(self.files[loc.file].doc.text(&a.span));
                    }
                    text.extend_from_slice(b" ssl;");
                    edits.push(self.replace_directive(loc, &text));
                }
            }
        }
        for (directive, path) in [
            ("ssl_certificate", &cert.fullchain),
            ("ssl_certificate_key", &cert.key),
        ] {
            let value = path_token(path)?;
            let existing = server
                .directives
                .iter()
                .find(|l| self.directive(l).name.value == directive);
            match existing {
                Some(loc) => {
                    let d = self.directive(loc);
                    if d.args.len() != 1 || d.args[0].value != path.to_string_lossy() {
                        let text = format!("{directive} {value};");
                        edits.push(self.replace_directive(loc, text.as_bytes()));
                    }
                }
                None => lines.push(format!("{directive} {value};")),
            }
        }
        if let Some(line) = self.options_include(server, settings)? {
            lines.push(line);
        }
        if !lines.is_empty() {
            edits.push(self.append_to_block(&server.loc, &lines));
        }
        Ok(edits)
    }

    /// `include OPTIONS;` unless the block has it or sets what it sets.
    fn options_include(
        &self,
        server: &Server,
        settings: &Settings,
    ) -> Result<Option<String>, Error> {
        let target = &settings.options_file;
        for loc in &server.directives {
            let d = self.directive(loc);
            if d.name.value == "include"
                && d.args
                    .first()
                    .is_some_and(|a| self.conf_dir.join(&a.value) == *target)
            {
                return Ok(None);
            }
            if OPTIONS_DIRECTIVES.contains(&d.name.value.as_str()) {
                tracing::warn!(
                    block = %server.place,
                    directive = %d.name.value,
                    "the block sets its own TLS settings; not including {}",
                    target.display()
                );
                return Ok(None);
            }
        }
        Ok(Some(format!("include {};", path_token(target)?)))
    }

    /// The lines of a new HTTPS server block for `name`.
    fn new_server_lines(
        &self,
        name: &str,
        cert: &CertPaths,
        settings: &Settings,
        v6: bool,
    ) -> Result<Vec<String>, Error> {
        let port = settings.https_port;
        let mut lines = vec![format!("listen {port} ssl;")];
        if v6 {
            lines.push(format!("listen [::]:{port} ssl;"));
        }
        lines.push(format!("server_name {};", name_token(name)?));
        lines.push(format!("ssl_certificate {};", path_token(&cert.fullchain)?));
        lines.push(format!("ssl_certificate_key {};", path_token(&cert.key)?));
        lines.push(format!("include {};", path_token(&settings.options_file)?));
        Ok(lines)
    }

    /// A new server block after `server`, made of `lines` and, when
    /// `copy_body`, the rest of `server`'s body except its `listen`,
    /// `server_name` and certificate lines: the new block serves what the
    /// old one serves for the name.
    ///
    /// It goes at the end of the line of `server`'s `}` when only white
    /// space or a comment follows it there; otherwise right after the `}`,
    /// and what followed moves to the next line: the next directive may
    /// start on that line and go on below, and a block inserted into it
    /// would become its argument and block.
    fn new_block_after(
        &self,
        server: &Server,
        lines: &[String],
        copy_body: bool,
    ) -> (usize, Span, Vec<u8>) {
        let file = server.loc.file;
        let src = self.files[file].doc.source();
        let d = self.directive(&server.loc);
        let indent = line_indent(src, d.name.span.start).unwrap_or_default();
        let inner = d
            .children()
            .first()
            .and_then(|c| line_indent(src, c.name.span.start))
            .unwrap_or_else(|| format!("{indent}    "));
        let end = d.span().end;
        let rest = rest_of_line(src, end);
        let spaces = rest.iter().take_while(|&&b| is_space(b)).count();
        let after_line = matches!(rest.get(spaces), None | Some(b'#'));
        let mut text = format!("\n{}", marked(&indent, "server {"));
        for line in lines {
            text.push('\n');
            text.push_str(&marked(&inner, line));
        }
        let mut text = text.into_bytes();
        let body = if copy_body {
            self.copied_body(server)
        } else {
            Vec::new()
        };
        if !body.is_empty() {
            if !body.starts_with(b"\n") {
                text.push(b'\n');
            }
            text.extend_from_slice(&body);
        }
        text.push(b'\n');
        text.extend_from_slice(marked(&indent, "}").as_bytes());
        if after_line {
            let eol = end + rest.len();
            return (file, eol..eol, text);
        }
        // The marker comment ends the line: what followed the `}` starts
        // the next one.
        text.push(b'\n');
        text.extend_from_slice(indent.as_bytes());
        (file, end..end + spaces, text)
    }

    /// `server`'s body without `listen`, `server_name` and certificate
    /// directives, every line marked; its bytes as written, UTF-8 or not.
    fn copied_body(&self, server: &Server) -> Vec<u8> {
        let file = &self.files[server.loc.file];
        let src = file.doc.source();
        let d = self.directive(&server.loc);
        let Some(block) = d.block() else {
            return Vec::new();
        };
        let body = block.open.end..block.close.start;
        let mut removed: Vec<Span> = Vec::new();
        for c in &block.children {
            if matches!(
                c.name.value.as_str(),
                "listen" | "server_name" | "ssl_certificate" | "ssl_certificate_key"
            ) {
                let span = c.span();
                let start = span.start - line_indent(src, span.start).map_or(0, |i| i.len());
                let rest = rest_of_line(src, span.end);
                let alone = start != span.start || line_indent(src, span.start).is_some();
                let span = if alone && trim_space_end(rest).is_empty() && start > body.start {
                    // The whole line, its newline before it included.
                    start - 1..span.end + rest.len()
                } else {
                    span
                };
                removed.push(span);
            }
        }
        let mut out = Vec::new();
        let mut at = body.start;
        for span in removed {
            if span.start >= at {
                out.extend_from_slice(&src[at..span.start]);
                at = span.end;
            }
        }
        out.extend_from_slice(&src[at..body.end]);
        out.truncate(trim_space_end(&out).len());
        out.push(b'\n');
        let mut text = mark_lines(&out);
        text.pop();
        text
    }
}

/// The indentation before `offset` when only whitespace precedes it on its
/// line.
fn line_indent(src: &[u8], offset: usize) -> Option<String> {
    let start = src[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let before = &src[start..offset];
    before
        .iter()
        .all(|&b| b == b' ' || b == b'\t')
        .then(|| String::from_utf8_lossy(before).into_owned())
}

/// The bytes from `offset` to the end of its line (newline excluded), as
/// bytes: offsets are computed from their length, and a lossy UTF-8 copy
/// is longer where the file has a byte that is not UTF-8.
fn rest_of_line(src: &[u8], offset: usize) -> &[u8] {
    let end = src[offset..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(src.len(), |p| offset + p);
    &src[offset..end]
}

/// `bytes` without the white space that ends it (nginx's: a form feed,
/// say, is a token).
fn trim_space_end(bytes: &[u8]) -> &[u8] {
    let len = bytes
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(0, |p| p + 1);
    &bytes[..len]
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn marked(indent: &str, line: &str) -> String {
    format!("{indent}{line} {MARKER}")
}

/// Appends the marker to every line of `text` that has content and does
/// not end inside a token (a quoted string spanning lines), and leaves out
/// comment-only and repeated blank lines. White space is nginx's (a form
/// feed is a token), and a line is a comment only when its `#` starts a
/// comment, not when it is in a token begun on a line before.
fn mark_lines(text: &[u8]) -> Vec<u8> {
    let mut tokens: Vec<Span> = Vec::new();
    if let Ok(doc) = parse(text.to_vec()) {
        fn collect(dirs: &[Directive], out: &mut Vec<Span>) {
            for d in dirs {
                out.push(d.name.span.clone());
                out.extend(d.args.iter().map(|a| a.span.clone()));
                if let (true, Some(b)) = (d.name.value.ends_with("_by_lua_block"), d.block()) {
                    out.push(b.close_trivia.clone());
                }
                collect(d.children(), out);
            }
        }
        collect(doc.directives(), &mut tokens);
    }
    let in_token = |p: usize| tokens.iter().any(|t| t.start <= p && p < t.end);
    let mut out = Vec::with_capacity(text.len() + 64);
    let mut line_start = 0;
    let mut out_line_start = 0;
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' {
            let line = &text[line_start..i];
            let inside = tokens.iter().any(|t| t.start < i && i < t.end);
            let first = line_start + line.iter().take_while(|&&c| is_space(c)).count();
            let blank = first == i;
            let comment = !blank && text[first] == b'#' && !in_token(first);
            line_start = i + 1;
            if !inside && (comment || (blank && (out.ends_with(b"\n\n") || out.is_empty()))) {
                // A comment-only or repeated blank line is not copied.
                out.truncate(out_line_start);
                continue;
            }
            if !inside && !blank && !line.ends_with(MARKER.as_bytes()) {
                out.push(b' ');
                out.extend_from_slice(MARKER.as_bytes());
            }
            out.push(b);
            out_line_start = out.len();
            continue;
        }
        out.push(b);
    }
    out
}

fn path_token(path: &Path) -> Result<String, Error> {
    let text = path.to_str().ok_or_else(|| {
        Error::Unsupported(format!(
            "{}: nginx configuration paths must be UTF-8",
            path.display()
        ))
    })?;
    quote(text).ok_or_else(|| {
        Error::Unsupported(format!(
            "{text}: nginx cannot take this path literally (a `$` starts a variable, control characters cannot be written); use a path without them"
        ))
    })
}

fn name_token(name: &str) -> Result<String, Error> {
    if !is_certifiable(name) {
        return Err(Error::Unsupported(format!(
            "{name:?} is not a name a server block can be made for"
        )));
    }
    quote(name)
        .ok_or_else(|| Error::Unsupported(format!("{name:?} cannot be written as a server_name")))
}

impl Config for NginxConfig {
    fn server_names(&self) -> Vec<String> {
        let mut out = BTreeSet::new();
        for s in self.walk().servers {
            for (n, _) in &s.names {
                if !is_certifiable(n) {
                    continue;
                }
                let n = n.to_ascii_lowercase();
                if let Some(base) = n.strip_prefix('.') {
                    out.insert(base.to_owned());
                    out.insert(format!("*{n}"));
                } else {
                    out.insert(n);
                }
            }
        }
        out.into_iter().collect()
    }

    fn deploy(
        &mut self,
        names: &[String],
        cert: &CertPaths,
        settings: &Settings,
    ) -> Result<(), Error> {
        for name in names {
            self.deploy_name(&name.to_ascii_lowercase(), cert, settings)?;
        }
        Ok(())
    }

    fn enhance(
        &mut self,
        names: &[String],
        what: Enhancement,
        settings: &Settings,
    ) -> Result<(), Error> {
        for name in names {
            let name = name.to_ascii_lowercase();
            match what {
                Enhancement::StapleOcsp => {
                    return Err(Error::Unsupported(
                        "OCSP stapling is not available: cairn's CAs publish CRLs, not OCSP, so there is no OCSP response to staple".to_owned(),
                    ));
                }
                Enhancement::Hsts => self.add_header(
                    &name,
                    "Strict-Transport-Security",
                    "max-age=31536000",
                    settings,
                )?,
                Enhancement::Uir => {
                    self.add_header(
                        &name,
                        "Content-Security-Policy",
                        "upgrade-insecure-requests",
                        settings,
                    )?;
                }
                Enhancement::Redirect => self.redirect(&name, settings)?,
            }
        }
        Ok(())
    }

    fn serve_http01(
        &mut self,
        names: &[String],
        challenge_dir: &Path,
        settings: &Settings,
    ) -> Result<(), Error> {
        let mut dir = challenge_dir.to_string_lossy().into_owned();
        if !dir.ends_with('/') {
            dir.push('/');
        }
        let alias = path_token(Path::new(&dir))?;
        let line =
            format!("location ^~ {CHALLENGE_PREFIX} {{ default_type text/plain; alias {alias}; }}");
        for name in names {
            let name = name.to_ascii_lowercase();
            let walk = self.walk();
            let chosen = match choose(&walk.servers, &name, settings.http_port)? {
                Some(i) => i,
                None => default_server(&walk.servers, settings.http_port).ok_or_else(|| {
                    Error::NoBlock {
                        server: "nginx",
                        name: name.clone(),
                        hint: format!(
                            "no server block listens on port {}; use --standalone or --webroot",
                            settings.http_port
                        ),
                    }
                })?,
            };
            let server = &walk.servers[chosen];
            let existing = server.directives.iter().find(|l| {
                let d = self.directive(l);
                d.name.value == "location"
                    && d.args.last().is_some_and(|a| a.value == CHALLENGE_PREFIX)
            });
            let edit = match existing {
                None => self.append_to_block(&server.loc, std::slice::from_ref(&line)),
                Some(loc) => {
                    let src = self.files[loc.file].doc.source();
                    let span = self.directive(loc).span();
                    if !contains(rest_of_line(src, span.end), MARKER.as_bytes()) {
                        return Err(Error::Unsupported(format!(
                            "{} already has a location for {CHALLENGE_PREFIX}; answer http-01 with --webroot and that location's root, or remove it",
                            self.place(loc)
                        )));
                    }
                    if src[span.clone()] == *line.as_bytes() {
                        continue;
                    }
                    self.replace_directive(loc, line.as_bytes())
                }
            };
            self.apply(vec![edit])?;
        }
        Ok(())
    }

    fn changes(&self) -> ChangeSet {
        let mut set = ChangeSet::default();
        for f in &self.files {
            if f.doc.source() != f.original.as_slice() {
                set.files.insert(
                    f.path.clone(),
                    Change {
                        before: Some(f.original.clone()),
                        after: f.doc.source().to_vec(),
                    },
                );
            }
        }
        set
    }
}

/// Where http-01 challenges are fetched (RFC 8555 §8.3).
const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

impl NginxConfig {
    fn https_block(&self, walk: &Walk, name: &str, settings: &Settings) -> Result<usize, Error> {
        choose(&walk.servers, name, settings.https_port)?.ok_or_else(|| Error::NoBlock {
            server: "nginx",
            name: name.to_owned(),
            hint: format!(
                "no block serves it on port {}; deploy a certificate for it first",
                settings.https_port
            ),
        })
    }

    fn add_header(
        &mut self,
        name: &str,
        header: &str,
        value: &str,
        settings: &Settings,
    ) -> Result<(), Error> {
        let walk = self.walk();
        let server = &walk.servers[self.https_block(&walk, name, settings)?];
        let present = server.directives.iter().any(|l| {
            let d = self.directive(l);
            d.name.value == "add_header"
                && d.args
                    .first()
                    .is_some_and(|a| a.value.eq_ignore_ascii_case(header))
        });
        if present {
            return Ok(());
        }
        let edit = self.append_to_block(
            &server.loc,
            &[format!("add_header {header} \"{value}\" always;")],
        );
        self.apply(vec![edit])
    }

    fn redirect(&mut self, name: &str, settings: &Settings) -> Result<(), Error> {
        let walk = self.walk();
        let target = if settings.https_port == 443 {
            "https://$host$request_uri".to_owned()
        } else {
            format!("https://$host:{}$request_uri", settings.https_port)
        };
        if let Some(i) = choose(&walk.servers, name, settings.http_port)? {
            let server = &walk.servers[i];
            let has_redirect = server.directives.iter().any(|l| {
                let d = self.directive(l);
                let redirects = |d: &Directive| {
                    let args: Vec<&str> = d.arg_values().collect();
                    d.name.value == "return"
                        && matches!(args.first(), Some(&("301" | "302" | "307" | "308")))
                        && args.get(1).is_some_and(|u| u.starts_with("https://"))
                };
                let scheme_test = d.args.first().is_some_and(|a| a.value == "($scheme");
                redirects(d)
                    || (d.name.value == "if" && (scheme_test || d.children().iter().any(redirects)))
            });
            if has_redirect {
                return Ok(());
            }
            let line = format!("if ($scheme != \"https\") {{ return 301 {target}; }}");
            let edit = self.append_to_block(&server.loc, &[line]);
            return self.apply(vec![edit]);
        }
        // Only an HTTPS block has the name: a plain HTTP block next to it
        // that only redirects.
        let i = self.https_block(&walk, name, settings)?;
        let server = &walk.servers[i];
        let v6 = server.listens.iter().any(|(_, l)| l.addr.is_v6());
        let port = settings.http_port;
        let mut lines = vec![format!("listen {port};")];
        if v6 {
            lines.push(format!("listen [::]:{port};"));
        }
        lines.push(format!("server_name {};", name_token(name)?));
        lines.push(format!("return 301 {target};"));
        let edit = self.new_block_after(server, &lines, false);
        self.apply(vec![edit])
    }
}
