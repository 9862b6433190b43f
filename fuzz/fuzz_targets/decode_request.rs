//! Fuzzes the daemon's request decoder: the bytes a hostile local client can
//! put on the socket.
//!
//! Input is used two ways:
//! 1. as a whole stream for `read_frame` (length prefix + body), the path the
//!    client library takes and the same logic the daemon's async reader uses
//!    (`frame_len` then `decode_request`);
//! 2. as a bare body for `decode_request`.
//!
//! Oracles beyond "no panic / no abort":
//! - `frame_len` never accepts more than `MAX_FRAME`, and `read_frame` never
//!   succeeds on a stream whose prefix exceeds it (no huge allocation);
//! - anything that decodes re-encodes to a frame that decodes to the same
//!   value (the decoder and encoder agree; no lossy acceptance).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pctl_protocol::{decode_request, encode, frame_len, read_frame, Envelope, FrameError, MAX_FRAME};

fn check_round_trip(env: &Envelope) {
    let frame = encode(env).expect("a decoded request re-encodes");
    let back: Envelope = read_frame(&mut &frame[..]).expect("re-encoded frame decodes");
    assert_eq!(&back, env, "decode(encode(x)) != x");
}

fuzz_target!(|data: &[u8]| {
    // 1. A stream: header + body, possibly truncated or oversized.
    if data.len() >= 4 {
        let header = [data[0], data[1], data[2], data[3]];
        let declared = u32::from_be_bytes(header) as usize;
        match frame_len(header) {
            Ok(n) => assert!(n <= MAX_FRAME && n == declared),
            Err(FrameError::TooLarge(n)) => assert!(n > MAX_FRAME && n == declared),
            Err(e) => panic!("frame_len returned an unexpected error: {e}"),
        }
    }
    match read_frame::<_, Envelope>(&mut &data[..]) {
        Ok(env) => {
            let declared = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
            assert!(declared <= MAX_FRAME, "accepted an oversize frame");
            assert!(data.len() >= 4 + declared, "accepted a truncated frame");
            check_round_trip(&env);
        }
        Err(FrameError::Closed) => assert!(data.len() < 4),
        Err(_) => {}
    }

    // 2. A bare body, as the daemon passes it to decode_request.
    if data.len() <= MAX_FRAME {
        if let Ok(env) = decode_request(data) {
            check_round_trip(&env);
        }
    }
});
