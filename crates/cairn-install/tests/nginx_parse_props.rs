//! Properties of the nginx parser: it never panics, printing any parsed
//! input gives it back, and configurations built from the grammar always
//! parse, with each token's value as written.
#![allow(clippy::unwrap_used)]

use cairn_install::nginx::parse;
use proptest::prelude::*;

/// Bytes that matter to the tokenizer, and some that do not.
fn nginx_ish() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => prop::sample::select(b"abcxyz_09 \t\n\r{};#\"'\\$()~^*.:[]/=".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..300)
}

fn word() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        // A bare word, which may hold `$`, `${x}`, `}` inside, or an
        // escaped `;` (nginx keeps the backslash of `\;` in the value).
        "[a-z0-9_/.:~^*\\[\\]-]{1,8}(\\$\\{[a-z]{1,3}\\}|\\$[a-z]{1,3}|\\}x|\\\\;)?"
            .prop_map(|w| (w.clone(), w)),
        // A double-quoted string with escapes.
        "[a-z {};#'$]{0,8}".prop_map(|v| {
            let written = format!("\"{}\\\"{}\"", v, v);
            (written, format!("{v}\"{v}"))
        }),
        // A single-quoted string.
        "[a-z {};#\"]{0,8}".prop_map(|v| (format!("'{v}'"), v)),
    ]
}

fn trivia() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(" ".to_owned()),
        Just("\n\t".to_owned()),
        "[ \t]{0,2}#[a-z {};\"']{0,10}\n".prop_map(|c| format!(" {c}")),
    ]
}

#[derive(Debug, Clone)]
enum Node {
    Simple(Vec<(String, String)>),
    Block(Vec<(String, String)>, Vec<Node>),
}

fn node() -> impl Strategy<Value = Node> {
    let simple = prop::collection::vec(word(), 1..4).prop_map(Node::Simple);
    simple.prop_recursive(4, 40, 5, |inner| {
        (
            prop::collection::vec(word(), 1..3),
            prop::collection::vec(inner, 0..5),
        )
            .prop_map(|(w, c)| Node::Block(w, c))
    })
}

fn write(
    nodes: &[Node],
    sep: &mut impl Iterator<Item = String>,
    out: &mut String,
    values: &mut Vec<String>,
) {
    for n in nodes {
        out.push_str(&sep.next().unwrap_or_default());
        let (words, children) = match n {
            Node::Simple(w) => (w, None),
            Node::Block(w, c) => (w, Some(c)),
        };
        for (i, (written, value)) in words.iter().enumerate() {
            if i > 0 {
                out.push_str(&sep.next().unwrap_or_else(|| " ".to_owned()));
            }
            out.push_str(written);
            values.push(value.clone());
        }
        match children {
            None => out.push(';'),
            Some(c) => {
                out.push_str(" {");
                write(c, sep, out, values);
                out.push_str(&sep.next().unwrap_or_default());
                out.push('}');
            }
        }
    }
}

fn values(dirs: &[cairn_install::nginx::parse::Directive], out: &mut Vec<String>) {
    for d in dirs {
        out.push(d.name.value.clone());
        out.extend(d.args.iter().map(|a| a.value.clone()));
        values(d.children(), out);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_and_prints_back(input in nginx_ish()) {
        if let Ok(doc) = parse(input.clone()) {
            prop_assert_eq!(doc.print(), input);
        }
    }

    #[test]
    fn grammar_configs_parse_with_their_values(
        nodes in prop::collection::vec(node(), 0..6),
        seps in prop::collection::vec(trivia(), 200),
    ) {
        let mut text = String::new();
        let mut expected = Vec::new();
        write(&nodes, &mut seps.into_iter(), &mut text, &mut expected);
        let doc = parse(text.clone()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(doc.print(), text.as_bytes());
        let mut got = Vec::new();
        values(doc.directives(), &mut got);
        prop_assert_eq!(got, expected);
    }
}
