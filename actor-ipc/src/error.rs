//! One small error enum per operation: framing, decoding, encoding, connecting, handshaking,
//! sending and receiving. Each variant carries the offending detail (a declared length and the
//! limit, the byte offset of a bad value, the field that had the wrong shape), so a log line is
//! enough to tell what a peer sent.

use std::{io, time::Duration};

use crate::addr::Addr;

/// Reading one length-prefixed frame failed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer declared a frame larger than this side accepts. Nothing of that size was
    /// allocated; the connection must be closed, since the stream can no longer be trusted.
    #[error("frame of {declared} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The length the peer put in the frame header.
        declared: usize,
        /// The configured maximum frame length.
        limit: usize,
    },
    /// The stream ended inside the 4-byte length header.
    #[error("stream ended inside a frame header ({received} of 4 bytes)")]
    TruncatedHeader {
        /// How many header bytes arrived before the end.
        received: usize,
    },
    /// The stream ended inside a frame body.
    #[error("stream ended inside a frame body ({received} of {declared} bytes)")]
    TruncatedBody {
        /// The length the header declared.
        declared: usize,
        /// How many body bytes arrived before the end.
        received: usize,
    },
    /// The socket failed.
    #[error("i/o error while reading a frame: {0}")]
    Io(#[from] io::Error),
    /// The peer began a frame and sent nothing more for `after`
    /// (`ChannelConfig::frame_stall_timeout`).
    #[error("the peer stalled inside a frame ({received} bytes of it, nothing more for {after:?})")]
    Stalled {
        /// The bytes of the frame received.
        received: usize,
        /// How long nothing more came.
        after: Duration,
    },
}

/// A frame's body is not a message of the protocol.
///
/// Offsets (`at`) count bytes from the start of the frame body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A `cmd` message whose call is malformed (kwargs not a map, a field of the wrong type).
    /// The frame was read whole, so the connection is still in step: the call (`cid`, when
    /// it could be read) is answered with an error and the connection goes on.
    #[error("malformed cmd{}: {detail}", cid.as_ref().map(|c| format!(" {c:?}")).unwrap_or_default())]
    BadCmd {
        /// The call's id, if it is a string where the protocol puts it.
        cid: Option<String>,
        /// What is wrong with it (the decoding error, as text: a nested `DecodeError` would
        /// make the type recursive, and its drop glue an out-of-line call on every decode).
        detail: String,
    },
    /// A handshake uid outside the limits (an empty or over-long name or uuid).
    #[error("handshake uid refused: {detail}")]
    BadUid {
        /// Which limit it broke.
        detail: String,
    },
    /// The body ended in the middle of a msgpack value.
    #[error("msgpack value truncated at byte {at}")]
    Truncated {
        /// Where the missing bytes should have been.
        at: usize,
    },
    /// A byte that msgpack never uses as a type marker (0xc1).
    #[error("invalid msgpack marker 0x{marker:02x} at byte {at}")]
    InvalidMarker {
        /// The marker byte.
        marker: u8,
        /// Its offset.
        at: usize,
    },
    /// A value of the wrong msgpack type where the protocol wants another.
    #[error("{field}: expected {expected}, found {found} at byte {at}")]
    WrongType {
        /// The protocol field being read (e.g. `cmd.cid`).
        field: &'static str,
        /// What the protocol requires there.
        expected: &'static str,
        /// What the frame holds instead.
        found: &'static str,
        /// Its offset.
        at: usize,
    },
    /// An array of the wrong length (e.g. a `cmd` with 4 fields, a handshake of 3 strings).
    #[error("{field}: expected an array of {expected} elements, found {found}")]
    WrongArity {
        /// The protocol field being read.
        field: &'static str,
        /// The length the protocol requires.
        expected: usize,
        /// The length in the frame.
        found: usize,
    },
    /// A string that is not UTF-8.
    #[error("{field}: string at byte {at} is not valid UTF-8")]
    InvalidUtf8 {
        /// The protocol field being read.
        field: &'static str,
        /// Its offset.
        at: usize,
    },
    /// A required key is absent.
    #[error("{message} message lacks its {key:?} key")]
    MissingKey {
        /// The kind of message being read.
        message: &'static str,
        /// The missing key.
        key: &'static str,
    },
    /// A map carrying none of the keys that identify a message kind.
    #[error("a map with none of the protocol's message keys (keys: {keys:?})")]
    UnknownMessage {
        /// The string keys the map had, for the log.
        keys: Vec<String>,
    },
    /// A value that is well-formed msgpack but not allowed there (e.g. an unknown `functype`).
    #[error("{field}: {detail}")]
    InvalidValue {
        /// The protocol field being read.
        field: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A value nested deeper than the decoder allows (see `MAX_NESTING`).
    #[error("value nested more than {limit} levels deep")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// Bytes left in the frame after its one value.
    #[error("{count} trailing bytes after the message")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A payload did not decode into the requested Rust type (named in the text).
    #[error("payload does not decode into {0}")]
    Payload(String),
}

/// A message or value could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// A Rust value's `Serialize` implementation failed or produced something msgpack cannot
    /// hold.
    #[error("value cannot be encoded as msgpack: {0}")]
    Serialize(#[from] rmp_serde::encode::Error),
    /// The encoded message does not fit a frame (the length prefix is a `u32`).
    #[error("message of {len} bytes does not fit a frame (at most {max} bytes)")]
    TooLarge {
        /// The encoded body's length.
        len: usize,
        /// The most a frame can hold.
        max: usize,
    },
}

/// The symmetric handshake on a new connection failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The peer sent nothing within the handshake timeout.
    #[error("peer sent no handshake within {0:?}")]
    Timeout(Duration),
    /// The peer closed the connection before handshaking. Normal for probes (a runtime checking
    /// whether a registrar is listening), so it is logged at debug level.
    #[error("peer closed the connection before handshaking")]
    ClosedBeforeHandshake,
    /// The first frame was not a `[name, uuid]` pair.
    #[error("malformed handshake: {0}")]
    Malformed(#[from] DecodeError),
    /// Reading the handshake frame failed.
    #[error("reading the handshake: {0}")]
    Frame(#[from] FrameError),
    /// Sending our own uid failed.
    #[error("sending the handshake: {0}")]
    Io(#[source] io::Error),
    /// Authentication failed (this side has a secret) or was asked for (the peer has one and
    /// this side has none).
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Proving the shared secret failed (see [`crate::auth`]).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The secret given is unusable (too short, unreadable file, not hex).
    #[error("bad secret: {0}")]
    BadSecret(String),
    /// The peer went straight to the handshake: it has no secret (a tractor 0.1.0a5 peer, or
    /// an actor not given this tree's secret).
    #[error(
        "peer {peer} did not authenticate (a tractor 0.1.0a5 peer or an actor without this tree's secret)"
    )]
    PeerDidNotAuthenticate {
        /// The uid it sent, as `name.uuid`.
        peer: String,
    },
    /// The peer asked for authentication and this side has no secret.
    #[error(
        "the peer requires authentication and this side has no secret: give it the tree's secret (e.g. ACTOR_AUTH_FILE or --auth-file)"
    )]
    Required,
    /// The peer's proof does not match: it holds a different secret.
    #[error("the peer's proof does not match: it holds a different secret")]
    WrongSecret,
    /// The peer refused our proof.
    #[error("the peer refused our authentication: {0}")]
    Refused(String),
    /// The peer closed during authentication.
    #[error("the peer closed the connection during authentication")]
    PeerClosed,
    /// A message of the exchange was not what the protocol says.
    #[error("malformed authentication message: {0}")]
    Malformed(String),
    /// Reading a frame failed.
    #[error("reading an authentication frame: {0}")]
    Frame(#[source] FrameError),
    /// Writing failed.
    #[error("sending an authentication frame: {0}")]
    Io(#[source] io::Error),
}

/// Connecting to an address (and handshaking) failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The socket could not be connected.
    #[error("cannot connect to {addr}: {source}")]
    Io {
        /// Where we tried to connect.
        addr: Addr,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// Nothing answered within the connect timeout.
    #[error("connecting to {addr} timed out after {after:?}")]
    Timeout {
        /// Where we tried to connect.
        addr: Addr,
        /// The timeout.
        after: Duration,
    },
    /// The connection was made but the handshake failed.
    #[error("handshake with {addr} failed: {source}")]
    Handshake {
        /// The peer's address.
        addr: Addr,
        /// Why it failed.
        #[source]
        source: HandshakeError,
    },
}

/// Queueing a message for the connection's writer failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The connection's writer has stopped (the peer went away, a write failed, or the channel
    /// was closed). Nothing of the message was written.
    #[error("connection closed")]
    Closed,
    /// A payload could not be encoded. Nothing was written.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A frame longer than the channel's limit (`ChannelConfig::max_frame_len`), which the
    /// peer would refuse (and close the connection for). Nothing was written.
    #[error("a frame of {len} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The frame body's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

/// Receiving the next message failed; the connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// The frame layer failed (oversized, truncated, or the socket failed).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A complete frame held something that is not a protocol message.
    #[error("undecodable message: {0}")]
    Decode(#[from] DecodeError),
}
