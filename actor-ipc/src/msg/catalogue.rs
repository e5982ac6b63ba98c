//! The message catalogue: every message of the protocol as a Rust type, and their small
//! accessors. How they travel is elsewhere: `decode.rs` reads them, `encode.rs` writes
//! them.

use std::fmt;

use rmpv::Value;

/// A call id, kept inline when short (this runtime's are; tractor's 36-character uuids are
/// not): the messages of every call carry one, and a call id costs no allocation then.
pub type Cid = compact_str::CompactString;

use crate::{addr::WireAddr, payload::Payload};

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
}

/// `name[uuid prefix]`, e.g. `worker-1[3f2a9c1e]`: readable in messages and logs, and enough of
/// the uuid to tell two actors of one name apart (the full uid is in `Debug` and on the wire).
impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.uuid.get(..8).unwrap_or(&self.uuid);
        write!(f, "{}[{short}]", self.name)
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
    /// Namespace (`self` for runtime calls); inline when short.
    pub ns: compact_str::CompactString,
    /// Function name; inline when short.
    pub func: compact_str::CompactString,
    /// Arguments by name: a msgpack map, still encoded.
    pub kwargs: Payload,
    /// Who calls; shared, because a connection's calls nearly all come from its peer, whose
    /// uid a reader decodes once ([`crate::Msg::decode_from`]) instead of once per call.
    pub caller: std::sync::Arc<Uid>,
    /// The call id, unique among the caller's calls.
    pub cid: Cid,
    /// The caller's trace context, a W3C `traceparent` (`00-TRACEID-SPANID-FLAGS`): the
    /// optional top-level key `trace` of the `cmd` message, beside `cmd` (tractor 0.1.0a5
    /// reads only `cmd` and ignores it). `None` when the caller sends none.
    pub trace: Option<String>,
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
        cid: Cid,
        /// The kind.
        kind: CallKind,
    },
    /// A function's result (or a context's final result).
    Return {
        /// The call's id.
        cid: Cid,
        /// The result.
        value: Payload,
    },
    /// One stream item.
    Yield {
        /// The call's id.
        cid: Cid,
        /// The item.
        value: Payload,
    },
    /// A context's first value, sent once by the callee.
    Started {
        /// The call's id.
        cid: Cid,
        /// The value.
        value: Payload,
    },
    /// End of a stream.
    Stop {
        /// The call's id.
        cid: Cid,
    },
    /// A failure: of a call when `cid` is set, of the runtime (e.g. a child that could not
    /// start) when it is not.
    Error {
        /// The failed call's id, if any.
        cid: Option<Cid>,
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
        cid: Cid,
        /// How many more items may be sent.
        credit: u64,
    },
    /// Heartbeat extension (not in tractor 0.1.0a5, sent only to peers that enabled it):
    /// "this side is alive", sent when a connection would otherwise be quiet.
    /// `{"heartbeat": n}` with a sequence number `n`; see `docs/protocol-notes.md`.
    Heartbeat(u64),
}

impl From<Cmd> for Msg {
    fn from(cmd: Cmd) -> Self {
        Self::Cmd(Box::new(cmd))
    }
}

impl Msg {
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
            Self::Handshake(_) | Self::Sentinel | Self::SpawnInit(_) | Self::Heartbeat(_) => None,
        }
    }
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
    /// The caller's trace context (see [`Cmd::trace`]).
    pub trace: Option<&'a str>,
}

impl CmdRef<'_> {
    /// About how many bytes its frame takes (never fewer).
    pub fn frame_size(&self) -> usize {
        crate::frame::HEADER_LEN
            + 32
            + self.ns.len()
            + self.func.len()
            + self.kwargs.as_bytes().len()
            + self.caller.name.len()
            + self.caller.uuid.len()
            + self.cid.len()
            + self.trace.map_or(0, |t| t.len() + 8)
    }
}
