//! The nginx configuration language, lossless: a tree whose spans cover
//! every byte of the input, so printing it gives the input back.
//!
//! The tokenizer follows nginx's own (`ngx_conf_read_token`): a `#` starts
//! a comment only where a token could start; `"` and `'` quote, with `\"`,
//! `\'`, `\\`, `\t`, `\r`, `\n` as escapes; a backslash escapes the next
//! byte in any token; `${` does not open a block; `;` ends a directive, `{`
//! opens a block, and `}` closes one only where a token could start (inside
//! a word it is part of the word). After a quoted token only a space, `;`,
//! `{` or `)` may follow. The bodies of `map`, `geo`, `types`,
//! `split_clients` and `if (...)` use the same tokens, so they need no
//! special case. The body of a `*_by_lua_block` (Lua code, which the Lua
//! module reads with its own lexer) is kept as one opaque span, its
//! strings, long brackets and comments skipped when looking for its `}`.

use std::ops::Range;

/// A byte range of the source.
pub type Span = Range<usize>;

/// A parsed file: its bytes and the directives in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    source: Vec<u8>,
    directives: Vec<Directive>,
    /// Whitespace and comments after the last directive.
    trailing: Span,
}

/// One directive: `name args... ;` or `name args... { children }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The directive's name.
    pub name: Token,
    /// Its arguments.
    pub args: Vec<Token>,
    /// Whitespace and comments before the `;` or `{`.
    pub end_trivia: Span,
    /// The `;`, or the `{ ... }` block.
    pub end: End,
}

/// How a directive ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// `;` at this span.
    Semicolon(Span),
    /// A block.
    Block(Block),
}

/// `{ children }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The `{`.
    pub open: Span,
    /// The directives inside.
    pub children: Vec<Directive>,
    /// Whitespace and comments before the `}`.
    pub close_trivia: Span,
    /// The `}`.
    pub close: Span,
}

/// A word or quoted string, with what precedes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Whitespace and comments before the token.
    pub trivia: Span,
    /// The token as written (quotes included).
    pub span: Span,
    /// The token's value as nginx sees it: quotes removed, escapes
    /// resolved (invalid UTF-8 replaced).
    pub value: String,
    /// Whether it was written in quotes.
    pub quoted: bool,
}

/// Where and why a parse failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// 1-based line of the problem.
    pub line: usize,
    /// What is wrong there, in nginx's words where it has them.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses one configuration file.
pub fn parse(source: impl Into<Vec<u8>>) -> Result<Document, ParseError> {
    let source = source.into();
    let mut parser = Parser {
        src: &source,
        pos: 0,
        depth: 0,
    };
    let (directives, trailing) = parser.directives(false)?;
    Ok(Document {
        source,
        directives,
        trailing,
    })
}

impl Document {
    /// The bytes parsed.
    pub fn source(&self) -> &[u8] {
        &self.source
    }

    /// The top-level directives.
    pub fn directives(&self) -> &[Directive] {
        &self.directives
    }

    /// The bytes of `span`.
    pub fn text(&self, span: &Span) -> &[u8] {
        &self.source[span.clone()]
    }

    /// 1-based line of byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        line_of(&self.source, offset)
    }

    /// Prints the tree back by walking every node: gives exactly the bytes
    /// parsed (the parse is lossless).
    pub fn print(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.source.len());
        for d in &self.directives {
            self.print_directive(d, &mut out);
        }
        out.extend_from_slice(self.text(&self.trailing));
        out
    }

    fn print_directive(&self, d: &Directive, out: &mut Vec<u8>) {
        for t in std::iter::once(&d.name).chain(&d.args) {
            out.extend_from_slice(self.text(&t.trivia));
            out.extend_from_slice(self.text(&t.span));
        }
        out.extend_from_slice(self.text(&d.end_trivia));
        match &d.end {
            End::Semicolon(s) => out.extend_from_slice(self.text(s)),
            End::Block(b) => {
                out.extend_from_slice(self.text(&b.open));
                for c in &b.children {
                    self.print_directive(c, out);
                }
                out.extend_from_slice(self.text(&b.close_trivia));
                out.extend_from_slice(self.text(&b.close));
            }
        }
    }
}

impl Directive {
    /// The span from the first byte of the name to the `;` or `}`
    /// included (leading trivia excluded).
    pub fn span(&self) -> Span {
        let end = match &self.end {
            End::Semicolon(s) => s.end,
            End::Block(b) => b.close.end,
        };
        self.name.span.start..end
    }

    /// The children, when the directive has a block.
    pub fn block(&self) -> Option<&Block> {
        match &self.end {
            End::Block(b) => Some(b),
            End::Semicolon(_) => None,
        }
    }

    /// The children (empty for a simple directive).
    pub fn children(&self) -> &[Directive] {
        self.block().map_or(&[], |b| &b.children)
    }

    /// The argument values.
    pub fn arg_values(&self) -> impl Iterator<Item = &str> {
        self.args.iter().map(|a| a.value.as_str())
    }
}

/// 1-based line of byte `offset` in `source`.
pub fn line_of(source: &[u8], offset: usize) -> usize {
    let end = offset.min(source.len());
    1 + source[..end].iter().filter(|&&b| b == b'\n').count()
}

/// nginx's limit on block nesting is memory; ours keeps the recursion of a
/// hostile input bounded.
const MAX_DEPTH: usize = 200;

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    depth: usize,
}

/// nginx's white space between tokens.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl Parser<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            offset,
            line: line_of(self.src, offset),
            message: message.into(),
        }
    }

    /// Skips whitespace and `#` comments; returns their span.
    fn trivia(&mut self) -> Span {
        let start = self.pos;
        while let Some(&b) = self.src.get(self.pos) {
            if is_space(b) {
                self.pos += 1;
            } else if b == b'#' {
                while let Some(&c) = self.src.get(self.pos) {
                    if c == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
        start..self.pos
    }

    /// Directives until `}` (in a block) or the end of input (top level).
    /// Returns them and the trivia before the `}` or the end.
    fn directives(&mut self, in_block: bool) -> Result<(Vec<Directive>, Span), ParseError> {
        let mut out = Vec::new();
        loop {
            let trivia = self.trivia();
            match self.src.get(self.pos) {
                None => {
                    if in_block {
                        return Err(self.error(self.pos, "unexpected end of file, expecting \"}\""));
                    }
                    return Ok((out, trivia));
                }
                Some(b'}') => {
                    if !in_block {
                        return Err(self.error(self.pos, "unexpected \"}\""));
                    }
                    return Ok((out, trivia));
                }
                Some(&b @ (b';' | b'{')) => {
                    return Err(self.error(self.pos, format!("unexpected \"{}\"", b as char)));
                }
                Some(_) => out.push(self.directive(trivia)?),
            }
        }
    }

    /// One directive whose name starts at `self.pos`.
    fn directive(&mut self, name_trivia: Span) -> Result<Directive, ParseError> {
        let name = self.token(name_trivia)?;
        let mut args = Vec::new();
        loop {
            let trivia = self.trivia();
            match self.src.get(self.pos) {
                None => {
                    return Err(
                        self.error(self.pos, "unexpected end of file, expecting \";\" or \"}\"")
                    );
                }
                Some(b';') => {
                    let end = End::Semicolon(self.pos..self.pos + 1);
                    self.pos += 1;
                    return Ok(Directive {
                        name,
                        args,
                        end_trivia: trivia,
                        end,
                    });
                }
                Some(b'{') => {
                    let open = self.pos..self.pos + 1;
                    self.pos += 1;
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(self.error(open.start, "blocks nested too deeply"));
                    }
                    let (children, close_trivia) = if name.value.ends_with("_by_lua_block") {
                        // Lua code, read by the Lua module's own lexer: kept
                        // as one opaque span.
                        (Vec::new(), self.lua_body(open.start)?)
                    } else {
                        self.directives(true)?
                    };
                    self.depth -= 1;
                    // `directives(true)` returned at a `}`.
                    let close = self.pos..self.pos + 1;
                    self.pos += 1;
                    return Ok(Directive {
                        name,
                        args,
                        end_trivia: trivia,
                        end: End::Block(Block {
                            open,
                            children,
                            close_trivia,
                            close,
                        }),
                    });
                }
                Some(b'}') => return Err(self.error(self.pos, "unexpected \"}\"")),
                Some(_) => args.push(self.token(trivia)?),
            }
        }
    }

    /// A word or quoted string starting at `self.pos` (not at a space,
    /// `#`, `;`, `{` or `}`).
    fn token(&mut self, trivia: Span) -> Result<Token, ParseError> {
        let start = self.pos;
        let first = self.src[start];
        if first == b'"' || first == b'\'' {
            self.pos += 1;
            loop {
                match self.src.get(self.pos) {
                    None => {
                        return Err(self.error(start, "unexpected end of file in a quoted string"));
                    }
                    Some(b'\\') => self.pos += 2,
                    Some(&b) if b == first => {
                        self.pos += 1;
                        break;
                    }
                    Some(_) => self.pos += 1,
                }
            }
            if self.pos > self.src.len() {
                return Err(self.error(start, "unexpected end of file in a quoted string"));
            }
            // nginx wants a separator after a closing quote.
            match self.src.get(self.pos) {
                None => {}
                Some(&b) if is_space(b) || matches!(b, b';' | b'{' | b')') => {}
                Some(&b) => {
                    return Err(self.error(
                        self.pos,
                        format!("unexpected \"{}\" after a quoted string", b as char),
                    ));
                }
            }
            let span = start..self.pos;
            let value = unescape(&self.src[start + 1..self.pos - 1]);
            return Ok(Token {
                trivia,
                span,
                value,
                quoted: true,
            });
        }
        let mut prev_dollar = false;
        while let Some(&b) = self.src.get(self.pos) {
            match b {
                b'\\' => {
                    self.pos += 2;
                    prev_dollar = false;
                    continue;
                }
                b'{' if prev_dollar => {}
                b';' | b'{' => break,
                _ if is_space(b) => break,
                _ => {}
            }
            prev_dollar = b == b'$';
            self.pos += 1;
        }
        if self.pos > self.src.len() {
            // A trailing backslash at the end of the input.
            self.pos = self.src.len();
        }
        let span = start..self.pos;
        Ok(Token {
            trivia,
            value: unescape(&self.src[span.clone()]),
            span,
            quoted: false,
        })
    }
}

impl Parser<'_> {
    /// The body of a `*_by_lua_block { ... }` up to its closing `}` (left
    /// at `self.pos`): Lua strings, long strings `[[...]]`/`[==[...]==]`
    /// and comments (`--`, `--[[...]]`) may hold braces.
    fn lua_body(&mut self, open: usize) -> Result<Span, ParseError> {
        let start = self.pos;
        let mut depth = 0usize;
        let eof = |p: &Self| p.error(open, "unexpected end of file in a Lua block");
        loop {
            let Some(&b) = self.src.get(self.pos) else {
                return Err(eof(self));
            };
            match b {
                b'{' => depth += 1,
                b'}' if depth == 0 => return Ok(start..self.pos),
                b'}' => depth -= 1,
                b'"' | b'\'' => {
                    self.pos += 1;
                    loop {
                        match self.src.get(self.pos) {
                            None => return Err(eof(self)),
                            Some(b'\\') => self.pos += 2,
                            Some(&c) if c == b => break,
                            Some(_) => self.pos += 1,
                        }
                    }
                }
                b'[' if self.long_bracket().is_some() => {
                    self.skip_long_bracket().ok_or_else(|| eof(self))?;
                    continue;
                }
                b'-' if self.src.get(self.pos + 1) == Some(&b'-') => {
                    self.pos += 2;
                    if self.src.get(self.pos) == Some(&b'[') && self.long_bracket().is_some() {
                        self.skip_long_bracket().ok_or_else(|| eof(self))?;
                    } else {
                        while self.src.get(self.pos).is_some_and(|&c| c != b'\n') {
                            self.pos += 1;
                        }
                    }
                    continue;
                }
                _ => {}
            }
            self.pos += 1;
        }
    }

    /// The level of a Lua long bracket `[==[` at `self.pos`.
    fn long_bracket(&self) -> Option<usize> {
        let rest = self.src.get(self.pos + 1..)?;
        let level = rest.iter().take_while(|&&c| c == b'=').count();
        (rest.get(level) == Some(&b'[')).then_some(level)
    }

    /// Skips a long bracket string or comment; `None` when unterminated.
    fn skip_long_bracket(&mut self) -> Option<()> {
        let level = self.long_bracket()?;
        self.pos += level + 2;
        let mut close = vec![b']'];
        close.extend(std::iter::repeat_n(b'=', level));
        close.push(b']');
        let at = self.src[self.pos..]
            .windows(close.len())
            .position(|w| w == close)?;
        self.pos += at + close.len();
        Some(())
    }
}

/// nginx's unescaping of a token: `\"`, `\'`, `\\` lose the backslash,
/// `\t`, `\r`, `\n` become the control byte; other backslashes stay.
fn unescape(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && i + 1 < raw.len() {
            match raw[i + 1] {
                b'"' | b'\'' | b'\\' => {
                    out.push(raw[i + 1]);
                    i += 2;
                    continue;
                }
                b't' => {
                    out.push(b'\t');
                    i += 2;
                    continue;
                }
                b'r' => {
                    out.push(b'\r');
                    i += 2;
                    continue;
                }
                b'n' => {
                    out.push(b'\n');
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Writes `value` as one nginx token: bare when it is a plain word,
/// otherwise in double quotes with `"` and `\` escaped. `None` for a value
/// nginx cannot take literally (a `$` would start a variable; control
/// bytes cannot be written).
pub fn quote(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("\"\"".to_owned());
    }
    if value.contains('$') || value.chars().any(|c| c.is_control()) {
        return None;
    }
    let plain = value
        .bytes()
        .all(|b| !is_space(b) && !matches!(b, b';' | b'{' | b'}' | b'"' | b'\'' | b'#' | b'\\'));
    if plain {
        return Some(value.to_owned());
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(src: &str) -> Document {
        let doc = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert_eq!(String::from_utf8_lossy(&doc.print()), src);
        doc
    }

    #[test]
    fn directives_blocks_comments() {
        let doc = roundtrip(
            "# top { \" '\nuser www-data;\nhttp {\n  server { # a { comment\n    listen [::]:80 default_server;\n  }\n}\n",
        );
        assert_eq!(doc.directives().len(), 2);
        let http = &doc.directives()[1];
        assert_eq!(http.name.value, "http");
        let server = &http.children()[0];
        let listen = &server.children()[0];
        assert_eq!(
            listen.arg_values().collect::<Vec<_>>(),
            ["[::]:80", "default_server"]
        );
        assert_eq!(doc.line_of(listen.name.span.start), 5);
    }

    #[test]
    fn quotes_escapes_variables() {
        let doc = roundtrip(
            "map $http_host $x { default \"{}\"; 'a\\'b' 1; ~^(?<h>.+)$ ${h}z; }\nreturn 200 \"a\\\"b\\n\";\nif ($scheme != \"https\") { return 301 https://$host$request_uri; }\n",
        );
        let map = &doc.directives()[0];
        let entries: Vec<Vec<&str>> = map
            .children()
            .iter()
            .map(|d| {
                std::iter::once(d.name.value.as_str())
                    .chain(d.arg_values())
                    .collect()
            })
            .collect();
        assert_eq!(
            entries,
            [
                vec!["default", "{}"],
                vec!["a'b", "1"],
                vec!["~^(?<h>.+)$", "${h}z"]
            ]
        );
        assert_eq!(doc.directives()[1].args[1].value, "a\"b\n");
        let iff = &doc.directives()[2];
        assert_eq!(
            iff.arg_values().collect::<Vec<_>>(),
            ["($scheme", "!=", "https", ")"]
        );
    }

    #[test]
    fn brace_inside_a_word_is_part_of_it() {
        let doc = roundtrip("a b}c;");
        assert_eq!(doc.directives()[0].args[0].value, "b}c");
    }

    #[test]
    fn lua_blocks_are_opaque() {
        let doc = roundtrip(
            "content_by_lua_block {\n  -- don't { count\n  local t = { a = \"}\" } --[[ } ]]\n  ngx.say([==[ ]] } ]==], '{')\n}\nserver { listen 80; }\n",
        );
        assert_eq!(doc.directives().len(), 2);
        assert!(doc.directives()[0].children().is_empty());
        assert!(parse("access_by_lua_block { ngx.say('x) }").is_err());
    }

    #[test]
    fn errors_name_the_line() {
        for (src, line) in [
            ("http {\n", 2),
            ("a;\n}\n", 2),
            ("a \"b\"c;", 1),
            ("a\n\"b", 2),
            ("a b", 1),
            ("\n;", 2),
            ("{", 1),
        ] {
            let err = parse(src).err().unwrap_or_else(|| panic!("{src:?} parsed"));
            assert_eq!(err.line, line, "{src:?}: {err}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("/etc/x.pem").as_deref(), Some("/etc/x.pem"));
        assert_eq!(quote("/a b/\"c\"").as_deref(), Some("\"/a b/\\\"c\\\"\""));
        assert_eq!(quote("/a$b"), None);
        let q = quote("/we ird\\'{;#").unwrap_or_default();
        let doc = roundtrip(&format!("x {q};"));
        assert_eq!(doc.directives()[0].args[0].value, "/we ird\\'{;#");
    }
}
