//! The message catalogue of tractor 0.1.0a5's protocol as Rust types.
//!
//! Every frame body is one of: a handshake (`[name, uuid]`), the sentinel (`nil`), or a map
//! whose keys say what it is (`cmd`, `functype`, `return`, `yield`, `started`, `stop`,
//! `error`, or the spawn init map). [`Msg::decode`] accepts keys in any order, ignores keys it
//! does not know, and leaves payloads as [`Payload`](crate::Payload) slices of the frame.
//! [`Msg::write_frame`] writes keys in the order tractor does, so frames match its byte for byte.
//!
//! One job per file: `catalogue.rs` holds the types and their accessors, `decode.rs` reads frame
//! bodies into them, `encode.rs` writes them (and writes the hot-path frames straight from
//! borrowed parts, without building a [`Msg`]).

mod catalogue;
mod decode;
mod encode;

pub use catalogue::{CallKind, Cid, Cmd, CmdRef, ErrorInfo, Msg, RuntimeVars, SpawnInit, Uid};
pub(crate) use decode::is_asyncfunc_confirmation;

/// Every request/response call's first answer, `{"functype": "asyncfunc", "cid": ...}`, as
/// tractor and this runtime write it: what follows the map's header, up to the cid's value.
/// The decoder reads it in one comparison, the encoder writes it in one copy.
const ASYNCFUNC_ANSWER: &[u8] = b"\xa8functype\xa9asyncfunc\xa3cid";
pub use decode::{MAX_NAME_LEN, MAX_UUID_LEN};

/// Round trips: what `encode` writes, `decode` reads back as the same message.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::HEADER_LEN;

    fn roundtrip(msg: &Msg) -> Msg {
        let frame = msg.to_frame().unwrap();
        Msg::decode(frame.slice(HEADER_LEN..)).unwrap()
    }

    #[test]
    fn heartbeat_round_trips() {
        let msg = Msg::Heartbeat(7);
        let frame = msg.to_frame().unwrap();
        assert_eq!(Msg::decode(frame.slice(4..)).unwrap(), msg);
    }

    #[test]
    fn credit_round_trips() {
        let msg = Msg::Credit {
            cid: "c2".into(),
            credit: 300,
        };
        assert_eq!(roundtrip(&msg), msg);
    }

    #[test]
    fn cidless_error_round_trips() {
        let msg = Msg::Error {
            cid: None,
            error: Box::new(ErrorInfo::new("RuntimeError", "boom")),
        };
        assert_eq!(roundtrip(&msg), msg);
    }

    #[test]
    fn error_extra_keys_are_kept() {
        let mut error = ErrorInfo::new("ValueError", "trace");
        error
            .extra
            .push(("src_uid".into(), Uid::new("a").to_value()));
        let msg = Msg::Error {
            cid: Some("c9".into()),
            error: Box::new(error),
        };
        assert_eq!(roundtrip(&msg), msg);
    }
}
