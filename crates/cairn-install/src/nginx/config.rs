//! A whole nginx configuration (the main file and everything it includes),
//! the server blocks in it, and the edits of [`Config`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::choose::{Addr, DEFAULT_PORT, Listen, Rank, rank};
use super::parse::{Directive, Document, Span, parse};

mod edit;
use crate::Error;

/// Includes nested deeper than this are taken for a cycle (nginx itself
/// would recurse until it runs out of file descriptors).
const MAX_INCLUDE_DEPTH: usize = 32;

/// The directives the options file sets: a server block that sets one of
/// them itself does not get the include (nginx rejects a duplicate
/// `ssl_protocols` in one block, a certbot bug).
pub(crate) const OPTIONS_DIRECTIVES: &[&str] = &[
    "ssl_protocols",
    "ssl_ciphers",
    "ssl_prefer_server_ciphers",
    "ssl_session_cache",
    "ssl_session_timeout",
    "ssl_session_tickets",
];

/// An nginx configuration as read from disk, with includes followed, and
/// the edits made to it in memory.
#[derive(Debug)]
pub struct NginxConfig {
    /// Where relative `include` paths start: the directory of the main
    /// file (nginx's conf prefix).
    conf_dir: PathBuf,
    files: Vec<SourceFile>,
    by_path: BTreeMap<PathBuf, usize>,
    /// `include` argument → the files it named when loaded.
    includes: BTreeMap<String, Vec<usize>>,
}

#[derive(Debug)]
struct SourceFile {
    path: PathBuf,
    original: Vec<u8>,
    doc: Document,
}

/// A directive's place: the file and the index path through its blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Loc {
    file: usize,
    path: Vec<usize>,
}

/// A `server { }` block in the `http { }` context.
#[derive(Debug, Clone)]
struct Server {
    loc: Loc,
    /// Where it is, `file:line`.
    place: String,
    /// Its `listen`s (the implicit `*:80` when it has none), with the
    /// directive each came from (`None` for the implicit one).
    listens: Vec<(Option<Loc>, Listen)>,
    /// `server_name` entries with their position among the regexes.
    names: Vec<(String, usize)>,
    /// How many `listen` directives it has (HTTP/3 ones included).
    listen_directives: usize,
    /// Every directive at server level, includes followed (the include
    /// directives themselves too).
    directives: Vec<Loc>,
}

impl Server {
    fn listens_on(&self, port: u16) -> bool {
        self.listens
            .iter()
            .any(|(_, l)| l.port == port && !matches!(l.addr, Addr::Unix(_)))
    }

    fn has_explicit_listen(&self) -> bool {
        self.listen_directives > 0
    }
}

#[derive(Debug, Default)]
struct Walk {
    servers: Vec<Server>,
    http: Option<Loc>,
    regexes: usize,
}

impl NginxConfig {
    /// Reads `conf` (the main `nginx.conf`) and every file it includes.
    /// Relative include paths start at `conf`'s directory, as nginx's do.
    /// An include glob that matches nothing is fine (nginx allows it); a
    /// missing plain include is an error at the line that names it.
    pub fn load(conf: &Path) -> Result<Self, Error> {
        let conf_dir = conf.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut config = NginxConfig {
            conf_dir,
            files: Vec::new(),
            by_path: BTreeMap::new(),
            includes: BTreeMap::new(),
        };
        config.read_file(conf, 0)?;
        Ok(config)
    }

    /// Parses `source` as the main file at `path` alone, without reading
    /// anything from disk (includes are left unresolved).
    pub fn from_source(path: &Path, source: &[u8]) -> Result<Self, Error> {
        let doc = parse(source).map_err(|e| Error::Syntax {
            path: path.to_path_buf(),
            line: e.line,
            message: e.message,
        })?;
        let mut config = NginxConfig {
            conf_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            files: Vec::new(),
            by_path: BTreeMap::new(),
            includes: BTreeMap::new(),
        };
        config.by_path.insert(path.to_path_buf(), 0);
        config.files.push(SourceFile {
            path: path.to_path_buf(),
            original: source.to_vec(),
            doc,
        });
        Ok(config)
    }

    /// Every file read, main file first, in the order nginx reads them.
    pub fn files(&self) -> impl Iterator<Item = (&Path, &Document)> {
        self.files.iter().map(|f| (f.path.as_path(), &f.doc))
    }

    /// The server blocks, as `file:line`, in configuration order.
    pub fn server_blocks(&self) -> Vec<String> {
        self.walk().servers.into_iter().map(|s| s.place).collect()
    }

    /// `file:line` of the block nginx would use for `name` on `port`:
    /// the best `server_name` match (exact, longest leading wildcard,
    /// longest trailing wildcard, first regex) among the blocks listening
    /// on `port`, else that port's default server; `None` when no block
    /// listens on `port`.
    pub fn block_for(&self, name: &str, port: u16) -> Result<Option<String>, Error> {
        let walk = self.walk();
        let name = name.to_ascii_lowercase();
        let chosen = match choose(&walk.servers, &name, port)? {
            Some(i) => Some(i),
            None => default_server(&walk.servers, port),
        };
        Ok(chosen.map(|i| walk.servers[i].place.clone()))
    }

    fn read_file(&mut self, path: &Path, depth: usize) -> Result<usize, Error> {
        if let Some(&i) = self.by_path.get(path) {
            return Ok(i);
        }
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let doc = parse(bytes.clone()).map_err(|e| Error::Syntax {
            path: path.to_path_buf(),
            line: e.line,
            message: e.message,
        })?;
        let index = self.files.len();
        self.by_path.insert(path.to_path_buf(), index);
        self.files.push(SourceFile {
            path: path.to_path_buf(),
            original: bytes,
            doc,
        });
        let mut pending = Vec::new();
        collect_includes(self.files[index].doc.directives(), &mut pending);
        for (pattern, offset) in pending {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(self.syntax(
                    index,
                    offset,
                    "includes nested too deeply (an include cycle?)",
                ));
            }
            let targets = self
                .resolve(&pattern)
                .map_err(|message| self.syntax(index, offset, message))?;
            let mut read = Vec::with_capacity(targets.len());
            for target in targets {
                read.push(self.read_file(&target, depth + 1)?);
            }
            self.includes.insert(pattern, read);
        }
        Ok(index)
    }

    fn syntax(&self, file: usize, offset: usize, message: impl Into<String>) -> Error {
        let f = &self.files[file];
        Error::Syntax {
            path: f.path.clone(),
            line: f.doc.line_of(offset),
            message: message.into(),
        }
    }

    /// The files an `include` argument names, as nginx finds them.
    fn resolve(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        let full = self.conf_dir.join(pattern);
        if !pattern.contains(['*', '?', '[']) {
            return if full.is_file() {
                Ok(vec![full])
            } else {
                Err(format!(
                    "include {pattern}: no such file ({})",
                    full.display()
                ))
            };
        }
        let text = full
            .to_str()
            .ok_or_else(|| format!("include {pattern}: path is not UTF-8"))?;
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let paths =
            glob::glob_with(text, options).map_err(|e| format!("include {pattern}: {e}"))?;
        let mut out: Vec<PathBuf> = paths
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        out.sort();
        Ok(out)
    }

    fn directive(&self, loc: &Loc) -> &Directive {
        let mut d = &self.files[loc.file].doc.directives()[loc.path[0]];
        for &i in &loc.path[1..] {
            d = &d.children()[i];
        }
        d
    }

    fn place(&self, loc: &Loc) -> String {
        let f = &self.files[loc.file];
        let d = self.directive(loc);
        format!("{}:{}", f.path.display(), f.doc.line_of(d.name.span.start))
    }

    fn walk(&self) -> Walk {
        let mut walk = Walk::default();
        if !self.files.is_empty() {
            self.walk_level(0, &[], Context::Main, 0, &mut walk);
        }
        walk
    }

    fn walk_level(
        &self,
        file: usize,
        prefix: &[usize],
        context: Context,
        depth: usize,
        walk: &mut Walk,
    ) {
        let dirs = self.children_at(file, prefix);
        for (i, d) in dirs.iter().enumerate() {
            let mut path = prefix.to_vec();
            path.push(i);
            match (d.name.value.as_str(), context, d.block().is_some()) {
                ("include", _, false) if depth < MAX_INCLUDE_DEPTH => {
                    for &f in self.included(d) {
                        self.walk_level(f, &[], context, depth + 1, walk);
                    }
                }
                ("http", Context::Main, true) => {
                    walk.http.get_or_insert(Loc {
                        file,
                        path: path.clone(),
                    });
                    self.walk_level(file, &path, Context::Http, depth, walk);
                }
                ("server", Context::Http, true) => {
                    let server = self.read_server(Loc { file, path }, walk);
                    walk.servers.push(server);
                }
                _ => {}
            }
        }
    }

    fn children_at(&self, file: usize, path: &[usize]) -> &[Directive] {
        if path.is_empty() {
            self.files[file].doc.directives()
        } else {
            self.directive(&Loc {
                file,
                path: path.to_vec(),
            })
            .children()
        }
    }

    fn included(&self, d: &Directive) -> &[usize] {
        d.args
            .first()
            .and_then(|a| self.includes.get(&a.value))
            .map_or(&[], Vec::as_slice)
    }

    fn read_server(&self, loc: Loc, walk: &mut Walk) -> Server {
        let mut directives = Vec::new();
        self.server_level(loc.file, &loc.path, 0, &mut directives);
        let mut listens = Vec::new();
        let mut names = Vec::new();
        let mut listen_directives = 0;
        for l in &directives {
            let d = self.directive(l);
            match d.name.value.as_str() {
                "listen" => {
                    listen_directives += 1;
                    if let Some(listen) = Listen::parse(d.arg_values()) {
                        listens.push((Some(l.clone()), listen));
                    }
                }
                "server_name" => {
                    for a in d.arg_values() {
                        let order = if a.starts_with('~') {
                            walk.regexes += 1;
                            walk.regexes
                        } else {
                            0
                        };
                        names.push((a.to_owned(), order));
                    }
                }
                _ => {}
            }
        }
        if listen_directives == 0 {
            let implicit = Listen {
                addr: Addr::Any4,
                port: DEFAULT_PORT,
                ssl: false,
                default_server: false,
            };
            listens.push((None, implicit));
        }
        Server {
            place: self.place(&loc),
            loc,
            listens,
            names,
            listen_directives,
            directives,
        }
    }

    /// The directives directly in the block at `path` (or the top of an
    /// included file), includes followed.
    fn server_level(&self, file: usize, path: &[usize], depth: usize, out: &mut Vec<Loc>) {
        for (i, d) in self.children_at(file, path).iter().enumerate() {
            let mut p = path.to_vec();
            p.push(i);
            out.push(Loc { file, path: p });
            if d.name.value == "include" && d.block().is_none() && depth < MAX_INCLUDE_DEPTH {
                for &f in self.included(d) {
                    self.server_level(f, &[], depth + 1, out);
                }
            }
        }
    }

    /// Replaces spans of one file and parses the result again.
    ///
    /// The same change reached twice (a file included twice in one block)
    /// is made once; changes that overlap otherwise are refused, never
    /// guessed at.
    fn splice(&mut self, file: usize, mut edits: Vec<(Span, Vec<u8>)>) -> Result<(), Error> {
        edits.sort_by(|a, b| (b.0.start, b.0.end, &b.1).cmp(&(a.0.start, a.0.end, &a.1)));
        edits.dedup();
        let mut bytes = self.files[file].doc.source().to_vec();
        let mut after = bytes.len();
        for (span, _) in &edits {
            if span.start > span.end || span.end > after {
                let line = 1 + bytes[..span.start.min(bytes.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                return Err(Error::Unsupported(format!(
                    "{}:{line}: cairn's changes to this block overlap (is a file included twice \
                     in it?); nothing was written — make this change by hand",
                    self.files[file].path.display()
                )));
            }
            after = span.start;
        }
        for (span, text) in edits {
            bytes.splice(span, text);
        }
        let doc = parse(bytes).map_err(|e| Error::Syntax {
            path: self.files[file].path.clone(),
            line: e.line,
            message: format!(
                "cairn's own edit does not parse (a bug in cairn; nothing was written): {}",
                e.message
            ),
        })?;
        self.files[file].doc = doc;
        Ok(())
    }

    /// Splices each file's edits, file by file in load order: the same
    /// edits succeed or fail the same way on every run.
    fn apply(&mut self, edits: Vec<(usize, Span, Vec<u8>)>) -> Result<(), Error> {
        let mut by_file: BTreeMap<usize, Vec<(Span, Vec<u8>)>> = BTreeMap::new();
        for (file, span, text) in edits {
            by_file.entry(file).or_default().push((span, text));
        }
        for (file, edits) in by_file {
            self.splice(file, edits)?;
        }
        Ok(())
    }
}

/// `server { }` contexts that matter for choosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Main,
    Http,
}

fn collect_includes(dirs: &[Directive], out: &mut Vec<(String, usize)>) {
    for d in dirs {
        if let (true, None, Some(a)) = (d.name.value == "include", d.block(), d.args.first()) {
            out.push((a.value.clone(), d.name.span.start));
        }
        collect_includes(d.children(), out);
    }
}

/// The best block by name among those listening on `port`.
fn choose(servers: &[Server], name: &str, port: u16) -> Result<Option<usize>, Error> {
    let mut best: Option<Rank> = None;
    let mut tied: Vec<usize> = Vec::new();
    // Names first, regexes (compiled only then) when no name matched: the
    // order nginx tries them in.
    for regexes in [false, true] {
        for (i, s) in servers.iter().enumerate() {
            if !s.listens_on(port) {
                continue;
            }
            let ranks = s
                .names
                .iter()
                .filter(|(n, _)| n.starts_with('~') == regexes)
                .filter_map(|(n, order)| rank(n, name, *order));
            let Some(r) = ranks.min() else {
                continue;
            };
            match best {
                Some(b) if r > b => {}
                Some(b) if r == b => tied.push(i),
                _ => {
                    best = Some(r);
                    tied = vec![i];
                }
            }
        }
        if best.is_some() {
            break;
        }
    }
    if tied.len() <= 1 {
        return Ok(tied.first().copied());
    }
    // Same name, same rank: two blocks on the same address and port is a
    // conflict nginx resolves by ignoring one with a warning; we refuse.
    let addresses = |s: &Server| -> BTreeSet<Addr> {
        s.listens
            .iter()
            .filter(|(_, l)| l.port == port)
            .map(|(_, l)| l.addr.clone())
            .collect()
    };
    for (k, &a) in tied.iter().enumerate() {
        for &b in &tied[k + 1..] {
            if !addresses(&servers[a]).is_disjoint(&addresses(&servers[b])) {
                return Err(Error::Ambiguous {
                    server: "nginx",
                    name: name.to_owned(),
                    candidates: tied.iter().map(|&i| servers[i].place.clone()).collect(),
                });
            }
        }
    }
    // On different addresses: the one on a wildcard address serves most.
    let wildcard = tied
        .iter()
        .copied()
        .find(|&i| addresses(&servers[i]).iter().any(Addr::is_wildcard));
    Ok(wildcard.or(tied.first().copied()))
}

/// The block nginx uses on `port` when no name matches: the one marked
/// `default_server` (on a wildcard address first), else the first.
fn default_server(servers: &[Server], port: u16) -> Option<usize> {
    let marked = |wild: bool| {
        servers.iter().position(|s| {
            s.listens
                .iter()
                .any(|(_, l)| l.port == port && l.default_server && (!wild || l.addr.is_wildcard()))
        })
    };
    marked(true)
        .or_else(|| marked(false))
        .or_else(|| servers.iter().position(|s| s.listens_on(port)))
}
