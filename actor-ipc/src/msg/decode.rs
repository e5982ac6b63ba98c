//! Reading frame bodies into messages: [`Msg::decode`] and [`Msg::decode_handshake`].
//!
//! A message map is scanned once, recording where each known key's value lies; the message
//! kind is then chosen from the keys present, so keys may come in any order and unknown keys
//! are skipped. Payloads stay slices of the frame.

use std::{ops::Range, sync::Arc};

use bytes::Bytes;
use rmpv::Value;

use super::{ASYNCFUNC_ANSWER, CallKind, Cid, Cmd, ErrorInfo, Msg, RuntimeVars, SpawnInit, Uid};
use crate::{
    addr::WireAddr,
    error::DecodeError,
    msgpack::{Cursor, MAX_NESTING, check_nesting, kind_name},
    payload::Payload,
};

/// Byte ranges of the known keys' values in a message map.
#[derive(Default)]
struct Fields {
    cmd: Option<Range<usize>>,
    functype: Option<Range<usize>>,
    cid: Option<Range<usize>>,
    ret: Option<Range<usize>>,
    yld: Option<Range<usize>>,
    started: Option<Range<usize>>,
    stop: Option<Range<usize>>,
    error: Option<Range<usize>>,
    parent_main_data: Option<Range<usize>>,
    enable_modules: Option<Range<usize>>,
    arb_addr: Option<Range<usize>>,
    bind_host: Option<Range<usize>>,
    bind_port: Option<Range<usize>>,
    runtime_vars: Option<Range<usize>>,
    credit: Option<Range<usize>>,
    heartbeat: Option<Range<usize>>,
    trace: Option<Range<usize>>,
}

const MAX_KEYS_REPORTED: usize = 8;

impl Msg {
    /// Decodes one frame body.
    pub fn decode(body: Bytes) -> Result<Self, DecodeError> {
        Self::decode_from(body, None)
    }

    /// Decodes a frame body from a peer whose uid is `peer`: a `cmd` whose caller is that
    /// uid shares it (no allocation, no UTF-8 check) instead of decoding its own copy.
    /// Otherwise as [`Msg::decode`].
    pub fn decode_from(body: Bytes, peer: Option<&Arc<Uid>>) -> Result<Self, DecodeError> {
        let mut cur = Cursor::new(&body);
        let msg = match cur.peek()? {
            0xc0 => {
                cur.skip_value()?;
                Self::Sentinel
            }
            0x90..=0x9f | 0xdc | 0xdd => Self::Handshake(read_uid(&mut cur, "handshake")?),
            0x80..=0x8f | 0xde | 0xdf => Self::decode_map(&body, &mut cur, peer)?,
            0xc1 => {
                return Err(DecodeError::InvalidMarker {
                    marker: 0xc1,
                    at: 0,
                });
            }
            m => {
                return Err(DecodeError::WrongType {
                    field: "message",
                    expected: "a map, a handshake array or nil",
                    found: kind_name(m),
                    at: 0,
                });
            }
        };
        match cur.remaining() {
            0 => Ok(msg),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    /// Decodes a frame body that must be a handshake.
    pub fn decode_handshake(body: Bytes) -> Result<Uid, DecodeError> {
        let mut cur = Cursor::new(&body);
        let uid = read_uid(&mut cur, "handshake")?;
        match cur.remaining() {
            0 => check_uid(uid),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    fn decode_map(
        body: &Bytes,
        cur: &mut Cursor<'_>,
        peer: Option<&Arc<Uid>>,
    ) -> Result<Self, DecodeError> {
        let entries = cur.map_len("message")?;
        // Every call's messages, in the shapes tractor and this runtime write them, are read
        // in one pass; anything else (malformed input included) takes the general way below.
        let mut fast = *cur;
        let read = match entries {
            1 => read_cmd_message(body, &mut fast, peer),
            2 => read_answer(body, &mut fast),
            _ => None,
        };
        if let Some(msg) = read {
            *cur = fast;
            return Ok(msg);
        }
        let mut f = Fields::default();
        let mut unknown = Vec::new();
        for _ in 0..entries {
            let key_at = cur.pos();
            // Keys are compared as bytes: the known ones are ASCII, so only an unknown key
            // needs its UTF-8 checked.
            let Some(key) = cur.key_bytes_if_any()? else {
                // A non-string key: unknown by definition.
                cur.skip_value()?;
                cur.skip_value()?;
                continue;
            };
            let range = cur.skip_value()?;
            let slot = match key {
                b"cmd" => &mut f.cmd,
                b"functype" => &mut f.functype,
                b"cid" => &mut f.cid,
                b"return" => &mut f.ret,
                b"yield" => &mut f.yld,
                b"started" => &mut f.started,
                b"stop" => &mut f.stop,
                b"error" => &mut f.error,
                b"_parent_main_data" => &mut f.parent_main_data,
                b"enable_modules" => &mut f.enable_modules,
                b"_arb_addr" => &mut f.arb_addr,
                b"bind_host" => &mut f.bind_host,
                b"bind_port" => &mut f.bind_port,
                b"_runtime_vars" => &mut f.runtime_vars,
                b"credit" => &mut f.credit,
                b"heartbeat" => &mut f.heartbeat,
                b"trace" => &mut f.trace,
                other => {
                    let other =
                        std::str::from_utf8(other).map_err(|_| DecodeError::InvalidUtf8 {
                            field: "key",
                            at: key_at,
                        })?;
                    if unknown.len() < MAX_KEYS_REPORTED {
                        unknown.push(other.to_owned());
                    }
                    continue;
                }
            };
            *slot = Some(range);
        }
        let at = |range: &Range<usize>| Cursor::new(&body[..range.end]).seek(range.start);
        let cid = |message: &'static str| -> Result<Cid, DecodeError> {
            let Some(range) = f.cid.as_ref() else {
                return Err(DecodeError::MissingKey {
                    message,
                    key: "cid",
                });
            };
            Ok(Cid::from(at(range).str("cid")?))
        };
        let payload = |range: &Range<usize>| Payload::from_checked(body.slice(range.clone()));

        if let Some(range) = &f.cmd {
            return match read_cmd(body, &mut at(range), peer) {
                Ok(mut cmd) => {
                    // A trace context that is not a string is ignored, as an unknown key is.
                    cmd.trace = f
                        .trace
                        .as_ref()
                        .and_then(|range| at(range).str("trace").ok().map(str::to_owned));
                    Ok(Self::Cmd(Box::new(cmd)))
                }
                Err(source) => Err(DecodeError::BadCmd {
                    cid: cmd_cid(&mut at(range)),
                    detail: source.to_string(),
                }),
            };
        }
        if let Some(range) = &f.error {
            let cid = match &f.cid {
                Some(range) if body.get(range.start) != Some(&0xc0) => {
                    Some(Cid::from(at(range).str("cid")?))
                }
                _ => None,
            };
            let error = read_error(&mut at(range))?;
            return Ok(Self::Error {
                cid,
                error: Box::new(error),
            });
        }
        if let Some(range) = &f.functype {
            let name = at(range).str("functype")?;
            let kind = CallKind::parse(name).ok_or_else(|| DecodeError::InvalidValue {
                field: "functype",
                detail: format!("unknown function type {name:?}"),
            })?;
            let cid = cid("functype")?;
            return Ok(Self::FuncType { cid, kind });
        }
        if let Some(range) = &f.ret {
            let cid = cid("return")?;
            return Ok(Self::Return {
                cid,
                value: payload(range),
            });
        }
        if let Some(range) = &f.yld {
            let cid = cid("yield")?;
            return Ok(Self::Yield {
                cid,
                value: payload(range),
            });
        }
        if let Some(range) = &f.started {
            let cid = cid("started")?;
            return Ok(Self::Started {
                cid,
                value: payload(range),
            });
        }
        if f.stop.is_some() {
            return Ok(Self::Stop { cid: cid("stop")? });
        }
        if let Some(range) = &f.credit {
            let credit = at(range).uint("credit")?;
            return Ok(Self::Credit {
                cid: cid("credit")?,
                credit,
            });
        }
        if let Some(range) = &f.heartbeat {
            return Ok(Self::Heartbeat(at(range).uint("heartbeat")?));
        }
        if f.enable_modules.is_some() {
            return Ok(Self::SpawnInit(Box::new(read_spawn_init(body, &f)?)));
        }
        Err(DecodeError::UnknownMessage { keys: unknown })
    }
}

/// `{"cmd": [...]}`, read in one pass; `None` if it is anything else or malformed.
fn read_cmd_message(body: &Bytes, cur: &mut Cursor<'_>, peer: Option<&Arc<Uid>>) -> Option<Msg> {
    if cur.key_bytes_if_any().ok()?? != b"cmd" {
        return None;
    }
    read_cmd(body, cur, peer)
        .ok()
        .map(|cmd| Msg::Cmd(Box::new(cmd)))
}

/// Whether `body` is exactly a request/response call's `functype` answer: the confirmation a
/// caller of a request/response function has nothing to learn from (its cid not checked to
/// be UTF-8: the message is not decoded).
pub(crate) fn is_asyncfunc_confirmation(body: &[u8]) -> bool {
    let Some(rest) = body
        .strip_prefix(b"\x82")
        .and_then(|rest| rest.strip_prefix(ASYNCFUNC_ANSWER))
    else {
        return false;
    };
    // The cid: one string, and nothing after it.
    match rest.split_first() {
        Some((&marker @ 0xa0..=0xbf, cid)) => cid.len() == usize::from(marker & 0x1f),
        Some((&0xd9, rest)) => rest
            .split_first()
            .is_some_and(|(&len, cid)| cid.len() == usize::from(len)),
        _ => false,
    }
}

/// `{key: value, "cid": cid}` for `return`, `yield`, `started` and `functype`, read in one
/// pass; `None` if it is anything else or malformed.
fn read_answer(body: &Bytes, cur: &mut Cursor<'_>) -> Option<Msg> {
    if cur.skip_prefix(ASYNCFUNC_ANSWER) {
        return Some(Msg::FuncType {
            cid: Cid::from(cur.str("cid").ok()?),
            kind: CallKind::AsyncFunc,
        });
    }
    let key = cur.key_bytes_if_any().ok()??;
    if !matches!(key, b"return" | b"yield" | b"started" | b"functype") {
        return None;
    }
    let value = cur.skip_value().ok()?;
    if cur.key_bytes_if_any().ok()?? != b"cid" {
        return None;
    }
    let cid = Cid::from(cur.str("cid").ok()?);
    let value_of = || Payload::from_checked(body.slice(value.clone()));
    Some(match key {
        b"return" => Msg::Return {
            cid,
            value: value_of(),
        },
        b"yield" => Msg::Yield {
            cid,
            value: value_of(),
        },
        b"started" => Msg::Started {
            cid,
            value: value_of(),
        },
        _ => {
            let name = Cursor::new(&body[..value.end])
                .seek(value.start)
                .str("functype")
                .ok()?;
            Msg::FuncType {
                cid,
                kind: CallKind::parse(name)?,
            }
        }
    })
}

/// The longest actor name a handshake may carry, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// The longest uuid a handshake may carry, in bytes (tractor's are 36).
pub const MAX_UUID_LEN: usize = 64;

/// A peer's uid within the limits: a name and a uuid, neither empty nor over-long.
fn check_uid(uid: Uid) -> Result<Uid, DecodeError> {
    let refuse = |detail: String| Err(DecodeError::BadUid { detail });
    if uid.name.is_empty() || uid.uuid.is_empty() {
        return refuse("an empty name or uuid".into());
    }
    if uid.name.len() > MAX_NAME_LEN {
        return refuse(format!(
            "a name of {} bytes (at most {MAX_NAME_LEN})",
            uid.name.len()
        ));
    }
    if uid.uuid.len() > MAX_UUID_LEN {
        return refuse(format!(
            "a uuid of {} bytes (at most {MAX_UUID_LEN})",
            uid.uuid.len()
        ));
    }
    Ok(uid)
}

/// The call id of a malformed `cmd`, if its fifth element is a string.
fn cmd_cid(cur: &mut Cursor<'_>) -> Option<String> {
    cur.array_of("cmd", 5).ok()?;
    for _ in 0..4 {
        cur.skip_value().ok()?;
    }
    cur.str("cmd.cid").ok().map(str::to_owned)
}

/// Reads a `[name, uuid]` pair.
fn read_uid(cur: &mut Cursor<'_>, field: &'static str) -> Result<Uid, DecodeError> {
    cur.array_of(field, 2)?;
    Ok(Uid {
        name: cur.str(field)?.to_owned(),
        uuid: cur.str(field)?.to_owned(),
    })
}

/// Reads a `[name, uuid]` pair that is most likely `peer`'s: then `peer` itself, shared.
fn read_caller(
    cur: &mut Cursor<'_>,
    peer: Option<&Arc<Uid>>,
    field: &'static str,
) -> Result<Arc<Uid>, DecodeError> {
    let Some(peer) = peer else {
        return read_uid(cur, field).map(Arc::new);
    };
    let mut ahead = *cur;
    ahead.array_of(field, 2)?;
    let name = ahead.str_bytes(field)?;
    let uuid = ahead.str_bytes(field)?;
    if name == peer.name.as_bytes() && uuid == peer.uuid.as_bytes() {
        *cur = ahead;
        return Ok(peer.clone());
    }
    read_uid(cur, field).map(Arc::new)
}

fn read_cmd(
    body: &Bytes,
    cur: &mut Cursor<'_>,
    peer: Option<&Arc<Uid>>,
) -> Result<Cmd, DecodeError> {
    cur.array_of("cmd", 5)?;
    let ns = cur.str("cmd.ns")?.into();
    let func = cur.str("cmd.func")?.into();
    let marker = cur.peek()?;
    if !matches!(marker, 0x80..=0x8f | 0xde | 0xdf) {
        return Err(DecodeError::WrongType {
            field: "cmd.kwargs",
            expected: "a map",
            found: kind_name(marker),
            at: cur.pos(),
        });
    }
    let kwargs = Payload::from_checked(cur.raw_value(body)?);
    let caller = read_caller(cur, peer, "cmd.caller_uid")?;
    let cid = cur.str("cmd.cid")?.into();
    Ok(Cmd {
        ns,
        func,
        kwargs,
        caller,
        cid,
        trace: None,
    })
}

fn read_error(cur: &mut Cursor<'_>) -> Result<ErrorInfo, DecodeError> {
    let entries = cur.map_len("error")?;
    let (mut type_str, mut tb_str, mut extra) = (None, None, Vec::new());
    for _ in 0..entries {
        let Some(key) = cur.str_if_any()? else {
            cur.skip_value()?;
            cur.skip_value()?;
            continue;
        };
        match key {
            "type_str" => type_str = Some(cur.str("error.type_str")?.to_owned()),
            "tb_str" => tb_str = Some(cur.str("error.tb_str")?.to_owned()),
            other => extra.push((other.to_owned(), read_dynamic(cur, "error")?)),
        }
    }
    Ok(ErrorInfo {
        type_str: match type_str {
            Some(type_str) => type_str,
            None => {
                return Err(DecodeError::MissingKey {
                    message: "error",
                    key: "type_str",
                });
            }
        },
        tb_str: tb_str.unwrap_or_default(),
        extra,
    })
}

/// Reads one value as a dynamic tree (bounded depth, checked by rmpv).
fn read_dynamic(cur: &mut Cursor<'_>, field: &'static str) -> Result<Value, DecodeError> {
    let range = cur.skip_value()?;
    let mut slice = cur.slice(range);
    check_nesting(slice, MAX_NESTING)?;
    rmpv::decode::read_value(&mut slice).map_err(|e| DecodeError::InvalidValue {
        field,
        detail: e.to_string(),
    })
}

fn read_spawn_init(body: &Bytes, f: &Fields) -> Result<SpawnInit, DecodeError> {
    const MSG: &str = "spawn init";
    let dynamic = |range: &Option<Range<usize>>, key: &'static str| match range {
        Some(range) => read_dynamic(&mut Cursor::new(&body[..range.end]).seek(range.start), key),
        None => Err(DecodeError::MissingKey { message: MSG, key }),
    };
    let invalid = |field: &'static str, detail: &str| DecodeError::InvalidValue {
        field,
        detail: detail.to_owned(),
    };
    let enable_modules = match dynamic(&f.enable_modules, "enable_modules")? {
        Value::Map(entries) => entries
            .into_iter()
            .map(|(k, v)| match (k.as_str(), v.as_str()) {
                (Some(ns), Some(path)) => Ok((ns.to_owned(), path.to_owned())),
                _ => Err(invalid("enable_modules", "expected a map of strings")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(invalid("enable_modules", "expected a map")),
    };
    let registrar = WireAddr::from_value(&dynamic(&f.arb_addr, "_arb_addr")?)
        .ok_or_else(|| invalid("_arb_addr", "expected [host, port]"))?;
    let bind_host = dynamic(&f.bind_host, "bind_host")?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid("bind_host", "expected a string"))?;
    let bind_port = dynamic(&f.bind_port, "bind_port")?
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| invalid("bind_port", "expected a port number"))?;
    let parent_main_data = match &f.parent_main_data {
        Some(_) => dynamic(&f.parent_main_data, "_parent_main_data")?,
        None => Value::Map(Vec::new()),
    };
    let runtime_vars = match &f.runtime_vars {
        Some(_) => read_runtime_vars(dynamic(&f.runtime_vars, "_runtime_vars")?)?,
        None => RuntimeVars {
            debug_mode: false,
            is_root: false,
            root_mailbox: registrar.clone(),
            extra: Vec::new(),
        },
    };
    Ok(SpawnInit {
        parent_main_data,
        enable_modules,
        registrar,
        bind_host,
        bind_port,
        runtime_vars,
    })
}

fn read_runtime_vars(value: Value) -> Result<RuntimeVars, DecodeError> {
    let Value::Map(entries) = value else {
        return Err(DecodeError::InvalidValue {
            field: "_runtime_vars",
            detail: "expected a map".into(),
        });
    };
    let mut vars = RuntimeVars {
        debug_mode: false,
        is_root: false,
        root_mailbox: WireAddr {
            host: String::new(),
            port: 0,
        },
        extra: Vec::new(),
    };
    for (key, value) in entries {
        let Some(key) = key.as_str() else { continue };
        match (key, &value) {
            ("_debug_mode", Value::Boolean(b)) => vars.debug_mode = *b,
            ("_is_root", Value::Boolean(b)) => vars.is_root = *b,
            ("_root_mailbox", v) if WireAddr::from_value(v).is_some() => {
                if let Some(addr) = WireAddr::from_value(v) {
                    vars.root_mailbox = addr;
                }
            }
            (other, _) => vars.extra.push((other.to_owned(), value)),
        }
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `cmd` frame body from `caller`.
    fn cmd_from(caller: &Uid) -> Bytes {
        let kwargs = Payload::encode(&std::collections::BTreeMap::from([("x", 1)])).unwrap();
        let frame = Msg::cmd_frame(crate::CmdRef {
            ns: "ns",
            func: "f",
            kwargs: &kwargs,
            caller,
            cid: "c1",
            trace: None,
        })
        .unwrap();
        frame.slice(crate::frame::HEADER_LEN..)
    }

    #[test]
    fn only_a_whole_asyncfunc_functype_is_a_confirmation() {
        let frame = |kind| {
            let msg = Msg::FuncType {
                cid: "3f2a9c1e-12".into(),
                kind,
            };
            let mut body = bytes::BytesMut::new();
            msg.write_body(&mut body);
            body.freeze()
        };
        let confirmation = frame(CallKind::AsyncFunc);
        assert!(is_asyncfunc_confirmation(&confirmation));
        assert!(!is_asyncfunc_confirmation(&frame(CallKind::AsyncGen)));
        assert!(!is_asyncfunc_confirmation(&frame(CallKind::Context)));
        // Cut short, or with anything after the cid: not one (decoded, and refused there).
        assert!(!is_asyncfunc_confirmation(
            &confirmation[..confirmation.len() - 1]
        ));
        let mut longer = confirmation.to_vec();
        longer.push(0xc0);
        assert!(!is_asyncfunc_confirmation(&longer));
        // A long cid (str8) too.
        let mut long = bytes::BytesMut::new();
        Msg::FuncType {
            cid: "c".repeat(40).as_str().into(),
            kind: CallKind::AsyncFunc,
        }
        .write_body(&mut long);
        assert!(is_asyncfunc_confirmation(&long));
    }

    #[test]
    fn a_cmd_from_the_peer_shares_its_uid_and_any_other_caller_is_decoded() {
        let peer = Arc::new(Uid {
            name: "peer".into(),
            uuid: "6b1e2c1a-0000-4000-8000-000000000001".into(),
        });
        let Msg::Cmd(cmd) = Msg::decode_from(cmd_from(&peer), Some(&peer)).unwrap() else {
            panic!("not a cmd");
        };
        assert!(Arc::ptr_eq(&cmd.caller, &peer));
        // Same name, another uuid: its own uid.
        let other = Uid {
            name: "peer".into(),
            uuid: "6b1e2c1a-0000-4000-8000-000000000002".into(),
        };
        let Msg::Cmd(cmd) = Msg::decode_from(cmd_from(&other), Some(&peer)).unwrap() else {
            panic!("not a cmd");
        };
        assert!(!Arc::ptr_eq(&cmd.caller, &peer));
        assert_eq!(*cmd.caller, other);
        // Without a known peer, as before.
        let Msg::Cmd(cmd) = Msg::decode(cmd_from(&other)).unwrap() else {
            panic!("not a cmd");
        };
        assert_eq!(*cmd.caller, other);
    }

    #[test]
    fn keys_in_any_order_and_unknown_keys_are_fine() {
        // {"cid": "c1", "x-extra": [1], "return": 3}
        let body = Bytes::from_static(b"\x83\xa3cid\xa2c1\xa7x-extra\x91\x01\xa6return\x03");
        assert_eq!(
            Msg::decode(body).unwrap(),
            Msg::Return {
                cid: "c1".into(),
                value: Payload::encode(&3).unwrap()
            }
        );
    }

    #[test]
    fn the_one_pass_reading_agrees_with_the_general_one() {
        // {"return": 3, "cid": "c1"} (read in one pass) and its keys swapped (the general way).
        let fast = Msg::decode(Bytes::from_static(b"\x82\xa6return\x03\xa3cid\xa2c1")).unwrap();
        let general = Msg::decode(Bytes::from_static(b"\x82\xa3cid\xa2c1\xa6return\x03")).unwrap();
        assert_eq!(fast, general);
        // {"functype": "asyncfunc", "cid": "c1"}, compared as bytes, and its keys swapped.
        let fast = Msg::decode(Bytes::from_static(
            b"\x82\xa8functype\xa9asyncfunc\xa3cid\xa2c1",
        ))
        .unwrap();
        let general = Msg::decode(Bytes::from_static(
            b"\x82\xa3cid\xa2c1\xa8functype\xa9asyncfunc",
        ))
        .unwrap();
        assert_eq!(fast, general);
        assert_eq!(
            fast,
            Msg::FuncType {
                cid: "c1".into(),
                kind: CallKind::AsyncFunc
            }
        );
        // {"functype": "nope", "cid": "c1"}: not a kind, so the general way reports it.
        assert!(matches!(
            Msg::decode(Bytes::from_static(b"\x82\xa8functype\xa4nope\xa3cid\xa2c1")),
            Err(DecodeError::InvalidValue {
                field: "functype",
                ..
            })
        ));
        // {"cmd": ["ns", "f", 1, ["a", "b"], "c1"]}: kwargs not a map, still answered by cid.
        let bad = b"\x81\xa3cmd\x95\xa2ns\xa1f\x01\x92\xa1a\xa1b\xa2c1";
        assert!(matches!(
            Msg::decode(Bytes::from_static(bad)),
            Err(DecodeError::BadCmd { cid: Some(cid), .. }) if cid == "c1"
        ));
        // Trailing bytes after a message read in one pass are still refused.
        assert!(matches!(
            Msg::decode(Bytes::from_static(b"\x82\xa6return\x03\xa3cid\xa2c1\x00")),
            Err(DecodeError::TrailingBytes { count: 1 })
        ));
    }

    #[test]
    fn deeply_nested_error_extras_are_refused_without_recursing() {
        // {"error": {"type_str": "x", "k": [[[...nil...]]]}} nested far past the limit.
        let mut body = b"\x81\xa5error\x82\xa8type_str\xa1x\xa1k".to_vec();
        body.extend(std::iter::repeat_n(0x91, 50_000));
        body.push(0xc0);
        assert!(matches!(
            Msg::decode(Bytes::from(body)),
            Err(DecodeError::TooDeep { .. })
        ));
    }

    #[test]
    fn handshake_uids_outside_the_limits_are_refused() {
        let uid = |name: &str, uuid: &str| {
            let mut body = bytes::BytesMut::new();
            Msg::Handshake(Uid {
                name: name.into(),
                uuid: uuid.into(),
            })
            .write_frame(&mut body)
            .unwrap();
            Msg::decode_handshake(Bytes::from(body).slice(4..))
        };
        assert!(uid("worker", "0b8e6b34-0000-4000-8000-000000000000").is_ok());
        assert!(matches!(uid("", ""), Err(DecodeError::BadUid { .. })));
        assert!(matches!(uid("w", ""), Err(DecodeError::BadUid { .. })));
        let long = "n".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(uid(&long, "u"), Err(DecodeError::BadUid { .. })));
        let long = "u".repeat(MAX_UUID_LEN + 1);
        assert!(matches!(uid("w", &long), Err(DecodeError::BadUid { .. })));
    }

    #[test]
    fn wrong_shapes_are_typed_errors() {
        // cmd with 4 fields
        let body = Bytes::from_static(b"\x81\xa3cmd\x94\xa1a\xa1b\x80\x92\xa1x\xa1y");
        let arity = DecodeError::WrongArity {
            field: "cmd",
            expected: 5,
            found: 4,
        };
        match Msg::decode(body) {
            Err(DecodeError::BadCmd { cid: None, detail }) => {
                assert_eq!(detail, arity.to_string());
            }
            other => panic!("{other:?}"),
        }
        // cmd whose kwargs are not a map: its cid is still read, to answer it
        let body = Bytes::from_static(b"\x81\xa3cmd\x95\xa1a\xa1b\x07\x92\xa1x\xa1y\xa2c1");
        match Msg::decode(body) {
            Err(DecodeError::BadCmd {
                cid: Some(cid),
                detail,
            }) => {
                assert_eq!(cid, "c1");
                assert!(detail.contains("cmd.kwargs"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        // non-string cid
        let body = Bytes::from_static(b"\x82\xa6return\x03\xa3cid\x07");
        assert!(matches!(
            Msg::decode(body),
            Err(DecodeError::WrongType { field: "cid", .. })
        ));
        // unknown functype
        let body = Bytes::from_static(b"\x82\xa8functype\xa3foo\xa3cid\xa1c");
        assert!(matches!(
            Msg::decode(body),
            Err(DecodeError::InvalidValue { .. })
        ));
        // a map that is no message
        let body = Bytes::from_static(b"\x81\xa5hello\x01");
        assert!(matches!(
            Msg::decode(body),
            Err(DecodeError::UnknownMessage { .. })
        ));
        // trailing bytes
        let body = Bytes::from_static(b"\xc0\xc0");
        assert!(matches!(
            Msg::decode(body),
            Err(DecodeError::TrailingBytes { count: 1 })
        ));
    }
}
