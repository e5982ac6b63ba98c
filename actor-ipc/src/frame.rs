//! Framing: one frame is a 4-byte little-endian length, then that many bytes holding one msgpack
//! value. No magic, no version, no checksum (that is tractor's wire).
//!
//! [`FrameCodec`] is a `tokio_util` [`Decoder`]; [`put_frame`] writes one. Its one rule beyond the format:
//! a declared length over the configured maximum is refused as soon as the header is read,
//! before any buffer of that size is reserved, so a hostile 4-byte header cannot make the
//! process allocate gigabytes.

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

/// Splits a byte stream into frame bodies and writes bodies as frames.
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
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(header) = src.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let mut len_bytes = [0u8; HEADER_LEN];
        len_bytes.copy_from_slice(header);
        let declared = u32::from_le_bytes(len_bytes) as usize;
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
        match src.len() {
            0 => Ok(None),
            received if received < HEADER_LEN => Err(FrameError::TruncatedHeader { received }),
            received => {
                let mut len_bytes = [0u8; HEADER_LEN];
                len_bytes.copy_from_slice(&src[..HEADER_LEN]);
                Err(FrameError::TruncatedBody {
                    declared: u32::from_le_bytes(len_bytes) as usize,
                    received: received - HEADER_LEN,
                })
            }
        }
    }
}

/// Appends `body` to `dst` as one frame.
pub fn put_frame(body: &[u8], dst: &mut BytesMut) -> Result<(), EncodeError> {
    let len = checked_len(body.len())?;
    dst.reserve(HEADER_LEN + body.len());
    dst.put_u32_le(len);
    dst.put_slice(body);
    Ok(())
}

/// The body length as a header value, or an error if a header cannot describe it.
pub(crate) fn checked_len(len: usize) -> Result<u32, EncodeError> {
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
