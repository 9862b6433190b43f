//! Text from outside (op's stderr and item titles, AWS messages, HTTP
//! headers) made safe to repeat in an error, a log line or a terminal: one
//! function for the daemon and the client.

/// One line, no control characters (escape sequences, CR, C1 controls,
/// Unicode line breaks, bidirectional overrides), trimmed, at most `max`
/// characters (an ellipsis marks a cut).
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| {
            if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
            {
                ' '
            } else {
                c
            }
        })
        .collect();
    let t = flat.trim();
    let mut out: String = t.chars().take(max).collect();
    if t.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn escapes_and_line_breaks_become_spaces_and_length_is_capped() {
        assert_eq!(one_line("a\x1b[31mb\r\nc\u{2028}d", 100), "a [31mb  c d");
        assert_eq!(one_line("  abcdef  ", 3), "abc…");
        assert_eq!(one_line("abc", 3), "abc");
        assert_eq!(one_line("x\u{9b}31my\u{202e}z", 100), "x 31my z");
    }
}
