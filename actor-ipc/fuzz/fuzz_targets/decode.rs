//! Fuzzes everything that reads untrusted bytes off the wire: the frame splitter
//! ([`FrameCodec`]), the message decoder ([`Msg::decode`], [`Msg::decode_handshake`]) and raw
//! payloads ([`Payload::from_msgpack`]). Any panic is a finding; besides "does not panic", it
//! checks these invariants and panics when one fails:
//!
//! - framing: the input split by `decode` in one buffer, and split by `decode` fed in small
//!   chunks then `decode_eof`, give the same frames and the same final error; every frame is at
//!   most the codec's limit and is exactly the bytes after its header.
//! - every decoded message re-encodes (`to_frame`) to a frame whose header is its body length,
//!   that frame decodes again, and re-encoding that gives the same bytes
//!   (`encode(decode(encode(m))) == encode(m)`); when the message holds no NaN float (NaN is
//!   never equal to itself inside dynamic values) the second decode also equals the first.
//! - `Msg::to_value`, `Msg::cid`, `Debug` and every payload's `to_value` do not panic.
//! - `decode_handshake` succeeds exactly when `decode` gives a `Handshake`, with the same uid.
//! - a payload re-encoded from its dynamic value reads back to the same bytes.
#![no_main]

use actor_ipc::{FrameCodec, Msg, Payload, Value};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

/// A small limit so the "too large" path is reachable by small inputs.
const MAX_FRAME_LEN: usize = 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let (frames, outcome) = split_whole(data);
    let (chunked_frames, chunked_outcome) = split_chunked(data);
    assert_eq!(frames, chunked_frames, "chunked feeding split differently");
    assert_eq!(outcome, chunked_outcome, "chunked feeding ended differently");

    let mut consumed = 0;
    for frame in &frames {
        assert!(frame.len() <= MAX_FRAME_LEN, "frame over the limit");
        let header = &data[consumed..consumed + 4];
        assert_eq!(
            u32::from_le_bytes(header.try_into().unwrap()) as usize,
            frame.len(),
            "frame length differs from its header"
        );
        assert_eq!(&data[consumed + 4..consumed + 4 + frame.len()], &frame[..]);
        consumed += 4 + frame.len();
        check_body(frame.clone());
    }

    // The whole input as one frame body, and as one raw payload.
    let whole = Bytes::copy_from_slice(data);
    check_body(whole.clone());
    check_payload(whole);
});

/// What splitting ended with: `None` for a clean end, else the error's text.
type Outcome = Option<String>;

/// Splits the whole input at once: `decode` until it needs more, then `decode_eof`.
fn split_whole(data: &[u8]) -> (Vec<Bytes>, Outcome) {
    let mut codec = FrameCodec::new(MAX_FRAME_LEN);
    let mut buf = BytesMut::from(data);
    let mut frames = Vec::new();
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => break,
            Err(e) => return (frames, Some(e.to_string())),
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e.to_string())),
        }
    }
}

/// Splits the input as a socket would deliver it: in chunks (their size taken from the first
/// byte), calling `decode` after each, then `decode_eof` at the end.
fn split_chunked(data: &[u8]) -> (Vec<Bytes>, Outcome) {
    let chunk = usize::from(data.first().copied().unwrap_or(0) % 13) + 1;
    let mut codec = FrameCodec::new(MAX_FRAME_LEN);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Some(e.to_string())),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e.to_string())),
        }
    }
}

fn check_body(body: Bytes) {
    let handshake = Msg::decode_handshake(body.clone());
    let decoded = Msg::decode(body);
    match (&decoded, &handshake) {
        (Ok(Msg::Handshake(a)), Ok(b)) => assert_eq!(a, b, "handshake uids differ"),
        (Ok(Msg::Handshake(_)), Err(e)) => panic!("decode gave a handshake, decode_handshake: {e}"),
        (_, Ok(uid)) => panic!("decode_handshake gave {uid:?}, decode: {decoded:?}"),
        _ => {}
    }
    if let Ok(msg) = decoded {
        check_msg(&msg);
    }
}

fn check_msg(msg: &Msg) {
    let _ = msg.to_value();
    let _ = msg.cid();
    let _ = format!("{msg:?}");
    for payload in payloads(msg) {
        let _ = payload.to_value();
    }

    let first = msg.to_frame().expect("a decoded message re-encodes");
    assert_eq!(
        u32::from_le_bytes(first[..4].try_into().unwrap()) as usize,
        first.len() - 4,
        "to_frame header differs from its body length"
    );
    let again = match Msg::decode(first.slice(4..)) {
        Ok(m) => m,
        Err(e) => panic!("re-encoded message does not decode: {e}\nmsg: {msg:?}\nframe: {first:02x?}"),
    };
    let second = again.to_frame().expect("re-encodes twice");
    assert_eq!(first, second, "encode(decode(encode(m))) != encode(m)\nmsg: {msg:?}\nagain: {again:?}");
    if !has_nan(msg) {
        assert_eq!(&again, msg, "decode(encode(m)) != m");
    }
}

fn check_payload(bytes: Bytes) {
    let Ok(payload) = Payload::from_msgpack(bytes) else {
        return;
    };
    let _ = format!("{payload:?}");
    let Ok(value) = payload.to_value() else {
        return; // e.g. nesting deeper than rmpv accepts
    };
    let written = Payload::from_value(&value);
    let reread = match Payload::from_msgpack(written.clone().into_bytes()) {
        Ok(p) => p,
        Err(e) => panic!("Payload::from_value wrote invalid msgpack: {e}\nvalue: {value:?}"),
    };
    let value2 = reread.to_value().expect("a written payload reads back");
    assert_eq!(
        Payload::from_value(&value2).as_bytes(),
        written.as_bytes(),
        "payload re-encoding is not stable"
    );
}

fn payloads(msg: &Msg) -> Vec<&Payload> {
    match msg {
        Msg::Cmd(cmd) => vec![&cmd.kwargs],
        Msg::Return { value, .. } | Msg::Yield { value, .. } | Msg::Started { value, .. } => {
            vec![value]
        }
        _ => Vec::new(),
    }
}

/// Whether a message's dynamic values hold a NaN (which makes `==` false).
fn has_nan(msg: &Msg) -> bool {
    match msg {
        Msg::Error { error, .. } => error.extra.iter().any(|(_, v)| value_has_nan(v)),
        Msg::SpawnInit(init) => {
            value_has_nan(&init.parent_main_data)
                || init.runtime_vars.extra.iter().any(|(_, v)| value_has_nan(v))
        }
        _ => false,
    }
}

fn value_has_nan(value: &Value) -> bool {
    match value {
        Value::F32(f) => f.is_nan(),
        Value::F64(f) => f.is_nan(),
        Value::Array(items) => items.iter().any(value_has_nan),
        Value::Map(entries) => entries
            .iter()
            .any(|(k, v)| value_has_nan(k) || value_has_nan(v)),
        _ => false,
    }
}
