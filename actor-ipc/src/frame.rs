//! Framing: one frame is a 4-byte little-endian length, then that many bytes holding one msgpack
//! value. No magic, no version, no checksum (that is tractor's wire).
//!
//! This module is the one place that knows the header's layout, for both directions:
//!
//! - reading: [`FrameCodec`] is a `tokio_util` [`Decoder`]. Its one rule beyond the format: a
//!   declared length over the configured maximum is refused as soon as the header is read,
//!   before any buffer of that size is reserved, so a hostile 4-byte header cannot make the
//!   process allocate gigabytes.
//! - writing: [`FrameStart::begin`] reserves the header in a buffer, the caller appends the
//!   body, and [`FrameStart::finish`] patches the body's length in (or refuses a body a header
//!   cannot describe with [`EncodeError::TooLarge`], leaving the buffer as it was).
//!   [`put_framed`] wraps the three steps around a closure and [`put_frame`] frames a finished
//!   body; every frame writer of the crate goes through them.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::error::{EncodeError, FrameError};

/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;

/// The default maximum frame body: 16 MiB. tractor sets no limit; we do, and it is
/// configurable per channel ([`crate::ChannelConfig::max_frame_len`]).
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// The largest body a frame header can describe.
pub const MAX_ENCODABLE_LEN: usize = u32::MAX as usize;

/// Splits a byte stream into frame bodies (the reading half; [`FrameStart`] writes frames).
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max_frame_len: usize,
}

impl FrameCodec {
    /// A codec refusing frames whose body is longer than `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> Self {
        Self { max_frame_len }
    }

    /// The configured limit.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Changes the limit (a channel reads its handshake under a small one).
    pub fn set_max_frame_len(&mut self, max_frame_len: usize) {
        self.max_frame_len = max_frame_len;
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_LEN)
    }
}

/// The body length a header declares.
fn read_header(header: &[u8; HEADER_LEN]) -> usize {
    u32::from_le_bytes(*header) as usize
}

/// The body of the frame at the front of `buf`, if that frame is there whole.
pub(crate) fn buffered_body(buf: &[u8]) -> Option<&[u8]> {
    let header = buf.first_chunk::<HEADER_LEN>()?;
    buf.get(HEADER_LEN..HEADER_LEN.checked_add(read_header(header))?)
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(header) = src.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let declared = read_header(header);
        // The guard: refuse before reserving anything of the declared size.
        if declared > self.max_frame_len {
            return Err(FrameError::TooLarge {
                declared,
                limit: self.max_frame_len,
            });
        }
        let total = HEADER_LEN + declared;
        if src.len() < total {
            // Within the limit: make room for the whole body now so it is read with few
            // syscalls and no repeated growth.
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        Ok(Some(src.split_to(declared).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        match src.first_chunk::<HEADER_LEN>() {
            Some(header) => Err(FrameError::TruncatedBody {
                declared: read_header(header),
                received: src.len() - HEADER_LEN,
            }),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::TruncatedHeader {
                received: src.len(),
            }),
        }
    }
}

/// A frame being written into a buffer: its header is reserved, its body is being appended.
///
/// Frames are written in place (the body straight into the outgoing buffer, no second copy), so
/// the body's length is known only once it is written: [`FrameStart::begin`] reserves the
/// header, and [`FrameStart::finish`] writes the length into it. Between the two the caller
/// only appends to the buffer.
#[derive(Debug)]
#[must_use = "the header holds no length until `finish` writes it"]
pub struct FrameStart {
    /// Where the header starts in the buffer.
    at: usize,
}

impl FrameStart {
    /// Reserves a frame header at the end of `buf`; the body is to be appended after it.
    pub fn begin(buf: &mut BytesMut) -> Self {
        let at = buf.len();
        buf.put_bytes(0, HEADER_LEN);
        Self { at }
    }

    /// Completes the frame: the body is everything appended to `buf` since [`FrameStart::begin`].
    ///
    /// A body too long for a header is refused and removed with its header, so `buf` holds
    /// only the frames before it.
    pub fn finish(self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.finish_with_trailing(buf, 0)
    }

    /// Completes a frame whose body continues past `buf`: after the bytes appended since
    /// [`FrameStart::begin`], `trailing` more bytes that the caller sends from other buffers
    /// right after this one (a large payload shared rather than copied, say).
    ///
    /// On error, as with [`FrameStart::finish`], `buf` is left as it was before `begin`.
    pub fn finish_with_trailing(
        self,
        buf: &mut BytesMut,
        trailing: usize,
    ) -> Result<(), EncodeError> {
        let written = buf.len().saturating_sub(self.at + HEADER_LEN);
        // A sum past `usize::MAX` is past any header's reach anyway: saturating is exact enough.
        let len = match checked_len(written.saturating_add(trailing)) {
            Ok(len) => len,
            Err(e) => {
                buf.truncate(self.at);
                return Err(e);
            }
        };
        if let Some(header) = buf.get_mut(self.at..self.at + HEADER_LEN) {
            header.copy_from_slice(&len.to_le_bytes());
        }
        Ok(())
    }
}

/// Appends one frame whose body `write_body` appends to `buf`: [`FrameStart::begin`], the
/// body, [`FrameStart::finish`]. A body too long for a frame leaves `buf` as it was.
pub fn put_framed(
    buf: &mut BytesMut,
    write_body: impl FnOnce(&mut BytesMut),
) -> Result<(), EncodeError> {
    let frame = FrameStart::begin(buf);
    write_body(buf);
    frame.finish(buf)
}

/// Appends `body` to `dst` as one frame (for a body already encoded elsewhere).
pub fn put_frame(body: &[u8], dst: &mut BytesMut) -> Result<(), EncodeError> {
    // Refused before anything is copied.
    checked_len(body.len())?;
    dst.reserve(HEADER_LEN + body.len());
    put_framed(dst, |dst| dst.put_slice(body))
}

/// The body length as a header value, or an error if a header cannot describe it.
fn checked_len(len: usize) -> Result<u32, EncodeError> {
    u32::try_from(len).map_err(|_| EncodeError::TooLarge {
        len,
        max: MAX_ENCODABLE_LEN,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        put_frame(body, &mut buf).unwrap();
        buf
    }

    #[test]
    fn a_frame_is_its_length_in_little_endian_then_its_body() {
        assert_eq!(&frame(b"\xa2hi")[..], b"\x03\x00\x00\x00\xa2hi");
        let mut buf = BytesMut::from(&b"before"[..]);
        put_framed(&mut buf, |buf| buf.put_slice(&[0x90])).unwrap();
        assert_eq!(&buf[..], b"before\x01\x00\x00\x00\x90");
    }

    #[test]
    fn a_body_continuing_elsewhere_counts_in_the_header() {
        let mut head = BytesMut::new();
        let frame = FrameStart::begin(&mut head);
        head.put_u8(0x81);
        frame.finish_with_trailing(&mut head, 300).unwrap();
        assert_eq!(&head[..], &[0x2d, 0x01, 0, 0, 0x81]);
    }

    #[test]
    fn a_body_too_long_for_a_header_is_refused_and_removed() {
        let mut buf = frame(b"\xc0");
        let before = buf.clone();
        let frame = FrameStart::begin(&mut buf);
        buf.put_slice(b"\x91\xc0");
        let err = frame
            .finish_with_trailing(&mut buf, MAX_ENCODABLE_LEN)
            .unwrap_err();
        assert!(matches!(
            err,
            EncodeError::TooLarge {
                len,
                max: MAX_ENCODABLE_LEN
            } if len == MAX_ENCODABLE_LEN + 2
        ));
        assert_eq!(buf, before);
        let frame = FrameStart::begin(&mut buf);
        assert!(matches!(
            frame.finish_with_trailing(&mut buf, usize::MAX),
            Err(EncodeError::TooLarge { .. })
        ));
        assert_eq!(buf, before);
    }

    #[test]
    fn splits_back_to_back_frames() {
        let mut buf = frame(b"\x01");
        buf.extend_from_slice(&frame(b"\xa2hi"));
        let mut codec = FrameCodec::default();
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"\x01"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"\xa2hi"[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn waits_for_a_partial_frame() {
        let full = frame(b"\x93\x01\x02\x03");
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&full[..6]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&full[6..]);
        assert_eq!(
            codec.decode(&mut buf).unwrap().unwrap(),
            &b"\x93\x01\x02\x03"[..]
        );
    }

    #[test]
    fn refuses_an_oversized_header_without_reserving() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::with_capacity(8);
        buf.put_u32_le(1025);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            FrameError::TooLarge {
                declared: 1025,
                limit: 1024
            }
        ));
        assert!(buf.capacity() < 1024, "capacity grew to {}", buf.capacity());
    }

    #[test]
    fn eof_inside_header_and_body_are_errors() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[5u8, 0][..]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(FrameError::TruncatedHeader { received: 2 })
        ));
        let mut buf = BytesMut::from(&[5u8, 0, 0, 0, 0xc0][..]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(FrameError::TruncatedBody {
                declared: 5,
                received: 1
            })
        ));
        let mut empty = BytesMut::new();
        assert!(codec.decode_eof(&mut empty).unwrap().is_none());
    }
}
