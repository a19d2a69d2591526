//! Punycode decoding (RFC 3492 §6.2), only to tell whether an `xn--` label
//! is well formed.

const BASE: u32 = 36;
const T_MIN: u32 = 1;
const T_MAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;
const INITIAL_BIAS: u32 = 72;
const INITIAL_N: u32 = 128;

/// True when `encoded` (the part after `xn--`) decodes to a plausible
/// U-label: at least one non-ASCII character, no control or space
/// characters, and ASCII only from `a-z0-9-`. (Full IDNA2008 code point
/// rules are stricter; this refuses what cannot be a hostname at all.)
pub(super) fn is_valid(encoded: &str) -> bool {
    decode(encoded).is_some_and(|s| {
        !s.is_ascii()
            && s.chars().all(|c| {
                !c.is_control()
                    && !c.is_whitespace()
                    && (!c.is_ascii() || c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    })
}

fn decode(input: &str) -> Option<String> {
    if !input.is_ascii() || input.is_empty() {
        return None;
    }
    let (basic, extended) = match input.rfind('-') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => ("", input),
    };
    let mut output: Vec<char> = basic.chars().collect();
    let mut n = INITIAL_N;
    let mut i: u32 = 0;
    let mut bias = INITIAL_BIAS;
    let mut digits = extended.bytes().peekable();
    while digits.peek().is_some() {
        let old_i = i;
        let mut w: u32 = 1;
        let mut k = BASE;
        loop {
            let digit = digit_value(digits.next()?)?;
            i = i.checked_add(digit.checked_mul(w)?)?;
            let t = threshold(k, bias);
            if digit < t {
                break;
            }
            w = w.checked_mul(BASE - t)?;
            k += BASE;
        }
        let len = u32::try_from(output.len()).ok()? + 1;
        bias = adapt(i - old_i, len, old_i == 0);
        n = n.checked_add(i / len)?;
        i %= len;
        let c = char::from_u32(n)?;
        output.insert(usize::try_from(i).ok()?, c);
        i += 1;
    }
    Some(output.into_iter().collect())
}

fn threshold(k: u32, bias: u32) -> u32 {
    if k <= bias {
        T_MIN
    } else if k >= bias + T_MAX {
        T_MAX
    } else {
        k - bias
    }
}

fn digit_value(b: u8) -> Option<u32> {
    match b {
        b'a'..=b'z' => Some(u32::from(b - b'a')),
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 26),
        _ => None,
    }
}

fn adapt(delta: u32, num_points: u32, first: bool) -> u32 {
    let mut delta = if first { delta / DAMP } else { delta / 2 };
    delta += delta / num_points;
    let mut k = 0;
    while delta > ((BASE - T_MIN) * T_MAX) / 2 {
        delta /= BASE - T_MIN;
        k += BASE;
    }
    k + (((BASE - T_MIN + 1) * delta) / (delta + SKEW))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3492 §7.1 samples and a well-known IDN.
    #[test]
    fn decodes_known_labels() {
        assert_eq!(decode("bcher-kva").as_deref(), Some("bücher"));
        assert_eq!(
            decode("egbpdaj6bu4bxfgehfvwxn").as_deref(),
            Some("ليهمابتكلموشعربي؟")
        );
        assert_eq!(
            decode("ihqwcrb4cv8a8dqg056pqjye").as_deref(),
            Some("他们为什么不说中文")
        );
        assert!(is_valid("bcher-kva"));
    }

    #[test]
    fn refuses_garbage() {
        assert!(!is_valid(""));
        assert!(!is_valid("a"), "decodes to a control character");
        assert!(!is_valid("zzzzzzzzzzzzzz9999"), "overflows");
        assert!(!is_valid("ab_c"));
        assert!(!is_valid("bcher-kv"), "truncated");
    }
}
