//! Writing messages: [`Msg::write_body`], [`Msg::write_frame`] and the direct frame writers of
//! the hot paths (`yield`, `return`, `cmd`), which write a frame from borrowed parts without
//! building a [`Msg`]. Keys are written in the order tractor writes them, so frames match its
//! byte for byte.

use bytes::{BufMut, Bytes, BytesMut};
use rmpv::Value;

use super::{ASYNCFUNC_ANSWER, CallKind, CmdRef, Msg, SpawnInit, Uid};
use crate::{
    addr::WireAddr,
    arena::carve,
    error::EncodeError,
    frame::{FrameStart, HEADER_LEN, MAX_ENCODABLE_LEN, put_framed},
    msgpack::{
        put_array_len, put_bin_len, put_bool, put_map_len, put_nil, put_str, put_uint, put_value,
    },
    payload::Payload,
};

impl Msg {
    /// Writes this message's msgpack body (no length prefix).
    pub fn write_body(&self, buf: &mut BytesMut) {
        match self {
            Self::Handshake(uid) => put_uid(buf, uid),
            Self::Sentinel => put_nil(buf),
            Self::Cmd(cmd) => put_cmd(
                buf,
                CmdRef {
                    ns: &cmd.ns,
                    func: &cmd.func,
                    kwargs: &cmd.kwargs,
                    caller: &cmd.caller,
                    cid: &cmd.cid,
                    trace: cmd.trace.as_deref(),
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
            Self::Heartbeat(n) => {
                put_map_len(buf, 1);
                put_str(buf, "heartbeat");
                put_uint(buf, *n);
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

    /// A `yield` frame with `value` encoded straight into it: the same bytes as
    /// [`Msg::yield_frame`] of [`Payload::encode`]`(value)`, without the payload's own buffer
    /// and the copy out of it (a context's stream sends its items so).
    pub fn yield_frame_of<T: serde::Serialize + ?Sized>(
        cid: &str,
        value: &T,
    ) -> Result<Bytes, EncodeError> {
        carve(HEADER_LEN + 32 + cid.len(), |buf| {
            let frame = FrameStart::begin(buf);
            put_payload_msg_head(buf, "yield");
            rmp_serde::encode::write_named(&mut buf.writer(), value)?;
            put_cid(buf, cid);
            frame.finish(buf)
        })
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
        yield_parts(cid, |_| Ok(()), value.clone().into_bytes())
    }

    /// A `yield` frame whose value is `bin` as msgpack bin, as three buffers to write back to
    /// back: its start (through the bin's header), `bin` itself (shared, not copied), and its
    /// end. The same bytes as [`Msg::yield_frame_parts`] of `bin` encoded as a
    /// [`Blob`](crate::Blob), without the copy that encoding makes.
    pub fn yield_bin_frame_parts(cid: &str, bin: &Bytes) -> Result<[Bytes; 3], EncodeError> {
        let len = u32::try_from(bin.len()).map_err(|_| EncodeError::TooLarge {
            len: bin.len(),
            max: MAX_ENCODABLE_LEN,
        })?;
        let bin_head = |head: &mut BytesMut| {
            put_bin_len(head, len);
            Ok(())
        };
        yield_parts(cid, bin_head, bin.clone())
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
        if let Some(small) = small_answer_frames(cid, value) {
            buf.put_slice(small.as_bytes());
            return Ok(());
        }
        put_framed(buf, |buf| put_functype(buf, cid, CallKind::AsyncFunc))?;
        put_framed(buf, |buf| put_payload_msg(buf, "return", value, cid))
    }

    /// About how many bytes [`Msg::put_answer_frames`] writes (never fewer).
    pub fn answer_frames_size(cid: &str, value: &Payload) -> usize {
        2 * (HEADER_LEN + 16 + cid.len()) + 16 + value.as_bytes().len()
    }

    /// A `cmd` frame, written straight from its parts (the calling hot path: no `Msg` built,
    /// nothing copied but into the frame).
    pub fn cmd_frame(cmd: CmdRef<'_>) -> Result<Bytes, EncodeError> {
        carve(cmd.frame_size(), |buf| Self::put_cmd_frame(buf, cmd))
    }

    /// Appends a `cmd` frame to `buf`, written straight from its parts.
    pub fn put_cmd_frame(buf: &mut BytesMut, cmd: CmdRef<'_>) -> Result<(), EncodeError> {
        put_framed(buf, |buf| put_cmd(buf, cmd))
    }

    /// This message as one complete frame.
    pub fn to_frame(&self) -> Result<Bytes, EncodeError> {
        carve(self.size_hint(), |buf| self.write_frame(buf))
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

    fn size_hint(&self) -> usize {
        const OVERHEAD: usize = 64;
        OVERHEAD
            + match self {
                Self::Cmd(cmd) => {
                    cmd.kwargs.as_bytes().len()
                        + cmd.ns.len()
                        + cmd.func.len()
                        + cmd.trace.as_ref().map_or(0, |t| t.len() + 8)
                        + 64
                }
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
    carve(OVERHEAD + cid.len() + value.as_bytes().len(), |buf| {
        put_framed(buf, |buf| put_payload_msg(buf, key, value, cid))
    })
}

/// A request/response call's two answer frames, assembled on the stack and appended to the
/// outgoing buffer in one copy: written piece by piece into a `BytesMut`, each of the
/// frames' ten pieces checked the buffer's capacity (callgrind: 143 fewer instructions per
/// answer this way). Anything that does not fit, or needs a longer string header, takes
/// the general path. (A `cmd` built this way measured no better: its pieces are fewer and
/// longer.)
struct SmallFrames {
    bytes: [u8; SMALL_FRAMES],
    len: usize,
}

/// How many bytes [`SmallFrames`] holds.
const SMALL_FRAMES: usize = 256;

impl SmallFrames {
    fn new() -> Self {
        Self {
            bytes: [0; SMALL_FRAMES],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn push(&mut self, piece: &[u8]) -> Option<()> {
        let end = self.len.checked_add(piece.len())?;
        self.bytes.get_mut(self.len..end)?.copy_from_slice(piece);
        self.len = end;
        Some(())
    }

    /// A string of up to 255 bytes (fixstr or str8).
    fn push_str(&mut self, text: &str) -> Option<()> {
        let len = u8::try_from(text.len()).ok()?;
        match len {
            0..=31 => self.push(&[0xa0 | len])?,
            _ => self.push(&[0xd9, len])?,
        }
        self.push(text.as_bytes())
    }

    /// Starts a frame: its header, filled in by [`SmallFrames::end_frame`].
    fn begin_frame(&mut self) -> Option<usize> {
        let at = self.len;
        self.push(&[0; HEADER_LEN])?;
        Some(at)
    }

    fn end_frame(&mut self, at: usize) -> Option<()> {
        let len = u32::try_from(self.len - at - HEADER_LEN).ok()?;
        self.bytes
            .get_mut(at..at + HEADER_LEN)?
            .copy_from_slice(&len.to_le_bytes());
        Some(())
    }
}

/// [`Msg::put_answer_frames`]'s two frames, if they are small.
fn small_answer_frames(cid: &str, value: &Payload) -> Option<SmallFrames> {
    let mut out = SmallFrames::new();
    let functype = out.begin_frame()?;
    out.push(b"\x82")?;
    out.push(ASYNCFUNC_ANSWER)?;
    out.push_str(cid)?;
    out.end_frame(functype)?;
    let answer = out.begin_frame()?;
    out.push(b"\x82\xa6return")?;
    out.push(value.as_bytes())?;
    out.push(b"\xa3cid")?;
    out.push_str(cid)?;
    out.end_frame(answer)?;
    Some(out)
}

fn put_cid(buf: &mut BytesMut, cid: &str) {
    put_str(buf, "cid");
    put_str(buf, cid);
}

/// Writes a uid as `[name, uuid]`.
fn put_uid(buf: &mut BytesMut, uid: &Uid) {
    put_array_len(buf, 2);
    put_str(buf, &uid.name);
    put_str(buf, &uid.uuid);
}

fn put_cmd(buf: &mut BytesMut, cmd: CmdRef<'_>) {
    put_map_len(buf, if cmd.trace.is_some() { 2 } else { 1 });
    put_str(buf, "cmd");
    put_array_len(buf, 5);
    put_str(buf, cmd.ns);
    put_str(buf, cmd.func);
    buf.put_slice(cmd.kwargs.as_bytes());
    put_uid(buf, cmd.caller);
    put_str(buf, cmd.cid);
    if let Some(trace) = cmd.trace {
        put_str(buf, "trace");
        put_str(buf, trace);
    }
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

/// A `yield` frame as its start, `body` (the value, or its part after what `value_head`
/// writes), and its end.
fn yield_parts(
    cid: &str,
    value_head: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
    body: Bytes,
) -> Result<[Bytes; 3], EncodeError> {
    let tail = carve::<EncodeError>(16 + cid.len(), |tail| {
        put_cid(tail, cid);
        Ok(())
    })?;
    let head = carve(HEADER_LEN + 16, |head| {
        let frame = FrameStart::begin(head);
        put_payload_msg_head(head, "yield");
        value_head(head)?;
        frame.finish_with_trailing(head, body.len() + tail.len())
    })?;
    Ok([head, body, tail])
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

    #[test]
    fn a_bin_yield_frame_in_parts_is_the_frame_of_the_encoded_blob() {
        // bin 8, bin 16 and bin 32 headers.
        for len in [0, 200, 300, 70_000] {
            let bin = Bytes::from(vec![0xab; len]);
            let encoded = Payload::encode(&crate::Blob(bin.clone())).unwrap();
            let whole = Msg::yield_frame("c-1", &encoded).unwrap();
            let parts = Msg::yield_bin_frame_parts("c-1", &bin).unwrap();
            assert_eq!(parts.concat(), whole.to_vec(), "a bin of {len} bytes");
            // The bytes are shared, not copied.
            assert_eq!(parts[1].as_ptr(), bin.as_ptr());
        }
    }

    #[test]
    fn a_yield_frame_encoded_in_place_is_the_frame_of_the_payload() {
        #[derive(serde::Serialize)]
        struct Point {
            x: i64,
            label: String,
        }
        let value = Point {
            x: -3,
            label: "p".repeat(300),
        };
        let in_place = Msg::yield_frame_of("c-7", &value).unwrap();
        let via_payload = Msg::yield_frame("c-7", &Payload::encode(&value).unwrap()).unwrap();
        assert_eq!(in_place, via_payload);
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

    /// The answer frames made on the stack are byte for byte the general path's, for every
    /// string header size, and the general path takes over where they do not fit.
    #[test]
    fn small_frames_are_the_general_frames() {
        let texts = [
            "",
            "f",
            &"n".repeat(31),
            &"u".repeat(32),
            &"x".repeat(200),
            &"y".repeat(300),
        ];
        let values = [
            Payload::encode(&7_u64).unwrap(),
            Payload::encode(&"v".repeat(180)).unwrap(),
            Payload::encode(&vec![0_u8; 400]).unwrap(),
        ];
        for text in texts {
            for value in &values {
                let mut general = BytesMut::new();
                put_framed(&mut general, |buf| {
                    put_functype(buf, text, CallKind::AsyncFunc)
                })
                .unwrap();
                put_framed(&mut general, |buf| {
                    put_payload_msg(buf, "return", value, text)
                })
                .unwrap();
                let mut chosen = BytesMut::new();
                Msg::put_answer_frames(&mut chosen, text, value).unwrap();
                assert_eq!(chosen, general, "answer {text:?}");
            }
        }
        // The small path is taken where it fits.
        assert!(small_answer_frames("c1", &values[0]).is_some());
        assert!(small_answer_frames("c1", &values[2]).is_none());
    }
}
