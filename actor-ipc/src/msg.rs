//! The message catalogue of tractor 0.1.0a5's protocol as Rust types.
//!
//! Every frame body is one of: a handshake (`[name, uuid]`), the sentinel (`nil`), or a map
//! whose keys say what it is (`cmd`, `functype`, `return`, `yield`, `started`, `stop`,
//! `error`, or the spawn init map). [`Msg::decode`] accepts keys in any order, ignores keys it
//! does not know, and leaves payloads as [`Payload`] slices of the frame.
//! [`Msg::write_frame`] writes keys in the order tractor does, so frames match its byte for byte.

use std::{fmt, ops::Range};

use bytes::{BufMut, Bytes, BytesMut};
use rmpv::Value;

use crate::{
    addr::WireAddr,
    error::{DecodeError, EncodeError},
    frame::{FrameStart, HEADER_LEN, put_framed},
    msgpack::{
        Cursor, MAX_NESTING, check_nesting, put_array_len, put_bool, put_map_len, put_nil, put_str,
        put_uint, put_value,
    },
    payload::Payload,
};

/// An actor's identity: its name and a random UUID4 (36-character text), sent as the handshake
/// and as the caller of every call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid {
    /// The actor's name; several actors may share one.
    pub name: String,
    /// What makes this actor unique.
    pub uuid: String,
}

impl Uid {
    /// A fresh uid for an actor called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            uuid: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// The key a registrar files this actor under: `name.uuid`.
    pub fn registry_key(&self) -> String {
        format!("{}.{}", self.name, self.uuid)
    }

    /// As a dynamic value: `[name, uuid]`.
    pub fn to_value(&self) -> Value {
        Value::Array(vec![self.name.as_str().into(), self.uuid.as_str().into()])
    }

    /// From a dynamic `[name, uuid]` value; `None` if it has another shape.
    pub fn from_value(value: &Value) -> Option<Self> {
        match value.as_array()?.as_slice() {
            [name, uuid] => Some(Self {
                name: name.as_str()?.to_owned(),
                uuid: uuid.as_str()?.to_owned(),
            }),
            _ => None,
        }
    }

    fn write(&self, buf: &mut BytesMut) {
        put_array_len(buf, 2);
        put_str(buf, &self.name);
        put_str(buf, &self.uuid);
    }

    fn read(cur: &mut Cursor<'_>, field: &'static str) -> Result<Self, DecodeError> {
        cur.array_of(field, 2)?;
        Ok(Self {
            name: cur.str(field)?.to_owned(),
            uuid: cur.str(field)?.to_owned(),
        })
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "('{}', '{}')", self.name, self.uuid)
    }
}

/// What kind of function a call runs, announced by the first reply (`functype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// Request/response: `return` or `error`.
    AsyncFunc,
    /// One-way stream from the callee: `yield`*, then `stop` or `error`.
    AsyncGen,
    /// Bidirectional context: `started`, streams both ways, then `return` or `error`.
    Context,
}

impl CallKind {
    /// The protocol's name for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AsyncFunc => "asyncfunc",
            Self::AsyncGen => "asyncgen",
            Self::Context => "context",
        }
    }

    /// Parses the protocol's name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "asyncfunc" => Some(Self::AsyncFunc),
            "asyncgen" => Some(Self::AsyncGen),
            "context" => Some(Self::Context),
            _ => None,
        }
    }
}

/// A call: `{"cmd": [ns, func, kwargs, caller_uid, cid]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmd {
    /// Namespace (`self` for runtime calls).
    pub ns: String,
    /// Function name.
    pub func: String,
    /// Arguments by name: a msgpack map, still encoded.
    pub kwargs: Payload,
    /// Who calls.
    pub caller: Uid,
    /// The call id, unique among the caller's calls.
    pub cid: String,
}

/// A remote failure: `{"tb_str": trace, "type_str": type name, ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorInfo {
    /// The bare name of the error type (e.g. `ValueError`, `ContextCancelled`).
    pub type_str: String,
    /// A human-readable trace.
    pub tb_str: String,
    /// Any other keys, kept in order (the runtime may add e.g. `src_uid`, `relay_path`).
    pub extra: Vec<(String, Value)>,
}

impl ErrorInfo {
    /// An error with no extra keys.
    pub fn new(type_str: impl Into<String>, tb_str: impl Into<String>) -> Self {
        Self {
            type_str: type_str.into(),
            tb_str: tb_str.into(),
            extra: Vec::new(),
        }
    }

    /// An extra key's value, if present.
    pub fn extra(&self, key: &str) -> Option<&Value> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Runtime variables a parent hands its child in the spawn init map.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeVars {
    /// tractor's debugger mode flag.
    pub debug_mode: bool,
    /// Whether the receiver is the tree's root (always false for a spawned child).
    pub is_root: bool,
    /// The root actor's address.
    pub root_mailbox: WireAddr,
    /// Other keys, kept in order.
    pub extra: Vec<(String, Value)>,
}

/// The one map a parent sends a child right after the child's handshake.
#[derive(Debug, Clone, PartialEq)]
pub struct SpawnInit {
    /// tractor's `_parent_main_data` (how to re-import the parent's `__main__`); `{}` from us.
    pub parent_main_data: Value,
    /// The namespaces the child serves (`ns → path`, the path empty for Rust namespaces).
    pub enable_modules: Vec<(String, String)>,
    /// The registrar's address (`_arb_addr`).
    pub registrar: WireAddr,
    /// Where the child listens.
    pub bind_host: String,
    /// The port the child listens on (0 = any).
    pub bind_port: u16,
    /// `_runtime_vars`.
    pub runtime_vars: RuntimeVars,
}

/// One protocol message.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// Each side's first frame: its uid.
    Handshake(Uid),
    /// `nil`: stop processing messages on this connection.
    Sentinel,
    /// A call.
    Cmd(Box<Cmd>),
    /// The first reply to a call: what kind of function runs.
    FuncType {
        /// The call's id.
        cid: String,
        /// The kind.
        kind: CallKind,
    },
    /// A function's result (or a context's final result).
    Return {
        /// The call's id.
        cid: String,
        /// The result.
        value: Payload,
    },
    /// One stream item.
    Yield {
        /// The call's id.
        cid: String,
        /// The item.
        value: Payload,
    },
    /// A context's first value, sent once by the callee.
    Started {
        /// The call's id.
        cid: String,
        /// The value.
        value: Payload,
    },
    /// End of a stream.
    Stop {
        /// The call's id.
        cid: String,
    },
    /// A failure: of a call when `cid` is set, of the runtime (e.g. a child that could not
    /// start) when it is not.
    Error {
        /// The failed call's id, if any.
        cid: Option<String>,
        /// What failed.
        error: Box<ErrorInfo>,
    },
    /// The spawn init map.
    SpawnInit(Box<SpawnInit>),
    /// Flow-control extension (not in tractor 0.1.0a5, sent only to peers that enabled it):
    /// the receiver of stream `cid` grants its sender `credit` more items.
    /// `{"credit": n, "cid": cid}`; see `docs/protocol-notes.md`.
    Credit {
        /// The stream's call id.
        cid: String,
        /// How many more items may be sent.
        credit: u64,
    },
}

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
}

const MAX_KEYS_REPORTED: usize = 8;

impl From<Cmd> for Msg {
    fn from(cmd: Cmd) -> Self {
        Self::Cmd(Box::new(cmd))
    }
}

impl Msg {
    /// Decodes one frame body.
    pub fn decode(body: Bytes) -> Result<Self, DecodeError> {
        let mut cur = Cursor::new(&body);
        let msg = match cur.peek()? {
            0xc0 => {
                cur.skip_value()?;
                Self::Sentinel
            }
            0x90..=0x9f | 0xdc | 0xdd => Self::Handshake(Uid::read(&mut cur, "handshake")?),
            0x80..=0x8f | 0xde | 0xdf => Self::decode_map(&body, &mut cur)?,
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
                    found: crate::msgpack::kind_name(m),
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
        let uid = Uid::read(&mut cur, "handshake")?;
        match cur.remaining() {
            0 => Ok(uid),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    fn decode_map(body: &Bytes, cur: &mut Cursor<'_>) -> Result<Self, DecodeError> {
        let entries = cur.map_len("message")?;
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
        let cid = |message: &'static str| -> Result<String, DecodeError> {
            let range = f.cid.as_ref().ok_or(DecodeError::MissingKey {
                message,
                key: "cid",
            })?;
            Ok(at(range).str("cid")?.to_owned())
        };
        let payload = |range: &Range<usize>| Payload::from_checked(body.slice(range.clone()));

        if let Some(range) = &f.cmd {
            return Ok(Self::Cmd(Box::new(read_cmd(body, &mut at(range))?)));
        }
        if let Some(range) = &f.error {
            let cid = match &f.cid {
                Some(range) if body.get(range.start) != Some(&0xc0) => {
                    Some(at(range).str("cid")?.to_owned())
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
        if f.enable_modules.is_some() {
            return Ok(Self::SpawnInit(Box::new(read_spawn_init(body, &f)?)));
        }
        Err(DecodeError::UnknownMessage { keys: unknown })
    }

    /// Writes this message's msgpack body (no length prefix).
    pub fn write_body(&self, buf: &mut BytesMut) {
        match self {
            Self::Handshake(uid) => uid.write(buf),
            Self::Sentinel => put_nil(buf),
            Self::Cmd(cmd) => put_cmd(
                buf,
                CmdRef {
                    ns: &cmd.ns,
                    func: &cmd.func,
                    kwargs: &cmd.kwargs,
                    caller: &cmd.caller,
                    cid: &cmd.cid,
                },
            ),
            Self::FuncType { cid, kind } => put_functype(buf, cid, *kind),
            Self::Return { cid, value } => put_payload_msg(buf, "return", value, cid),
            Self::Yield { cid, value } => put_payload_msg(buf, "yield", value, cid),
            Self::Started { cid, value } => put_payload_msg(buf, "started", value, cid),
            Self::Stop { cid } => {
                put_map_len(buf, 2);
                put_str(buf, "stop");
                put_bool(buf, true);
                put_cid(buf, cid);
            }
            Self::Error { cid, error } => {
                put_map_len(buf, if cid.is_some() { 2 } else { 1 });
                put_str(buf, "error");
                put_map_len(buf, 2 + error.extra.len());
                put_str(buf, "tb_str");
                put_str(buf, &error.tb_str);
                put_str(buf, "type_str");
                put_str(buf, &error.type_str);
                put_entries(buf, &error.extra);
                if let Some(cid) = cid {
                    put_cid(buf, cid);
                }
            }
            Self::SpawnInit(init) => write_spawn_init(buf, init),
            Self::Credit { cid, credit } => {
                put_map_len(buf, 2);
                put_str(buf, "credit");
                put_uint(buf, *credit);
                put_cid(buf, cid);
            }
        }
    }

    /// Appends this message as one complete frame (length prefix and body) to `buf`.
    pub fn write_frame(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_framed(buf, |buf| self.write_body(buf))
    }

    /// A `yield` frame, written straight from its parts (the stream hot path: no `Msg` built,
    /// no cid copied).
    pub fn yield_frame(cid: &str, value: &Payload) -> Result<Bytes, EncodeError> {
        payload_frame("yield", cid, value)
    }

    /// Appends a `yield` frame to `buf` (a stream producer reuses one buffer for many frames:
    /// `buf.split().freeze()` then hands each frame out without a fresh allocation).
    pub fn put_yield_frame(
        buf: &mut BytesMut,
        cid: &str,
        value: &Payload,
    ) -> Result<(), EncodeError> {
        put_framed(buf, |buf| put_payload_msg(buf, "yield", value, cid))
    }

    /// A `yield` frame as three buffers to write back to back: its start, the payload itself
    /// (shared, not copied: for large items), and its end.
    pub fn yield_frame_parts(cid: &str, value: &Payload) -> Result<[Bytes; 3], EncodeError> {
        let mut tail = BytesMut::with_capacity(16 + cid.len());
        put_cid(&mut tail, cid);
        let mut head = BytesMut::with_capacity(HEADER_LEN + 8);
        let frame = FrameStart::begin(&mut head);
        put_payload_msg_head(&mut head, "yield");
        frame.finish_with_trailing(&mut head, value.as_bytes().len() + tail.len())?;
        Ok([head.freeze(), value.clone().into_bytes(), tail.freeze()])
    }

    /// A `return` frame, written straight from its parts.
    pub fn return_frame(cid: &str, value: &Payload) -> Result<Bytes, EncodeError> {
        payload_frame("return", cid, value)
    }

    /// Appends a request/response call's whole answer to `buf`: the `functype` frame, then
    /// the `return` frame (written together, they go out in one write).
    pub fn put_answer_frames(
        buf: &mut BytesMut,
        cid: &str,
        value: &Payload,
    ) -> Result<(), EncodeError> {
        buf.reserve(2 * (HEADER_LEN + 16 + cid.len()) + 16 + value.as_bytes().len());
        put_framed(buf, |buf| put_functype(buf, cid, CallKind::AsyncFunc))?;
        put_framed(buf, |buf| put_payload_msg(buf, "return", value, cid))
    }

    /// A `cmd` frame, written straight from its parts (the calling hot path: no `Msg` built,
    /// nothing copied but into the frame).
    pub fn cmd_frame(cmd: CmdRef<'_>) -> Result<Bytes, EncodeError> {
        let size = HEADER_LEN
            + 32
            + cmd.ns.len()
            + cmd.func.len()
            + cmd.kwargs.as_bytes().len()
            + cmd.caller.name.len()
            + cmd.caller.uuid.len()
            + cmd.cid.len();
        let mut buf = BytesMut::with_capacity(size);
        put_framed(&mut buf, |buf| put_cmd(buf, cmd))?;
        Ok(buf.freeze())
    }

    /// This message as one complete frame.
    pub fn to_frame(&self) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::with_capacity(self.size_hint());
        self.write_frame(&mut buf)?;
        Ok(buf.freeze())
    }

    /// The message as a dynamic value, exactly as it goes on the wire (for tools and logs).
    pub fn to_value(&self) -> Value {
        let mut buf = BytesMut::new();
        self.write_body(&mut buf);
        // What we just wrote is well-formed msgpack, but a payload from the network may nest
        // too deeply to build as a tree: show nil then rather than fail a log line.
        Payload::from_checked(buf.freeze())
            .to_value()
            .unwrap_or(Value::Nil)
    }

    /// The call id this message belongs to, if any.
    pub fn cid(&self) -> Option<&str> {
        match self {
            Self::Cmd(cmd) => Some(&cmd.cid),
            Self::FuncType { cid, .. }
            | Self::Return { cid, .. }
            | Self::Yield { cid, .. }
            | Self::Started { cid, .. }
            | Self::Stop { cid }
            | Self::Credit { cid, .. } => Some(cid),
            Self::Error { cid, .. } => cid.as_deref(),
            Self::Handshake(_) | Self::Sentinel | Self::SpawnInit(_) => None,
        }
    }

    fn size_hint(&self) -> usize {
        const OVERHEAD: usize = 64;
        OVERHEAD
            + match self {
                Self::Cmd(cmd) => cmd.kwargs.as_bytes().len() + cmd.ns.len() + cmd.func.len() + 64,
                Self::Return { value, .. }
                | Self::Yield { value, .. }
                | Self::Started { value, .. } => value.as_bytes().len(),
                Self::Error { error, .. } => error.tb_str.len() + error.type_str.len(),
                _ => 0,
            }
    }
}

fn payload_frame(key: &str, cid: &str, value: &Payload) -> Result<Bytes, EncodeError> {
    const OVERHEAD: usize = HEADER_LEN + 16;
    let mut buf = BytesMut::with_capacity(OVERHEAD + cid.len() + value.as_bytes().len());
    put_framed(&mut buf, |buf| put_payload_msg(buf, key, value, cid))?;
    Ok(buf.freeze())
}

fn put_cid(buf: &mut BytesMut, cid: &str) {
    put_str(buf, "cid");
    put_str(buf, cid);
}

/// A `cmd`'s parts, borrowed: what [`Msg::cmd_frame`] writes.
#[derive(Debug, Clone, Copy)]
pub struct CmdRef<'a> {
    /// The namespace of the function.
    pub ns: &'a str,
    /// The function's name.
    pub func: &'a str,
    /// Its keyword arguments, an encoded map.
    pub kwargs: &'a Payload,
    /// Who calls.
    pub caller: &'a Uid,
    /// The call's id.
    pub cid: &'a str,
}

fn put_cmd(buf: &mut BytesMut, cmd: CmdRef<'_>) {
    put_map_len(buf, 1);
    put_str(buf, "cmd");
    put_array_len(buf, 5);
    put_str(buf, cmd.ns);
    put_str(buf, cmd.func);
    buf.put_slice(cmd.kwargs.as_bytes());
    cmd.caller.write(buf);
    put_str(buf, cmd.cid);
}

fn put_functype(buf: &mut BytesMut, cid: &str, kind: CallKind) {
    put_map_len(buf, 2);
    put_str(buf, "functype");
    put_str(buf, kind.as_str());
    put_cid(buf, cid);
}

/// `{key: value, "cid": cid}`: the shape of `return`, `yield` and `started`.
fn put_payload_msg(buf: &mut BytesMut, key: &str, value: &Payload, cid: &str) {
    put_payload_msg_head(buf, key);
    buf.put_slice(value.as_bytes());
    put_cid(buf, cid);
}

/// What precedes the value in [`put_payload_msg`].
fn put_payload_msg_head(buf: &mut BytesMut, key: &str) {
    put_map_len(buf, 2);
    put_str(buf, key);
}

fn put_entries(buf: &mut BytesMut, entries: &[(String, Value)]) {
    for (key, value) in entries {
        put_str(buf, key);
        put_value(buf, value);
    }
}

fn put_wire_addr(buf: &mut BytesMut, addr: &WireAddr) {
    put_array_len(buf, 2);
    put_str(buf, &addr.host);
    put_uint(buf, u64::from(addr.port));
}

fn read_cmd(body: &Bytes, cur: &mut Cursor<'_>) -> Result<Cmd, DecodeError> {
    cur.array_of("cmd", 5)?;
    let ns = cur.str("cmd.ns")?.to_owned();
    let func = cur.str("cmd.func")?.to_owned();
    let marker = cur.peek()?;
    if !matches!(marker, 0x80..=0x8f | 0xde | 0xdf) {
        return Err(DecodeError::WrongType {
            field: "cmd.kwargs",
            expected: "a map",
            found: crate::msgpack::kind_name(marker),
            at: cur.pos(),
        });
    }
    let kwargs = Payload::from_checked(cur.raw_value(body)?);
    let caller = Uid::read(cur, "cmd.caller_uid")?;
    let cid = cur.str("cmd.cid")?.to_owned();
    Ok(Cmd {
        ns,
        func,
        kwargs,
        caller,
        cid,
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
        type_str: type_str.ok_or(DecodeError::MissingKey {
            message: "error",
            key: "type_str",
        })?,
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

fn write_spawn_init(buf: &mut BytesMut, init: &SpawnInit) {
    put_map_len(buf, 6);
    put_str(buf, "_parent_main_data");
    put_value(buf, &init.parent_main_data);
    put_str(buf, "enable_modules");
    put_map_len(buf, init.enable_modules.len());
    for (ns, path) in &init.enable_modules {
        put_str(buf, ns);
        put_str(buf, path);
    }
    put_str(buf, "_arb_addr");
    put_wire_addr(buf, &init.registrar);
    put_str(buf, "bind_host");
    put_str(buf, &init.bind_host);
    put_str(buf, "bind_port");
    put_uint(buf, u64::from(init.bind_port));
    put_str(buf, "_runtime_vars");
    let vars = &init.runtime_vars;
    put_map_len(buf, 3 + vars.extra.len());
    put_str(buf, "_debug_mode");
    put_bool(buf, vars.debug_mode);
    put_str(buf, "_is_root");
    put_bool(buf, vars.is_root);
    put_str(buf, "_root_mailbox");
    put_wire_addr(buf, &vars.root_mailbox);
    put_entries(buf, &vars.extra);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yield_frame_in_parts_is_the_same_frame() {
        let mut bin = vec![0xc6, 0, 1, 0x11, 0x70];
        bin.resize(bin.len() + 70_000, 7);
        let value = Payload::from_msgpack(Bytes::from(bin)).unwrap();
        let whole = Msg::yield_frame("c-1", &value).unwrap();
        let parts = Msg::yield_frame_parts("c-1", &value).unwrap();
        assert_eq!(parts.concat(), whole.to_vec());
        // The payload is shared, not copied.
        assert_eq!(parts[1].as_ptr(), value.as_bytes().as_ptr());
    }

    fn roundtrip(msg: &Msg) -> Msg {
        let frame = msg.to_frame().unwrap();
        Msg::decode(frame.slice(HEADER_LEN..)).unwrap()
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
    fn direct_payload_frames_match_messages() {
        let value = Payload::encode(&[1, 2, 3]).unwrap();
        let msg = Msg::Yield {
            cid: "c9".into(),
            value: value.clone(),
        };
        assert_eq!(
            Msg::yield_frame("c9", &value).unwrap(),
            msg.to_frame().unwrap()
        );
        let msg = Msg::Return {
            cid: "c9".into(),
            value: value.clone(),
        };
        assert_eq!(
            Msg::return_frame("c9", &value).unwrap(),
            msg.to_frame().unwrap()
        );
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
    fn wrong_shapes_are_typed_errors() {
        // cmd with 4 fields
        let body = Bytes::from_static(b"\x81\xa3cmd\x94\xa1a\xa1b\x80\x92\xa1x\xa1y");
        assert!(matches!(
            Msg::decode(body),
            Err(DecodeError::WrongArity {
                field: "cmd",
                expected: 5,
                found: 4
            })
        ));
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
