//! Text from outside (op's stderr, AWS messages, HTTP headers) made safe to
//! repeat in an error, a log line or a terminal.

/// One line, no control characters (escape sequences, CR, Unicode line
/// breaks), trimmed, at most `max` characters (an ellipsis marks a cut).
/// The rule lives in the protocol crate, shared with the client.
pub use pctl_protocol::op::one_line;

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn escapes_and_line_breaks_become_spaces_and_length_is_capped() {
        assert_eq!(one_line("a\x1b[31mb\r\nc\u{2028}d", 100), "a [31mb  c d");
        assert_eq!(one_line("  abcdef  ", 3), "abc…");
        assert_eq!(one_line("abc", 3), "abc");
    }
}
