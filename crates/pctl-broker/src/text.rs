//! Text from outside (op's stderr, AWS messages, HTTP headers) made safe to
//! repeat in an error, a log line or a terminal: the one function the
//! client uses too, [`pctl_protocol::text::one_line`].

pub use pctl_protocol::text::one_line;
