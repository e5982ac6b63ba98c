//! The wire layer of the `actor` runtime, and nothing else.
//!
//! This crate speaks the message protocol of the Python actor runtime tractor 0.1.0a5 byte for
//! byte (see `docs/protocol.md` and `docs/protocol-notes.md` in the repository), so Rust and
//! Python actors can talk to each other. It knows about frames, messages, addresses and
//! connections; it knows nothing about actors, nurseries or functions.
//!
//! The layers, bottom up:
//! - [`frame`]: a `u32` little-endian length prefix around one msgpack value, with a maximum
//!   frame size checked *before* any buffer of the declared size is allocated.
//! - [`msg`]: every message kind of the protocol as Rust types. Payloads (call arguments,
//!   returned, yielded and started values) stay raw msgpack ([`Payload`]) until their consumer
//!   decodes them straight into its own type: one decode, no dynamic tree on the hot path.
//! - [`addr`]: TCP and Unix-socket addresses as URLs, and their wire form.
//! - [`transport`], [`channel`] and [`listener`]: connected, handshaken duplexes of messages
//!   with one writer task per connection, and accept loops for both transports.
//!
//! ```
//! use actor_ipc::{Msg, Payload, Uid};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let reply = Msg::Return { cid: "c1".into(), value: Payload::encode(&3_i64)? };
//! let frame = reply.to_frame()?;
//! // u32 LE length, then {"return": 3, "cid": "c1"}
//! assert_eq!(&frame[..4], &16_u32.to_le_bytes());
//! let back = Msg::decode(frame.slice(4..))?;
//! assert_eq!(back, reply);
//! # let _ = Uid::new("root");
//! # Ok(())
//! # }
//! ```

pub mod addr;
mod arena;
pub mod auth;
mod blob;
mod budget;
pub mod channel;
pub mod error;
pub mod frame;
pub mod listener;
pub mod msg;
mod msgpack;
mod outbox;
pub use msgpack::MAX_NESTING;
pub mod payload;
pub mod transport;

pub use addr::{Addr, WireAddr};
pub use auth::Secret;
pub use blob::Blob;
pub use channel::{
    Channel, ChannelConfig, ChannelReader, ChannelSender, FrameSink, SendBudget, TrySendError,
    UNCHARGED_BELOW,
};
pub use error::{
    AuthError, ConnectError, DecodeError, EncodeError, FrameError, HandshakeError, RecvError,
    SendError,
};
pub use frame::{DEFAULT_MAX_FRAME_LEN, FrameCodec};
pub use listener::Listener;
pub use msg::{
    CallKind, Cid, Cmd, CmdRef, ErrorInfo, MAX_NAME_LEN, MAX_UUID_LEN, Msg, RuntimeVars, SpawnInit,
    Uid,
};
pub use payload::Payload;
/// The dynamic msgpack value, for untyped calls and tools (re-exported from `rmpv`).
pub use rmpv::Value;
