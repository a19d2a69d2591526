//! The Apache configuration language, losslessly: every byte of a file is
//! kept in exactly one node, so printing the nodes gives the file back.
//!
//! What httpd does, and so what this does:
//! - A *logical line* is one or more physical lines: a line whose last
//!   byte before `\n` (or `\r\n`) is a single `\` continues on the next
//!   line. This holds for comment lines too (`# a \` swallows the next
//!   line), as in httpd's `ap_varbuf_cfg_getline`.
//! - A logical line that is empty or starts with `#` (after leading
//!   white space) is a comment. There are no trailing comments: a `#`
//!   after a directive is one more argument.
//! - `<Name args>` opens a section, `</Name>` closes it (names compared
//!   without case); everything else is a directive `Name args...`.
//! - Arguments are words split on white space; a word that starts with
//!   `"` or `'` runs to the matching quote, and a backslash escapes that
//!   quote inside it (`ap_getword_conf`).

use std::fmt::Write as _;

/// One node of a file: a comment or blank line, a directive, or a section
/// with its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// A blank or comment logical line, kept as read.
    Trivia(Trivia),
    /// `Name args...`.
    Directive(Directive),
    /// `<Name args>` children `</Name>`.
    Section(Section),
}

/// A blank or comment line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trivia {
    /// Every byte of the logical line, line ending included.
    pub(crate) raw: Vec<u8>,
    /// 1-based number of its first physical line.
    pub(crate) line: usize,
}

/// A directive, or the opening line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Directive {
    /// Every byte of the logical line, line ending included.
    pub(crate) raw: Vec<u8>,
    /// 1-based number of its first physical line.
    pub(crate) line: usize,
    /// The name as written (`ServerName`, or `VirtualHost` for a section).
    pub(crate) name: String,
    /// The arguments, quotes removed, `${VAR}` not yet resolved.
    pub(crate) args: Vec<String>,
}

impl Directive {
    /// True when the name is `name`, without regard to case.
    pub(crate) fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The white space the line starts with.
    pub(crate) fn indent(&self) -> String {
        let end = self
            .raw
            .iter()
            .position(|b| *b != b' ' && *b != b'\t')
            .unwrap_or(self.raw.len());
        String::from_utf8_lossy(&self.raw[..end]).into_owned()
    }
}

/// A section: `<VirtualHost *:80>` … `</VirtualHost>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    /// The opening line (`name` without `<`, arguments without `>`).
    pub(crate) open: Directive,
    /// What is inside.
    pub(crate) children: Vec<Node>,
    /// The closing line, as read.
    pub(crate) close: Trivia,
}

/// A syntax error: 1-based line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// Parses a whole file.
pub(crate) fn parse(input: &[u8]) -> Result<Vec<Node>, SyntaxError> {
    // A stack of open sections; the bottom entry is the file itself.
    let mut stack: Vec<(Option<Directive>, Vec<Node>)> = vec![(None, Vec::new())];
    for logical in LogicalLines::new(input) {
        let text = logical.text();
        let trimmed = text.trim_start_matches([' ', '\t']);
        let trimmed = trimmed.trim_end();
        let node = if trimmed.is_empty() || trimmed.starts_with('#') {
            Node::Trivia(Trivia {
                raw: logical.raw.to_vec(),
                line: logical.line,
            })
        } else if let Some(rest) = trimmed.strip_prefix("</") {
            let name = rest
                .strip_suffix('>')
                .ok_or_else(|| SyntaxError {
                    line: logical.line,
                    message: format!("{trimmed} is missing its closing '>'"),
                })?
                .trim();
            let close = Trivia {
                raw: logical.raw.to_vec(),
                line: logical.line,
            };
            let (open, children) = stack.pop().unwrap_or((None, Vec::new()));
            let Some(open) = open else {
                return Err(SyntaxError {
                    line: logical.line,
                    message: format!("</{name}> without a matching <{name}>"),
                });
            };
            if !open.name.eq_ignore_ascii_case(name) {
                return Err(SyntaxError {
                    line: logical.line,
                    message: format!(
                        "expected </{}> (for line {}) but saw </{name}>",
                        open.name, open.line
                    ),
                });
            }
            let section = Node::Section(Section {
                open,
                children,
                close,
            });
            if let Some((_, parent)) = stack.last_mut() {
                parent.push(section);
            }
            continue;
        } else if let Some(rest) = trimmed.strip_prefix('<') {
            let inner = rest.strip_suffix('>').ok_or_else(|| SyntaxError {
                line: logical.line,
                message: format!("<{} is missing its closing '>'", first_word(rest)),
            })?;
            let mut words = split_words(inner);
            if words.is_empty() || inner.starts_with([' ', '\t']) {
                return Err(SyntaxError {
                    line: logical.line,
                    message: "a section needs a name right after '<'".to_owned(),
                });
            }
            let name = words.remove(0);
            stack.push((
                Some(Directive {
                    raw: logical.raw.to_vec(),
                    line: logical.line,
                    name,
                    args: words,
                }),
                Vec::new(),
            ));
            continue;
        } else {
            let mut words = split_words(trimmed);
            let name = if words.is_empty() {
                String::new()
            } else {
                words.remove(0)
            };
            Node::Directive(Directive {
                raw: logical.raw.to_vec(),
                line: logical.line,
                name,
                args: words,
            })
        };
        if let Some((_, nodes)) = stack.last_mut() {
            nodes.push(node);
        }
    }
    if stack.len() > 1 {
        let (open, _) = stack.pop().unwrap_or((None, Vec::new()));
        let (name, line) = open.map(|o| (o.name, o.line)).unwrap_or_default();
        return Err(SyntaxError {
            line,
            message: format!("<{name}> is never closed (no </{name}>)"),
        });
    }
    Ok(stack.pop().map(|(_, nodes)| nodes).unwrap_or_default())
}

/// Every byte of `nodes`, in order.
pub(crate) fn print(nodes: &[Node]) -> Vec<u8> {
    let mut out = Vec::new();
    print_into(nodes, &mut out);
    out
}

fn print_into(nodes: &[Node], out: &mut Vec<u8>) {
    for node in nodes {
        match node {
            Node::Trivia(t) => out.extend_from_slice(&t.raw),
            Node::Directive(d) => out.extend_from_slice(&d.raw),
            Node::Section(s) => {
                out.extend_from_slice(&s.open.raw);
                print_into(&s.children, out);
                out.extend_from_slice(&s.close.raw);
            }
        }
    }
}

/// Splits a line into words the way httpd's `ap_getword_conf` does.
pub(crate) fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return words;
        };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '\\' && chars.peek() == Some(&first) {
                    word.push(first);
                    chars.next();
                } else if c == first {
                    break;
                } else {
                    word.push(c);
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
}

/// Writes `word` so that [`split_words`] gives it back as one word.
pub(crate) fn quote(word: &str) -> String {
    if !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
    {
        return word.to_owned();
    }
    let mut out = String::from("\"");
    for c in word.chars() {
        if c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Builds a directive line (`indent`, name, quoted arguments, `eol`).
pub(crate) fn line(indent: &str, name: &str, args: &[&str], eol: &str) -> String {
    let mut out = format!("{indent}{name}");
    for arg in args {
        let _ = write!(out, " {}", quote(arg));
    }
    out.push_str(eol);
    out
}

fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

/// One logical line: its raw bytes and where it starts.
struct Logical<'a> {
    raw: &'a [u8],
    line: usize,
}

impl Logical<'_> {
    /// The text httpd sees: continuations joined (the `\` and line break
    /// removed), the final line ending removed.
    fn text(&self) -> String {
        let mut out = Vec::with_capacity(self.raw.len());
        let mut rest = self.raw;
        while !rest.is_empty() {
            let end = rest
                .iter()
                .position(|b| *b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            let physical = strip_eol(&rest[..end]);
            match continued(&rest[..end]) {
                true => out.extend_from_slice(&physical[..physical.len() - 1]),
                false => out.extend_from_slice(physical),
            }
            rest = &rest[end..];
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn strip_eol(physical: &[u8]) -> &[u8] {
    let p = physical.strip_suffix(b"\n").unwrap_or(physical);
    p.strip_suffix(b"\r").unwrap_or(p)
}

/// True when a physical line (with its `\n`) ends in a single `\` before
/// the line break: the next line continues it.
fn continued(physical: &[u8]) -> bool {
    if !physical.ends_with(b"\n") {
        return false;
    }
    let body = strip_eol(physical);
    body.ends_with(b"\\") && !body.ends_with(b"\\\\")
}

struct LogicalLines<'a> {
    rest: &'a [u8],
    line: usize,
}

impl<'a> LogicalLines<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self {
            rest: input,
            line: 1,
        }
    }
}

impl<'a> Iterator for LogicalLines<'a> {
    type Item = Logical<'a>;

    fn next(&mut self) -> Option<Logical<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let start_line = self.line;
        let mut len = 0;
        loop {
            let tail = &self.rest[len..];
            let end = tail
                .iter()
                .position(|b| *b == b'\n')
                .map_or(tail.len(), |i| i + 1);
            let physical = &tail[..end];
            len += end;
            if physical.ends_with(b"\n") {
                self.line += 1;
            }
            if !continued(physical) || len == self.rest.len() {
                break;
            }
        }
        let (raw, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Logical {
            raw,
            line: start_line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> Vec<Node> {
        let nodes = parse(text.as_bytes()).expect("parses");
        assert_eq!(String::from_utf8(print(&nodes)).expect("utf-8"), text);
        nodes
    }

    #[test]
    fn sections_directives_and_comments_print_back() {
        let nodes = roundtrip(
            "# top\n\n<VirtualHost 192.0.2.1:80 [2001:db8::1]:80>\n\tServerName a.example\n\t<IfModule mod_ssl.c>\n\t\tSSLEngine on\n\t</ifmodule>\n</VirtualHost>\nListen 80",
        );
        assert_eq!(nodes.len(), 4);
        let Node::Section(vhost) = &nodes[2] else {
            panic!("not a section: {:?}", nodes[2]);
        };
        assert_eq!(vhost.open.name, "VirtualHost");
        assert_eq!(vhost.open.args, ["192.0.2.1:80", "[2001:db8::1]:80"]);
        assert_eq!(vhost.open.line, 3);
        assert_eq!(vhost.children.len(), 2);
        let Node::Directive(listen) = &nodes[3] else {
            panic!("not a directive");
        };
        assert_eq!(listen.line, 9);
    }

    #[test]
    fn continuation_lines_join_even_in_comments() {
        let nodes = roundtrip("ServerAlias a \\\n  b \\\n c\n# x \\\nServerName hidden\nX y\n");
        let Node::Directive(alias) = &nodes[0] else {
            panic!("not a directive");
        };
        assert_eq!(alias.args, ["a", "b", "c"]);
        assert!(matches!(nodes[1], Node::Trivia(_)));
        let Node::Directive(x) = &nodes[2] else {
            panic!("not a directive");
        };
        assert_eq!((x.name.as_str(), x.line), ("X", 6));
    }

    #[test]
    fn a_doubled_backslash_does_not_continue() {
        let nodes = roundtrip("A b\\\\\nC d\r\n");
        assert_eq!(nodes.len(), 2);
    }

    #[test]
    fn quotes_and_hash_after_a_directive_are_arguments() {
        let nodes = roundtrip("LogFormat \"%h \\\"%r\\\"\" 'x y' # not a comment\n");
        let Node::Directive(d) = &nodes[0] else {
            panic!("not a directive");
        };
        assert_eq!(d.args, ["%h \"%r\"", "x y", "#", "not", "a", "comment"]);
    }

    #[test]
    fn broken_sections_are_syntax_errors_with_lines() {
        let err = parse(b"<VirtualHost *:80>\nX\n").expect_err("unclosed");
        assert_eq!(err.line, 1);
        let err = parse(b"<A>\n</B>\n").expect_err("mismatch");
        assert_eq!(err.line, 2);
        let err = parse(b"\n</B>\n").expect_err("stray close");
        assert_eq!(err.line, 2);
        let err = parse(b"<A x\n</A>\n").expect_err("no >");
        assert_eq!(err.line, 1);
    }

    #[test]
    fn quote_round_trips_through_split_words() {
        for word in ["plain", "/a b/c", "say \"hi\"", "", "it's"] {
            assert_eq!(split_words(&quote(word)), [word], "{word}");
        }
    }
}
