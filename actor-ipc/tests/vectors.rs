//! Every golden frame of `shared/protocol/vectors.json` (encoded by tractor's own codec) must
//! decode to the value shown, and encoding that value must give the same bytes.
//!
//! The file is read at run time, so new cases are picked up without touching this test. It is
//! found at `$ACTOR_SHARED_DIR/protocol/vectors.json`, or beside the repository in `../shared`.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use actor_ipc::{Msg, Payload, Value};
use bytes::Bytes;

fn vectors_path() -> PathBuf {
    let shared = std::env::var_os("ACTOR_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    shared.join("protocol/vectors.json")
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd-length hex");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// The vectors' JSON rendering of msgpack: objects keep their key order, `{"$bin": hex}` is a
/// byte string, integers stay integers.
fn to_msgpack_value(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (None, Some(i), _) => Value::from(i),
            (None, None, Some(f)) => Value::F64(f),
            _ => panic!("unrepresentable number {n}"),
        },
        J::String(s) => Value::from(s.as_str()),
        J::Array(items) => Value::Array(items.iter().map(to_msgpack_value).collect()),
        J::Object(map) => match map.get("$bin") {
            Some(J::String(hex)) if map.len() == 1 => Value::Binary(unhex(hex)),
            _ => Value::Map(
                map.iter()
                    .map(|(k, v)| (Value::from(k.as_str()), to_msgpack_value(v)))
                    .collect(),
            ),
        },
    }
}

#[test]
fn every_golden_frame_round_trips_byte_for_byte() {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("vectors.json is JSON");
    let cases = doc["cases"].as_array().expect("a cases array");
    assert!(!cases.is_empty(), "no cases in {}", path.display());

    for case in cases {
        let name = case["name"].as_str().expect("case name");
        let frame = Bytes::from(unhex(case["frame_hex"].as_str().expect("frame_hex")));
        let expected = to_msgpack_value(&case["value"]);

        let declared = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(declared, frame.len() - 4, "{name}: length prefix");
        let body = frame.slice(4..);

        let msg = Msg::decode(body.clone()).unwrap_or_else(|e| panic!("{name}: decode: {e}"));
        assert_eq!(msg.to_value(), expected, "{name}: decoded value");
        assert_eq!(
            msg.to_frame().unwrap(),
            frame,
            "{name}: re-encoded message differs"
        );
        assert_eq!(
            Payload::from_value(&expected).as_bytes(),
            &body[..],
            "{name}: dynamic value encodes differently"
        );
    }
}

#[test]
fn payloads_decode_straight_into_rust_types() {
    // `return-big-int` from the vectors, decoded without a dynamic tree in between.
    let frame = unhex(
        "2700000082a672657475726e94cfffffffffffffffffffd1ff7fcf0000000100000000a3636964a3633133",
    );
    let Msg::Return { cid, value } = Msg::decode(Bytes::from(frame).slice(4..)).unwrap() else {
        panic!("not a return");
    };
    assert_eq!(cid, "c13");
    let (a, b, c, d): (u64, i8, i16, u64) = value.decode().unwrap();
    assert_eq!((a, b, c, d), (u64::MAX, -1, -129, 4_294_967_296));
}
