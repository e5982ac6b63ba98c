//! Property tests of the wire layer's encoders and decoders.
//!
//! 1. Arbitrary dynamic values survive `Payload::from_value` → `to_value`, are accepted by
//!    `Payload::from_msgpack`, and encode to exactly the bytes rmpv's own encoder writes (so our
//!    encoder picks the same shortest forms).
//! 2. Every message kind survives `to_frame` → `Msg::decode`, with a correct length prefix.
//! 3. The decoder never panics: not on arbitrary bytes, not on corrupted valid bodies, and every
//!    strict prefix of a valid body is an error.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use actor_ipc::{
    CallKind, Cid, Cmd, ErrorInfo, Msg, Payload, RuntimeVars, SpawnInit, Uid, Value, WireAddr,
};
use bytes::Bytes;
use proptest::{collection::vec, prelude::*};

const CASES: u32 = 256;

// ---------------------------------------------------------------------------------------------
// Dynamic values
// ---------------------------------------------------------------------------------------------

/// Any string, mostly short, sometimes past the fixstr (31) and str8 (255) limits.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => any::<String>(),
        1 => vec(any::<char>(), 20..300).prop_map(String::from_iter),
    ]
}

/// Integers spread over every magnitude (so every width of both signs is hit), plus the edges.
fn integer() -> impl Strategy<Value = Value> {
    prop_oneof![
        (any::<u64>(), 0u32..64).prop_map(|(n, shift)| Value::from(n >> shift)),
        (any::<i64>(), 0u32..64).prop_map(|(n, shift)| Value::from(n >> shift)),
        prop::sample::select(vec![
            0i128,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            4_294_967_295,
            4_294_967_296,
            i128::from(i64::MAX),
            i128::from(u64::MAX),
            -1,
            -32,
            -33,
            -128,
            -129,
            -32_768,
            -32_769,
            -2_147_483_648,
            -2_147_483_649,
            i128::from(i64::MIN),
        ])
        .prop_map(|n| match u64::try_from(n) {
            Ok(u) => Value::from(u),
            Err(_) => Value::from(i64::try_from(n).unwrap_or(i64::MIN)),
        }),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Nil),
        1 => any::<bool>().prop_map(Value::Boolean),
        4 => integer(),
        2 => any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan()).prop_map(Value::F64),
        1 => any::<f32>().prop_filter("NaN != NaN", |f| !f.is_nan()).prop_map(Value::F32),
        3 => text().prop_map(Value::from),
        1 => vec(any::<u8>(), 0..300).prop_map(Value::Binary),
        1 => (any::<i8>(), prop::sample::select(vec![0usize, 1, 2, 3, 4, 8, 16, 17, 300]))
            .prop_map(|(tag, len)| Value::Ext(tag, vec![0xab; len])),
    ]
}

/// Arbitrary nested values: arrays, maps with string keys and maps with any keys. No NaN.
fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 64, 20, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..20).prop_map(Value::Array),
            vec((text().prop_map(Value::from), inner.clone()), 0..20).prop_map(Value::Map),
            vec((inner.clone(), inner), 0..8).prop_map(Value::Map),
        ]
    })
}

/// A map value (what call kwargs are).
fn map_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        vec((text().prop_map(Value::from), value()), 0..8).prop_map(Value::Map),
        vec((value(), value()), 0..4).prop_map(Value::Map),
    ]
}

fn rmpv_bytes(v: &Value) -> Result<Vec<u8>, rmpv::encode::Error> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

fn uid() -> impl Strategy<Value = Uid> {
    prop_oneof![
        any::<String>().prop_map(Uid::new),
        (any::<String>(), any::<String>()).prop_map(|(name, uuid)| Uid { name, uuid }),
    ]
}

fn cid() -> impl Strategy<Value = Cid> {
    prop_oneof![any::<String>(), "[0-9a-f-]{36}"].prop_map(Cid::from)
}

fn wire_addr() -> impl Strategy<Value = WireAddr> {
    let tcp_host = prop_oneof![
        Just("127.0.0.1".to_owned()),
        Just("::1".to_owned()),
        any::<[u8; 4]>().prop_map(|[a, b, c, d]| format!("{a}.{b}.{c}.{d}")),
        "[a-z0-9.-]{1,40}",
        any::<String>(),
    ];
    prop_oneof![
        (tcp_host, any::<u16>()).prop_map(|(host, port)| WireAddr { host, port }),
        "(/[a-zA-Z0-9._-]{1,12}){1,5}".prop_map(|path| WireAddr {
            host: format!("unix://{path}"),
            port: 0,
        }),
    ]
}

/// Extra keys of a map: any string but the ones the decoder claims for itself.
fn extras(reserved: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, Value)>> {
    vec(
        (
            text().prop_filter("reserved key", move |k| !reserved.contains(&k.as_str())),
            value(),
        ),
        0..5,
    )
}

fn call_kind() -> impl Strategy<Value = CallKind> {
    prop_oneof![
        Just(CallKind::AsyncFunc),
        Just(CallKind::AsyncGen),
        Just(CallKind::Context),
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    value().prop_map(|v| Payload::from_value(&v))
}

fn spawn_init() -> impl Strategy<Value = SpawnInit> {
    let runtime_vars = (
        any::<bool>(),
        any::<bool>(),
        wire_addr(),
        extras(&["_debug_mode", "_is_root", "_root_mailbox"]),
    )
        .prop_map(|(debug_mode, is_root, root_mailbox, extra)| RuntimeVars {
            debug_mode,
            is_root,
            root_mailbox,
            extra,
        });
    (
        prop_oneof![Just(Value::Map(Vec::new())), value()],
        vec((any::<String>(), any::<String>()), 0..6),
        wire_addr(),
        prop_oneof![Just("127.0.0.1".to_owned()), any::<String>()],
        any::<u16>(),
        runtime_vars,
    )
        .prop_map(
            |(parent_main_data, enable_modules, registrar, bind_host, bind_port, runtime_vars)| {
                SpawnInit {
                    parent_main_data,
                    enable_modules,
                    registrar,
                    bind_host,
                    bind_port,
                    runtime_vars,
                }
            },
        )
}

fn msg() -> impl Strategy<Value = Msg> {
    let cmd = (
        any::<String>(),
        any::<String>(),
        map_value(),
        uid(),
        cid(),
        // The optional trace context travels beside `cmd` and comes back as sent.
        prop::option::of(any::<String>()),
    )
        .prop_map(|(ns, func, kwargs, caller, cid, trace)| {
            Msg::from(Cmd {
                ns: ns.into(),
                func: func.into(),
                kwargs: Payload::from_value(&kwargs),
                caller: caller.into(),
                cid,
                trace,
            })
        });
    let error = (
        prop::option::of(cid()),
        any::<String>(),
        text(),
        extras(&["type_str", "tb_str"]),
    )
        .prop_map(|(cid, type_str, tb_str, extra)| Msg::Error {
            cid,
            error: Box::new(ErrorInfo {
                type_str,
                tb_str,
                extra,
            }),
        });
    prop_oneof![
        uid().prop_map(Msg::Handshake),
        Just(Msg::Sentinel),
        cmd,
        (cid(), call_kind()).prop_map(|(cid, kind)| Msg::FuncType { cid, kind }),
        (cid(), payload()).prop_map(|(cid, value)| Msg::Return { cid, value }),
        (cid(), payload()).prop_map(|(cid, value)| Msg::Yield { cid, value }),
        (cid(), payload()).prop_map(|(cid, value)| Msg::Started { cid, value }),
        cid().prop_map(|cid| Msg::Stop { cid }),
        error,
        spawn_init().prop_map(|init| Msg::SpawnInit(Box::new(init))),
    ]
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// Property 1: dynamic values round-trip through `Payload`, are accepted as raw msgpack,
    /// and are encoded byte for byte as rmpv encodes them.
    #[test]
    fn values_round_trip_and_match_rmpv(v in value()) {
        let payload = Payload::from_value(&v);
        prop_assert_eq!(payload.to_value().unwrap(), v.clone());

        let bytes = Bytes::copy_from_slice(payload.as_bytes());
        let accepted = Payload::from_msgpack(bytes.clone()).unwrap();
        prop_assert_eq!(&accepted, &payload);

        prop_assert_eq!(payload.as_bytes(), &rmpv_bytes(&v).unwrap()[..]);

        // One value: any strict prefix is incomplete.
        for len in 0..bytes.len() {
            prop_assert!(Payload::from_msgpack(bytes.slice(..len)).is_err(), "prefix {}", len);
        }
    }

    /// Property 2: every message kind survives its frame.
    #[test]
    fn messages_round_trip(msg in msg()) {
        let frame = msg.to_frame().unwrap();
        let declared = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
        prop_assert_eq!(declared as usize, frame.len() - 4);

        let body = frame.slice(4..);
        let back = Msg::decode(body.clone()).unwrap();
        prop_assert_eq!(&back, &msg);

        // The dynamic view is exactly what went on the wire.
        let dynamic = Payload::from_value(&msg.to_value());
        prop_assert_eq!(dynamic.as_bytes(), &body[..]);

        if let Msg::Handshake(uid) = &msg {
            let within = !uid.name.is_empty()
                && !uid.uuid.is_empty()
                && uid.name.len() <= actor_ipc::MAX_NAME_LEN
                && uid.uuid.len() <= actor_ipc::MAX_UUID_LEN;
            match Msg::decode_handshake(body) {
                Ok(back) => {
                    prop_assert!(within);
                    prop_assert_eq!(&back, uid);
                }
                Err(actor_ipc::DecodeError::BadUid { .. }) => prop_assert!(!within),
                Err(other) => prop_assert!(false, "{other}"),
            }
        }
    }

    /// Property 3a: arbitrary bytes never panic the decoder.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let _ = Msg::decode(Bytes::from(bytes.clone()));
        let _ = Msg::decode_handshake(Bytes::from(bytes.clone()));
        let _ = Payload::from_msgpack(Bytes::from(bytes));
    }

    /// Property 3b: valid bodies with a few bytes overwritten never panic the decoder.
    #[test]
    fn corrupted_bodies_never_panic(
        msg in msg(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut body = msg.to_frame().unwrap().slice(4..).to_vec();
        for (at, byte) in edits {
            let i = at.index(body.len());
            body[i] = byte;
        }
        let _ = Msg::decode(Bytes::from(body));
    }

    /// Property 3c: every strict prefix of a valid body is an error, never a panic, never a
    /// message (a strict prefix of one msgpack value is never a complete value).
    #[test]
    fn truncated_bodies_are_errors(msg in msg()) {
        let body = msg.to_frame().unwrap().slice(4..);
        for len in 0..body.len() {
            let result = Msg::decode(body.slice(..len));
            prop_assert!(result.is_err(), "prefix of {} bytes decoded: {:?}", len, result);
        }
    }
}
