//! The configuration as httpd reads it: the main file, every file it
//! includes, `Define`d and environment variables, and which conditional
//! sections are in effect.
//!
//! [`Tree::walk`] goes through the files in the order httpd reads them and
//! gives a [`View`]: the virtual hosts, `Listen`s and loaded modules of the
//! sections in effect. `<IfModule>` is evaluated against the modules loaded
//! so far (`LoadModule` lines, usually from `mods-enabled/*.load`, plus the
//! ones compiled in), `<IfDefine>` against `Define`, `<IfFile>` against the
//! file system; `<IfVersion>`, `<IfDirective>` and `<IfSection>` count as
//! true. `Include` and `IncludeOptional` take globs relative to
//! `ServerRoot`, sorted; a directory includes every file below it. As in
//! httpd 2.4, `Include` fails when a file is missing or a glob matches
//! nothing, `IncludeOptional` does not.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::syntax::{self, Directive, Node};
use crate::Error;

/// Modules compiled into Debian's `apache2` (`apache2 -l`).
const BUILT_IN: &[&str] = &[
    "core",
    "so",
    "watchdog",
    "http",
    "log_config",
    "logio",
    "version",
    "unixd",
];

/// How deep includes may nest before we call it a loop (httpd stops at 128).
const MAX_DEPTH: usize = 128;

/// One configuration file, parsed.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// The bytes read, or `None` for a file an edit creates.
    pub(crate) original: Option<Vec<u8>>,
    /// Its nodes; printing them gives the file. Shared, so reading the
    /// configuration again copies nothing; an edit copies on write.
    pub(crate) nodes: Arc<Vec<Node>>,
    /// `"\r\n"` when the file's first line ends so, else `"\n"`.
    pub(crate) eol: &'static str,
}

impl SourceFile {
    pub(crate) fn new(original: Option<Vec<u8>>, nodes: Vec<Node>) -> Self {
        let eol = match original.as_deref().and_then(|b| {
            b.iter()
                .position(|c| *c == b'\n')
                .map(|i| i > 0 && b[i - 1] == b'\r')
        }) {
            Some(true) => "\r\n",
            _ => "\n",
        };
        Self {
            original,
            nodes: Arc::new(nodes),
            eol,
        }
    }
}

/// Every file of one configuration and what it takes to read it again.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    /// The directory relative paths start from (`-d`, `ServerRoot`).
    pub(crate) root: PathBuf,
    /// The main file (`apache2.conf`).
    pub(crate) main: PathBuf,
    /// Variables from Debian's `envvars`; the process environment fills in
    /// the rest.
    pub(crate) env: BTreeMap<String, String>,
    /// Path as included → file.
    pub(crate) files: BTreeMap<PathBuf, SourceFile>,
    /// Include pattern → files on disk it matched when first seen.
    globs: HashMap<PathBuf, Vec<PathBuf>>,
}

/// A `<VirtualHost>` in effect.
#[derive(Debug, Clone)]
pub(crate) struct VirtualHost {
    /// The file it is written in.
    pub(crate) file: PathBuf,
    /// Indexes from the file's nodes down to the section.
    pub(crate) at: Vec<usize>,
    /// 1-based line of `<VirtualHost`.
    pub(crate) line: usize,
    /// Its addresses: host (`*`, `_default_`, an IP) and port (`None` = any).
    pub(crate) addrs: Vec<(String, Option<u16>)>,
    /// `ServerName`, lower case, without scheme or port.
    pub(crate) server_name: Option<String>,
    /// `ServerAlias` names, lower case.
    pub(crate) aliases: Vec<String>,
    /// `SSLEngine on` is in it.
    pub(crate) ssl: bool,
    /// The `Define`d variables where it starts.
    pub(crate) defines: BTreeMap<String, String>,
}

impl VirtualHost {
    /// `file:line`, for messages.
    pub(crate) fn place(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }

    /// Names `name` in ServerName or ServerAlias (`*` and `?` wildcards).
    pub(crate) fn names(&self, name: &str) -> bool {
        self.server_name
            .iter()
            .chain(&self.aliases)
            .any(|pattern| wildcard_match(pattern, name))
    }
}

/// A `Listen` in effect.
#[derive(Debug, Clone)]
pub(crate) struct Listen {
    pub(crate) file: PathBuf,
    pub(crate) at: Vec<usize>,
    pub(crate) port: Option<u16>,
}

/// What the configuration in effect contains.
#[derive(Debug, Clone, Default)]
pub(crate) struct View {
    /// Virtual hosts in the order httpd reads them.
    pub(crate) vhosts: Vec<VirtualHost>,
    /// `Listen` directives in effect.
    pub(crate) listens: Vec<Listen>,
    /// Loaded modules, by both names httpd accepts in `<IfModule>`:
    /// `ssl_module` and `mod_ssl.c`.
    pub(crate) modules: BTreeSet<String>,
    /// The main server's `ServerName`, which vhosts without one inherit.
    pub(crate) main_server_name: Option<String>,
}

impl View {
    /// True when module `name` (`ssl`, `headers`) is loaded.
    pub(crate) fn has_module(&self, name: &str) -> bool {
        self.modules.contains(&format!("{name}_module"))
    }
}

impl Tree {
    /// Reads `main` and everything it includes, and what is in effect.
    pub(crate) fn load(
        root: &Path,
        main: &Path,
        env: BTreeMap<String, String>,
    ) -> Result<(Self, View), Error> {
        let mut tree = Self {
            root: root.to_path_buf(),
            main: main.to_path_buf(),
            env,
            files: BTreeMap::new(),
            globs: HashMap::new(),
        };
        let view = tree.walk()?;
        Ok((tree, view))
    }

    /// Parses text as the file at `path` (for tests and fuzzing).
    pub(crate) fn parse_file(path: &Path, bytes: Vec<u8>) -> Result<SourceFile, Error> {
        let nodes = syntax::parse(&bytes).map_err(|e| Error::Syntax {
            path: path.to_path_buf(),
            line: e.line,
            message: e.message,
        })?;
        Ok(SourceFile::new(Some(bytes), nodes))
    }

    /// Reads the configuration in effect, loading files reached for the
    /// first time.
    pub(crate) fn walk(&mut self) -> Result<View, Error> {
        let mut walker = Walker {
            defines: BTreeMap::new(),
            root: self.root.clone(),
            view: View::default(),
        };
        for m in BUILT_IN {
            walker.view.modules.insert(format!("{m}_module"));
            walker.view.modules.insert(format!("mod_{m}.c"));
        }
        walker.view.modules.insert("core.c".to_owned());
        let main = self.main.clone();
        self.ensure_loaded(&main)?;
        walker.file(self, &main, 0)?;
        Ok(walker.view)
    }

    /// Adds a file an edit creates; [`Tree::walk`] finds it through any
    /// include pattern that matches its path.
    pub(crate) fn add_file(&mut self, path: PathBuf, text: &str) -> Result<(), Error> {
        let mut file = Self::parse_file(&path, text.as_bytes().to_vec())?;
        file.original = None;
        self.files.insert(path, file);
        Ok(())
    }

    fn ensure_loaded(&mut self, path: &Path) -> Result<(), Error> {
        if self.files.contains_key(path) {
            return Ok(());
        }
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file = Self::parse_file(path, bytes)?;
        self.files.insert(path.to_path_buf(), file);
        Ok(())
    }

    /// The files an `Include` of `pattern` reads, in httpd's order.
    fn resolve(&mut self, pattern: &Path, optional: bool) -> Result<Vec<PathBuf>, String> {
        let text = pattern.to_string_lossy();
        let wild = text.contains(['*', '?', '[']);
        let mut found: Vec<PathBuf> = match self.globs.get(pattern) {
            Some(hit) => hit.clone(),
            None => {
                let disk = if wild {
                    glob::glob(&text)
                        .map(|paths| paths.filter_map(Result::ok).collect())
                        .unwrap_or_default()
                } else if pattern.exists() {
                    vec![pattern.to_path_buf()]
                } else {
                    Vec::new()
                };
                let mut files = Vec::new();
                for path in disk {
                    files_below(&path, &mut files);
                }
                self.globs.insert(pattern.to_path_buf(), files.clone());
                files
            }
        };
        // Files an edit created match too.
        let matcher = glob::Pattern::new(&text).ok();
        for (path, file) in &self.files {
            if file.original.is_none()
                && (path == pattern || matcher.as_ref().is_some_and(|m| m.matches_path(path)))
            {
                found.push(path.clone());
            }
        }
        found.sort();
        found.dedup();
        if found.is_empty() && !optional {
            return Err(if wild {
                format!("Include: no file matches {text} (use IncludeOptional to allow none)")
            } else {
                format!("Include: {text} does not exist")
            });
        }
        Ok(found)
    }
}

/// `path` if a file, else every file below it, sorted.
fn files_below(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.sort();
        for entry in entries {
            files_below(&entry, out);
        }
    } else {
        out.push(path.to_path_buf());
    }
}

struct Walker {
    defines: BTreeMap<String, String>,
    root: PathBuf,
    view: View,
}

/// Where a vhost being read collects what it finds.
#[derive(Default)]
struct VhostFacts {
    server_name: Option<String>,
    aliases: Vec<String>,
    ssl: bool,
}

impl Walker {
    fn file(&mut self, tree: &mut Tree, path: &Path, depth: usize) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(Error::Syntax {
                path: path.to_path_buf(),
                line: 1,
                message: format!("includes nest deeper than {MAX_DEPTH}: an include loop?"),
            });
        }
        let nodes = match tree.files.get(path) {
            Some(file) => Arc::clone(&file.nodes),
            None => return Ok(()),
        };
        self.nodes(tree, path, &nodes, &mut Vec::new(), depth, None)
    }

    fn nodes(
        &mut self,
        tree: &mut Tree,
        path: &Path,
        nodes: &[Node],
        at: &mut Vec<usize>,
        depth: usize,
        mut vhost: Option<&mut VhostFacts>,
    ) -> Result<(), Error> {
        for (i, node) in nodes.iter().enumerate() {
            at.push(i);
            match node {
                Node::Trivia(_) => {}
                Node::Directive(d) => {
                    self.directive(tree, path, d, at, depth, vhost.as_deref_mut())?;
                }
                Node::Section(s) => {
                    let name = s.open.name.to_ascii_lowercase();
                    if !(name == "virtualhost" || name.starts_with("if")) {
                        at.pop();
                        continue;
                    }
                    let args = self.args(tree, &s.open);
                    match name.as_str() {
                        "virtualhost" if vhost.is_none() => {
                            let mut facts = VhostFacts::default();
                            self.nodes(tree, path, &s.children, at, depth, Some(&mut facts))?;
                            let server_name = facts
                                .server_name
                                .or_else(|| self.view.main_server_name.clone());
                            self.view.vhosts.push(VirtualHost {
                                file: path.to_path_buf(),
                                at: at.clone(),
                                line: s.open.line,
                                addrs: args.iter().map(|a| parse_addr(a)).collect(),
                                server_name,
                                aliases: facts.aliases,
                                ssl: facts.ssl,
                                defines: self.defines.clone(),
                            });
                        }
                        "ifmodule" | "ifdefine" | "iffile" | "ifversion" | "ifdirective"
                        | "ifsection"
                            if self.condition(&name, &args) =>
                        {
                            self.nodes(tree, path, &s.children, at, depth, vhost.as_deref_mut())?;
                        }
                        _ => {}
                    }
                }
            }
            at.pop();
        }
        Ok(())
    }

    fn directive(
        &mut self,
        tree: &mut Tree,
        path: &Path,
        d: &Directive,
        at: &[usize],
        depth: usize,
        mut vhost: Option<&mut VhostFacts>,
    ) -> Result<(), Error> {
        const READ: &[&str] = &[
            "servername",
            "serveralias",
            "sslengine",
            "serverroot",
            "define",
            "undefine",
            "loadmodule",
            "listen",
            "include",
            "includeoptional",
        ];
        // Only the directives read here are worth lower-casing and resolving.
        if !READ.iter().any(|r| d.name.eq_ignore_ascii_case(r)) {
            return Ok(());
        }
        let name = d.name.to_ascii_lowercase();
        let args = self.args(tree, d);
        let first = args.first();
        match name.as_str() {
            "servername" => match vhost {
                Some(v) => v.server_name = first.map(|a| host_of(a)),
                None => self.view.main_server_name = first.map(|a| host_of(a)),
            },
            "serveralias" => {
                if let Some(v) = vhost {
                    v.aliases.extend(args.iter().map(|a| a.to_lowercase()));
                }
            }
            "sslengine" => {
                if let Some(v) = vhost {
                    v.ssl = first.is_some_and(|a| a.eq_ignore_ascii_case("on"));
                }
            }
            "serverroot" if vhost.is_none() => {
                if let Some(root) = first {
                    self.root = PathBuf::from(root);
                }
            }
            "define" => {
                if let Some(var) = first {
                    let value = args.get(1).cloned().unwrap_or_default();
                    self.defines.insert(var.clone(), value);
                }
            }
            "undefine" => {
                if let Some(var) = first {
                    self.defines.remove(var);
                }
            }
            "loadmodule" if vhost.is_none() => {
                if let Some(module) = first {
                    self.view.modules.insert(module.clone());
                }
                if let Some(file) = args.get(1).and_then(|f| Path::new(f).file_stem()) {
                    self.view
                        .modules
                        .insert(format!("{}.c", file.to_string_lossy()));
                }
            }
            "listen" if vhost.is_none() => {
                let port = first
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse().ok());
                self.view.listens.push(Listen {
                    file: path.to_path_buf(),
                    at: at.to_vec(),
                    port,
                });
            }
            "include" | "includeoptional" => {
                let optional = name == "includeoptional";
                for arg in &args {
                    let pattern = self.root.join(arg);
                    let files =
                        tree.resolve(&pattern, optional)
                            .map_err(|message| Error::Syntax {
                                path: path.to_path_buf(),
                                line: d.line,
                                message,
                            })?;
                    if depth + 1 > MAX_DEPTH && !files.is_empty() {
                        return Err(Error::Syntax {
                            path: path.to_path_buf(),
                            line: d.line,
                            message: format!(
                                "includes nest deeper than {MAX_DEPTH}: an include loop?"
                            ),
                        });
                    }
                    for file in files {
                        tree.ensure_loaded(&file)?;
                        let nodes = tree
                            .files
                            .get(&file)
                            .map(|f| Arc::clone(&f.nodes))
                            .unwrap_or_default();
                        // What an included file says counts for the vhost
                        // it is included in.
                        self.nodes(
                            tree,
                            &file,
                            &nodes,
                            &mut Vec::new(),
                            depth + 1,
                            vhost.as_deref_mut(),
                        )?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A conditional section's verdict.
    fn condition(&self, name: &str, args: &[String]) -> bool {
        let Some(arg) = args.first() else {
            return true;
        };
        let (negate, arg) = match arg.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, arg.as_str()),
        };
        let holds = match name {
            "ifmodule" => self.view.modules.contains(arg),
            "ifdefine" => self.defines.contains_key(arg),
            "iffile" => self.root.join(arg).exists(),
            _ => return true,
        };
        holds != negate
    }

    /// Arguments with `${VAR}` resolved from `Define`, then `envvars`, then
    /// the environment; unknown variables stay as written (httpd warns).
    fn args(&self, tree: &Tree, d: &Directive) -> Vec<String> {
        d.args.iter().map(|a| self.resolve_vars(tree, a)).collect()
    }

    fn resolve_vars(&self, tree: &Tree, arg: &str) -> String {
        if !arg.contains("${") {
            return arg.to_owned();
        }
        let mut out = String::new();
        let mut rest = arg;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let var = &after[..end];
            let value = self
                .defines
                .get(var)
                .cloned()
                .or_else(|| tree.env.get(var).cloned())
                .or_else(|| std::env::var(var).ok());
            match value {
                Some(v) => out.push_str(&v),
                None => out.push_str(&rest[start..start + 3 + end]),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// `http://www.example.com:8080` → `www.example.com`.
fn host_of(server_name: &str) -> String {
    let s = server_name
        .split_once("://")
        .map_or(server_name, |(_, rest)| rest);
    let host = if s.starts_with('[') {
        s.split_inclusive(']').next().unwrap_or(s)
    } else {
        s.split(':').next().unwrap_or(s)
    };
    host.to_lowercase()
}

/// `*:80`, `192.0.2.1`, `[2001:db8::1]:443`, `_default_:443`.
pub(crate) fn parse_addr(addr: &str) -> (String, Option<u16>) {
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => (format!("[{h}]"), p.strip_prefix(':')),
            None => (addr.to_owned(), None),
        }
    } else {
        match addr.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_owned(), Some(p)),
            _ => (addr.to_owned(), None),
        }
    };
    let port = port.filter(|p| *p != "*").and_then(|p| p.parse().ok());
    (host.to_lowercase(), port)
}

/// httpd's `ap_strcasecmp_match`: `*` any run of characters (dots too),
/// `?` one character, no case.
pub(crate) fn wildcard_match(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern.eq_ignore_ascii_case(name);
    }
    let p = pattern.as_bytes();
    let n = name.as_bytes();
    let eq = |a: u8, b: u8| a.eq_ignore_ascii_case(&b);
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || eq(p[pi], n[ni])) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Reads Debian's `envvars` (a shell script) for the variables it exports:
/// `NAME=value` and `export NAME=value` lines, `$VAR`/`${VAR}` expanded
/// from earlier lines; `SUFFIX` is what the script computes for `root`
/// (`/etc/apache2-foo` → `-foo`). Lines inside `if`…`fi` are skipped.
pub(crate) fn read_envvars(text: &str, root: &Path) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let suffix = root
        .to_string_lossy()
        .strip_prefix("/etc/apache2-")
        .map(|s| format!("-{s}"))
        .unwrap_or_default();
    vars.insert("SUFFIX".to_owned(), suffix);
    let mut depth = 0usize;
    for line in text.lines() {
        let line = line.trim();
        let first = line.split_whitespace().next().unwrap_or("");
        match first {
            "if" | "case" => depth += 1,
            "fi" | "esac" => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > 0 || line.starts_with('#') {
            continue;
        }
        let assignment = line.strip_prefix("export ").unwrap_or(line).trim();
        let Some((name, value)) = assignment.split_once('=') else {
            continue;
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        let expanded = expand_shell(value, &vars);
        vars.insert(name.to_owned(), expanded);
    }
    vars.remove("SUFFIX");
    vars
}

fn expand_shell(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut name = String::new();
        if chars.peek() == Some(&'{') {
            chars.next();
            for c in chars.by_ref() {
                if c == '}' {
                    break;
                }
                name.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if !(c.is_ascii_alphanumeric() || c == '_') {
                    break;
                }
                name.push(c);
                chars.next();
            }
        }
        let value = vars
            .get(&name)
            .cloned()
            .or_else(|| std::env::var(&name).ok())
            .unwrap_or_default();
        out.push_str(&value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_httpd() {
        assert!(wildcard_match("*.example.com", "www.example.com"));
        assert!(wildcard_match("*.example.com", "a.b.example.com"));
        assert!(!wildcard_match("*.example.com", "example.com"));
        assert!(wildcard_match("www?.example.com", "WWW1.example.com"));
        assert!(!wildcard_match("www?.example.com", "www.example.com"));
        assert!(wildcard_match("example.com", "EXAMPLE.com"));
    }

    #[test]
    fn addresses_parse() {
        assert_eq!(parse_addr("*:80"), ("*".to_owned(), Some(80)));
        assert_eq!(parse_addr("*"), ("*".to_owned(), None));
        assert_eq!(
            parse_addr("[2001:DB8::1]:443"),
            ("[2001:db8::1]".to_owned(), Some(443))
        );
        assert_eq!(
            parse_addr("_default_:443"),
            ("_default_".to_owned(), Some(443))
        );
        assert_eq!(parse_addr("192.0.2.1"), ("192.0.2.1".to_owned(), None));
    }

    #[test]
    fn server_name_loses_scheme_and_port() {
        assert_eq!(host_of("https://WWW.example.com:8443"), "www.example.com");
        assert_eq!(host_of("example.com:80"), "example.com");
    }

    #[test]
    fn envvars_as_debian_writes_them() {
        let text = "unset HOME\nif [ x ] ; then\n\tSUFFIX=bad\nelse\n\tSUFFIX=\nfi\nexport APACHE_RUN_DIR=/var/run/apache2$SUFFIX\nexport APACHE_LOG_DIR=\"/var/log/apache2${SUFFIX}\"\n#export APACHE_ARGUMENTS=''\n";
        let vars = read_envvars(text, Path::new("/etc/apache2-two"));
        assert_eq!(vars["APACHE_RUN_DIR"], "/var/run/apache2-two");
        assert_eq!(vars["APACHE_LOG_DIR"], "/var/log/apache2-two");
        assert!(!vars.contains_key("APACHE_ARGUMENTS"));
    }
}
