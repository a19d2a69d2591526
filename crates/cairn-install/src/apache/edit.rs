//! [`ApacheConfig`]: the edits of [`Config`] on an Apache configuration,
//! in memory, byte-preserving, each added line marked, idempotent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::OPTIONS_SSL_APACHE;
use super::choose::{How, choose};
use super::syntax::{self, Node, Section};
use super::tree::{Tree, View, VirtualHost};
use crate::{CertPaths, Change, ChangeSet, Config, Enhancement, Error, MARKER, Settings};

/// A parsed Apache configuration being edited.
#[derive(Debug, Clone)]
pub struct ApacheConfig {
    tree: Tree,
    view: View,
    vhost_root: PathBuf,
    le_vhost_ext: String,
}

impl ApacheConfig {
    /// Reads `main` (in `root`) and everything it includes.
    pub fn load(
        root: &Path,
        main: &Path,
        env: BTreeMap<String, String>,
        vhost_root: &Path,
        le_vhost_ext: &str,
    ) -> Result<Self, Error> {
        let (tree, view) = Tree::load(root, main, env)?;
        Ok(Self {
            tree,
            view,
            vhost_root: vhost_root.to_path_buf(),
            le_vhost_ext: le_vhost_ext.to_owned(),
        })
    }

    /// Every file read, printed back from its nodes (parse → print).
    pub fn printed(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        self.tree
            .files
            .iter()
            .map(|(path, file)| (path.clone(), syntax::print(&file.nodes)))
            .collect()
    }

    /// Every file read, as read.
    pub fn originals(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        self.tree
            .files
            .iter()
            .filter_map(|(path, file)| Some((path.clone(), file.original.clone()?)))
            .collect()
    }

    /// `file:line` of the vhost that serves `name` on `port` (its default
    /// vhost when none names it), for tests and `--dry-run` messages.
    pub fn vhost_for(&self, name: &str, port: u16) -> Result<Option<String>, Error> {
        Ok(choose(&self.view, name, port, true)?.map(|(v, _)| v.place()))
    }

    fn refresh(&mut self) -> Result<(), Error> {
        self.view = self.tree.walk()?;
        Ok(())
    }

    /// Deploys for one name.
    fn deploy_one(&mut self, name: &str, cert: &CertPaths, s: &Settings) -> Result<(), Error> {
        if let Some((https, _)) = choose(&self.view, name, s.https_port, false)? {
            let https = https.clone();
            return self.set_certificate(&https, cert, s);
        }
        let Some((http, how)) = choose(&self.view, name, s.http_port, true)? else {
            return Err(Error::NoBlock {
                server: "Apache",
                name: name.to_owned(),
                hint: format!(
                    "no <VirtualHost> listens on port {}; add one with `ServerName {name}` and try again",
                    s.http_port
                ),
            });
        };
        let http = http.clone();
        if http.ssl {
            return Err(Error::NoBlock {
                server: "Apache",
                name: name.to_owned(),
                hint: format!(
                    "{} serves port {} with SSLEngine on; give {name} its own <VirtualHost *:{}>",
                    http.place(),
                    s.http_port,
                    s.https_port
                ),
            });
        }
        self.make_twin(name, &http, how, cert, s)
    }

    /// Puts the certificate lines into an existing HTTPS vhost.
    fn set_certificate(
        &mut self,
        vhost: &VirtualHost,
        cert: &CertPaths,
        s: &Settings,
    ) -> Result<(), Error> {
        let fullchain = cert.fullchain.to_string_lossy();
        let key = cert.key.to_string_lossy();
        let options = s.options_file.to_string_lossy();
        let wanted: [(&str, &str); 3] = [
            ("SSLEngine", "on"),
            ("SSLCertificateFile", &fullchain),
            ("SSLCertificateKeyFile", &key),
        ];
        let eol = self.eol(&vhost.file);
        let section = self.section_mut(vhost)?;
        for (name, value) in wanted {
            set_directive(section, name, value, eol);
        }
        let has_options = section.children.iter().any(|n| match n {
            Node::Directive(d) => {
                (d.is("Include") || d.is("IncludeOptional"))
                    && d.args.first().is_some_and(|a| *a == *options)
            }
            _ => false,
        });
        if !has_options {
            insert_lines(
                section,
                &[syntax::line("", "Include", &[&options], eol)],
                eol,
            );
        }
        self.ensure_options_file(s)?;
        self.enable_module("ssl")?;
        self.ensure_listen(s.https_port)?;
        self.refresh()
    }

    /// Writes the HTTPS twin of `http` for `name`.
    fn make_twin(
        &mut self,
        name: &str,
        http: &VirtualHost,
        how: How,
        cert: &CertPaths,
        s: &Settings,
    ) -> Result<(), Error> {
        let file_name = http
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = file_name.strip_suffix(".conf").unwrap_or(&file_name);
        let twin_name = format!("{stem}{}", self.le_vhost_ext);
        let linked = std::fs::symlink_metadata(&http.file).is_ok_and(|m| m.is_symlink());
        let dir = http.file.parent().unwrap_or(Path::new("/")).to_path_buf();
        let twin = if linked {
            self.vhost_root.join(&twin_name)
        } else {
            dir.join(&twin_name)
        };
        // A twin made earlier in this run, for another name of a default
        // vhost: the name joins it.
        if self.tree.files.contains_key(&twin)
            && let Some(existing) = self.view.vhosts.iter().find(|v| v.file == twin).cloned()
        {
            let eol = self.eol(&twin);
            let section = self.section_mut(&existing)?;
            insert_lines(
                section,
                &[syntax::line("", "ServerAlias", &[name], eol)],
                eol,
            );
            return self.refresh();
        }
        let eol = self.eol(&http.file);
        let section = self.section(http)?.clone();
        let text = twin_text(&section, http, how, name, cert, s, eol);
        // A leftover twin not in use is replaced, and the change shows it.
        let previous = self
            .tree
            .files
            .get(&twin)
            .and_then(|f| f.original.clone())
            .or_else(|| std::fs::read(&twin).ok());
        self.tree.add_file(twin.clone(), &text)?;
        if let Some(file) = self.tree.files.get_mut(&twin) {
            file.original = previous;
        }
        if linked {
            let enabler = dir.join(&twin_name);
            let line = syntax::line("", "Include", &[&twin.to_string_lossy()], eol);
            self.tree
                .add_file(enabler, &format!("{MARKER}{eol}{line}"))?;
        }
        self.ensure_options_file(s)?;
        self.enable_module("ssl")?;
        self.refresh()?;
        if !self.view.vhosts.iter().any(|v| v.file == twin) {
            // Nothing includes the twin: include it after the HTTP vhost.
            let line = syntax::line("", "Include", &[&twin.to_string_lossy()], eol);
            self.insert_after(http, &line)?;
            self.refresh()?;
        }
        self.ensure_listen(s.https_port)?;
        self.refresh()
    }

    /// Adds the options file as a new file when it is on disk nowhere.
    fn ensure_options_file(&mut self, s: &Settings) -> Result<(), Error> {
        if s.options_file.exists() || self.tree.files.contains_key(&s.options_file) {
            return Ok(());
        }
        self.tree
            .add_file(s.options_file.clone(), OPTIONS_SSL_APACHE)
    }

    /// Enables module `name` as `a2enmod` does, with its `# Depends:`.
    fn enable_module(&mut self, name: &str) -> Result<(), Error> {
        self.enable_module_depth(name, 0)?;
        self.refresh()?;
        if self.view.has_module(name) {
            Ok(())
        } else {
            Err(Error::Unsupported(format!(
                "mod_{name} is not loaded and enabling it in mods-enabled/ has no effect \
                 (nothing includes mods-enabled/*.load): load it with \
                 `LoadModule {name}_module …` and run cairn again"
            )))
        }
    }

    fn enable_module_depth(&mut self, name: &str, depth: usize) -> Result<(), Error> {
        if self.view.has_module(name) || depth > 8 {
            return Ok(());
        }
        let root = self.tree.root.clone();
        let available = root.join("mods-available");
        let enabled = root.join("mods-enabled");
        let load = available.join(format!("{name}.load"));
        let Ok(text) = std::fs::read_to_string(&load) else {
            return Err(Error::Unsupported(format!(
                "mod_{name} is not loaded and there is no {} to enable it: load it with \
                 `LoadModule {name}_module …` and run cairn again",
                load.display()
            )));
        };
        if !enabled.is_dir() {
            return Err(Error::Unsupported(format!(
                "mod_{name} is not loaded and there is no {} to enable it in: load it with \
                 `LoadModule {name}_module …` and run cairn again",
                enabled.display()
            )));
        }
        for line in text.lines() {
            if let Some(deps) = line.trim().strip_prefix("# Depends:") {
                for dep in deps.split_whitespace() {
                    self.enable_module_depth(dep, depth + 1)?;
                }
            }
        }
        for ext in ["load", "conf"] {
            let source = available.join(format!("{name}.{ext}"));
            let target = enabled.join(format!("{name}.{ext}"));
            if target.exists() || self.tree.files.contains_key(&target) {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&source) {
                self.tree.add_file(target, &text)?;
            }
        }
        Ok(())
    }

    /// Adds `Listen PORT` after the last `Listen` when none covers `port`.
    fn ensure_listen(&mut self, port: u16) -> Result<(), Error> {
        self.refresh()?;
        if self.view.listens.iter().any(|l| l.port == Some(port)) {
            return Ok(());
        }
        let main = self.tree.main.clone();
        let (file, at) = match self.view.listens.last() {
            Some(last) => (last.file.clone(), last.at.clone()),
            None => (main, Vec::new()),
        };
        let eol = self.eol(&file);
        let port_text = port.to_string();
        let args: Vec<&str> = if port == 443 {
            vec![&port_text]
        } else {
            vec![&port_text, "https"]
        };
        let Some(parsed) = self.tree.files.get_mut(&file) else {
            return Ok(());
        };
        let (nodes, index, indent) = match at.split_last() {
            Some((last, parents)) => {
                let nodes = nodes_at(Arc::make_mut(&mut parsed.nodes), parents);
                let indent = match nodes.get(*last) {
                    Some(Node::Directive(d)) => d.indent(),
                    _ => String::new(),
                };
                (nodes, last + 1, indent)
            }
            None => {
                let nodes = Arc::make_mut(&mut parsed.nodes);
                let len = nodes.len();
                (nodes, len, String::new())
            }
        };
        let text = marked(&indent, &syntax::line(&indent, "Listen", &args, eol), eol);
        insert_at(nodes, index, &text, eol);
        self.refresh()
    }

    fn eol(&self, file: &Path) -> &'static str {
        self.tree.files.get(file).map_or("\n", |f| f.eol)
    }

    fn section(&self, vhost: &VirtualHost) -> Result<&Section, Error> {
        let file = self.tree.files.get(&vhost.file);
        let mut nodes = file.map(|f| f.nodes.as_slice()).unwrap_or_default();
        let mut found = None;
        for i in &vhost.at {
            match nodes.get(*i) {
                Some(Node::Section(s)) => {
                    nodes = &s.children;
                    found = Some(s);
                }
                _ => return Err(lost(vhost)),
            }
        }
        found.ok_or_else(|| lost(vhost))
    }

    fn section_mut(&mut self, vhost: &VirtualHost) -> Result<&mut Section, Error> {
        let file = self
            .tree
            .files
            .get_mut(&vhost.file)
            .ok_or_else(|| lost(vhost))?;
        let (last, parents) = vhost.at.split_last().ok_or_else(|| lost(vhost))?;
        match nodes_at(Arc::make_mut(&mut file.nodes), parents).get_mut(*last) {
            Some(Node::Section(s)) => Ok(s),
            _ => Err(lost(vhost)),
        }
    }

    /// Inserts `line` (marked) right after the vhost's closing line.
    fn insert_after(&mut self, vhost: &VirtualHost, line: &str) -> Result<(), Error> {
        let eol = self.eol(&vhost.file);
        let file = self
            .tree
            .files
            .get_mut(&vhost.file)
            .ok_or_else(|| lost(vhost))?;
        let (last, parents) = vhost.at.split_last().ok_or_else(|| lost(vhost))?;
        let nodes = nodes_at(Arc::make_mut(&mut file.nodes), parents);
        insert_at(nodes, last + 1, &marked("", line, eol), eol);
        Ok(())
    }

    /// The HTTP vhosts serving `names` on the HTTP port, without repeats.
    fn http_vhosts(&self, names: &[String], s: &Settings) -> Result<Vec<VirtualHost>, Error> {
        let mut out: Vec<VirtualHost> = Vec::new();
        for name in names {
            let Some((vhost, _)) = choose(&self.view, name, s.http_port, true)? else {
                return Err(Error::NoBlock {
                    server: "Apache",
                    name: name.clone(),
                    hint: format!(
                        "no <VirtualHost> listens on port {}; add one with `ServerName {name}`",
                        s.http_port
                    ),
                });
            };
            if !out.iter().any(|v| v.file == vhost.file && v.at == vhost.at) {
                out.push(vhost.clone());
            }
        }
        Ok(out)
    }

    fn https_vhost(&self, name: &str, s: &Settings) -> Result<VirtualHost, Error> {
        match choose(&self.view, name, s.https_port, false)? {
            Some((vhost, _)) => Ok(vhost.clone()),
            None => Err(Error::NoBlock {
                server: "Apache",
                name: name.to_owned(),
                hint: format!(
                    "no HTTPS <VirtualHost> on port {} serves it yet: install its certificate first",
                    s.https_port
                ),
            }),
        }
    }

    fn header(
        &mut self,
        names: &[String],
        header: &str,
        value: &str,
        s: &Settings,
    ) -> Result<(), Error> {
        self.enable_module("headers")?;
        for name in names {
            let vhost = self.https_vhost(name, s)?;
            let eol = self.eol(&vhost.file);
            let section = self.section_mut(&vhost)?;
            let present = section.children.iter().any(|n| match n {
                Node::Directive(d) => {
                    d.is("Header") && d.args.iter().any(|a| a.eq_ignore_ascii_case(header))
                }
                _ => false,
            });
            if !present {
                let line = syntax::line("", "Header", &["always", "set", header, value], eol);
                insert_lines(section, &[line], eol);
            }
            self.refresh()?;
        }
        Ok(())
    }

    fn redirect(&mut self, names: &[String], s: &Settings) -> Result<(), Error> {
        for name in names {
            self.https_vhost(name, s)?;
        }
        self.enable_module("rewrite")?;
        for name in names {
            let Some((vhost, _)) = choose(&self.view, name, s.http_port, true)? else {
                continue;
            };
            let vhost = vhost.clone();
            if vhost.ssl {
                return Err(Error::Unsupported(format!(
                    "{} serves both HTTP and HTTPS for {name}: a redirect there would loop",
                    vhost.place()
                )));
            }
            let eol = self.eol(&vhost.file);
            let condition = format!("={}", name.to_lowercase());
            let section = self.section_mut(&vhost)?;
            let has = |section: &Section, f: &dyn Fn(&syntax::Directive) -> bool| {
                section.children.iter().any(|n| match n {
                    Node::Directive(d) => f(d),
                    _ => false,
                })
            };
            if has(section, &|d| {
                d.is("RewriteCond")
                    && d.args.first().is_some_and(|a| a == "%{SERVER_NAME}")
                    && d.args
                        .get(1)
                        .is_some_and(|a| a.eq_ignore_ascii_case(&condition))
            }) {
                continue;
            }
            let mut lines = Vec::new();
            if !has(section, &|d| {
                d.is("RewriteEngine")
                    && d.args.first().is_some_and(|a| a.eq_ignore_ascii_case("on"))
            }) {
                lines.push(syntax::line("", "RewriteEngine", &["on"], eol));
            }
            let port = if s.https_port == 443 {
                String::new()
            } else {
                format!(":{}", s.https_port)
            };
            let target = format!("https://%{{SERVER_NAME}}{port}%{{REQUEST_URI}}");
            lines.push(syntax::line(
                "",
                "RewriteCond",
                &["%{SERVER_NAME}", &condition],
                eol,
            ));
            lines.push(syntax::line(
                "",
                "RewriteRule",
                &["^", &target, "[END,NE,R=permanent]"],
                eol,
            ));
            insert_lines(section, &lines, eol);
            self.refresh()?;
        }
        Ok(())
    }
}

impl Config for ApacheConfig {
    fn server_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .view
            .vhosts
            .iter()
            .flat_map(|v| v.server_name.iter().chain(&v.aliases).cloned())
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn deploy(
        &mut self,
        names: &[String],
        cert: &CertPaths,
        settings: &Settings,
    ) -> Result<(), Error> {
        for name in names {
            self.deploy_one(name, cert, settings)?;
        }
        Ok(())
    }

    fn enhance(
        &mut self,
        names: &[String],
        what: Enhancement,
        settings: &Settings,
    ) -> Result<(), Error> {
        match what {
            Enhancement::StapleOcsp => Err(Error::Unsupported(
                "OCSP stapling is not offered: cairn's CAs publish CRLs and run no OCSP \
                 responder; nothing was changed"
                    .to_owned(),
            )),
            Enhancement::Hsts => self.header(
                names,
                "Strict-Transport-Security",
                "max-age=31536000",
                settings,
            ),
            Enhancement::Uir => self.header(
                names,
                "Content-Security-Policy",
                "upgrade-insecure-requests",
                settings,
            ),
            Enhancement::Redirect => self.redirect(names, settings),
        }
    }

    fn serve_http01(
        &mut self,
        names: &[String],
        challenge_dir: &Path,
        settings: &Settings,
    ) -> Result<(), Error> {
        let vhosts = self.http_vhosts(names, settings)?;
        self.enable_module("alias")?;
        let dir = challenge_dir
            .to_string_lossy()
            .trim_end_matches('/')
            .to_owned();
        let target = format!("{dir}/");
        for vhost in vhosts {
            let eol = self.eol(&vhost.file);
            let section = self.section_mut(&vhost)?;
            let present = section.children.iter().any(|n| match n {
                Node::Directive(d) => {
                    d.is("Alias")
                        && d.args
                            .first()
                            .is_some_and(|a| a == "/.well-known/acme-challenge/")
                        && d.args.get(1).is_some_and(|a| *a == target)
                }
                _ => false,
            });
            if present {
                continue;
            }
            let indent = child_indent(section);
            let alias = syntax::line("", "Alias", &["/.well-known/acme-challenge/", &target], eol);
            let open = syntax::line("", "<Directory", &[&dir], "");
            let require = syntax::line(
                &format!("{indent}    "),
                "Require",
                &["all", "granted"],
                eol,
            );
            let directory = format!("{open}>{eol}{require}{indent}</Directory>{eol}");
            insert_lines(section, &[alias, directory], eol);
        }
        self.refresh()
    }

    fn changes(&self) -> ChangeSet {
        let mut set = ChangeSet::default();
        for (path, file) in &self.tree.files {
            let after = syntax::print(&file.nodes);
            if file.original.as_deref() == Some(after.as_slice()) {
                continue;
            }
            set.files.insert(
                path.clone(),
                Change {
                    before: file.original.clone(),
                    after,
                },
            );
        }
        set
    }
}

/// The text of a twin file.
fn twin_text(
    http: &Section,
    vhost: &VirtualHost,
    how: How,
    name: &str,
    cert: &CertPaths,
    s: &Settings,
    eol: &str,
) -> String {
    let mut addrs: Vec<String> = Vec::new();
    for (host, port) in &vhost.addrs {
        if port.is_some_and(|p| p != s.http_port) {
            continue;
        }
        let addr = format!("{host}:{}", s.https_port);
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    let mut body = Vec::new();
    let mut skip_next = false;
    for node in &http.children {
        let managed = is_marker(node);
        if managed || std::mem::take(&mut skip_next) {
            // Lines cairn added to the HTTP vhost (redirect, http-01) stay there.
            skip_next = managed;
            continue;
        }
        if how == How::Default
            && let Node::Directive(d) = node
            && (d.is("ServerName") || d.is("ServerAlias"))
        {
            continue;
        }
        body.extend_from_slice(&syntax::print(std::slice::from_ref(node)));
    }
    let mut body = String::from_utf8_lossy(&body).into_owned();
    // The twin may be read before the `Define`s the HTTP vhost relies on
    // (`x-le-ssl.conf` sorts before `x.conf`): their values go in as text.
    for (var, value) in &vhost.defines {
        body = body.replace(&format!("${{{var}}}"), value);
    }
    if !body.is_empty() && !body.ends_with('\n') {
        body.push_str(eol);
    }
    let indent = child_indent(http);
    let mut lines = String::new();
    if how == How::Default {
        lines.push_str(&marked(
            &indent,
            &syntax::line(&indent, "ServerName", &[name], eol),
            eol,
        ));
    }
    let fullchain = cert.fullchain.to_string_lossy();
    let key = cert.key.to_string_lossy();
    let options = s.options_file.to_string_lossy();
    for (directive, value) in [
        ("SSLEngine", "on"),
        ("SSLCertificateFile", &*fullchain),
        ("SSLCertificateKeyFile", &*key),
        ("Include", &*options),
    ] {
        lines.push_str(&marked(
            &indent,
            &syntax::line(&indent, directive, &[value], eol),
            eol,
        ));
    }
    let addr_refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    format!(
        "{MARKER}{eol}# The HTTPS twin of the virtual host at {}, made by cairn.{eol}\
         <IfModule mod_ssl.c>{eol}{}>{eol}{body}{lines}</VirtualHost>{eol}</IfModule>{eol}",
        vhost.place(),
        syntax::line("", "<VirtualHost", &addr_refs, ""),
    )
}

/// `line` preceded by a marker line with the same indentation.
fn marked(indent: &str, line: &str, eol: &str) -> String {
    format!("{indent}{MARKER}{eol}{line}")
}

fn is_marker(node: &Node) -> bool {
    match node {
        Node::Trivia(t) => String::from_utf8_lossy(&t.raw).trim() == MARKER,
        _ => false,
    }
}

/// The indentation of a section's first directive, or its own plus four
/// spaces.
fn child_indent(section: &Section) -> String {
    section
        .children
        .iter()
        .find_map(|n| match n {
            Node::Directive(d) => Some(d.indent()),
            Node::Section(s) => Some(s.open.indent()),
            Node::Trivia(_) => None,
        })
        .unwrap_or_else(|| format!("{}    ", section.open.indent()))
}

/// Appends `lines` (each marked, indented like the section's children)
/// before the section's closing line. Each entry is one directive or one
/// whole section; lines in it after the first are indented as given.
fn insert_lines(section: &mut Section, lines: &[String], eol: &str) {
    let indent = child_indent(section);
    let mut text = String::new();
    for line in lines {
        text.push_str(&marked(&indent, &format!("{indent}{line}"), eol));
    }
    let len = section.children.len();
    insert_at(&mut section.children, len, &text, eol);
}

/// Parses `text` and inserts its nodes at `index`; the node before gets a
/// line ending if it had none (the last line of a file).
fn insert_at(nodes: &mut Vec<Node>, index: usize, text: &str, eol: &str) {
    if index > 0
        && let Some(prev) = nodes.get_mut(index - 1)
    {
        let raw = match prev {
            Node::Trivia(t) => &mut t.raw,
            Node::Directive(d) => &mut d.raw,
            Node::Section(s) => &mut s.close.raw,
        };
        if !raw.ends_with(b"\n") {
            raw.extend_from_slice(eol.as_bytes());
        }
    }
    let new = syntax::parse(text.as_bytes()).unwrap_or_default();
    let index = index.min(nodes.len());
    nodes.splice(index..index, new);
}

/// Sets directive `name` to `value` in a section: the last such line is
/// replaced when it says something else (and marked), or a line added.
fn set_directive(section: &mut Section, name: &str, value: &str, eol: &str) {
    let found = section.children.iter().rposition(|n| match n {
        Node::Directive(d) => d.is(name),
        _ => false,
    });
    let Some(i) = found else {
        insert_lines(section, &[syntax::line("", name, &[value], eol)], eol);
        return;
    };
    let Some(Node::Directive(d)) = section.children.get(i) else {
        return;
    };
    if d.args.len() == 1
        && (d.args[0] == value || (name == "SSLEngine" && d.args[0].eq_ignore_ascii_case(value)))
    {
        return;
    }
    let indent = d.indent();
    let line_eol = if d.raw.ends_with(b"\r\n") {
        "\r\n"
    } else if d.raw.ends_with(b"\n") {
        "\n"
    } else {
        ""
    };
    let preceded = i > 0 && section.children.get(i - 1).is_some_and(is_marker);
    let text = if preceded {
        syntax::line(&indent, name, &[value], line_eol)
    } else {
        marked(
            &indent,
            &syntax::line(&indent, name, &[value], line_eol),
            eol,
        )
    };
    let new = syntax::parse(text.as_bytes()).unwrap_or_default();
    section.children.splice(i..=i, new);
}

/// The node list `at` leads to (through sections).
fn nodes_at<'n>(nodes: &'n mut Vec<Node>, at: &[usize]) -> &'n mut Vec<Node> {
    match at.split_first() {
        None => nodes,
        Some((first, rest)) => {
            // An index that is not a section can only come from a stale
            // view; stop at the deepest list reached.
            if matches!(nodes.get(*first), Some(Node::Section(_))) {
                match nodes.get_mut(*first) {
                    Some(Node::Section(s)) => nodes_at(&mut s.children, rest),
                    _ => unreachable!("checked just above"),
                }
            } else {
                nodes
            }
        }
    }
}

fn lost(vhost: &VirtualHost) -> Error {
    Error::Syntax {
        path: vhost.file.clone(),
        line: vhost.line,
        message: "the virtual host moved while cairn was editing (internal error)".to_owned(),
    }
}
