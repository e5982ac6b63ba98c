//! [`Payload`]: one msgpack value kept as the bytes it arrived in.
//!
//! Call arguments, returned, yielded and started values cross the runtime without being decoded:
//! the frame is sliced (no copy) and the consumer decodes the slice once, straight into its own
//! serde type. A dynamic [`Value`] is available for untyped calls and tools.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use rmpv::Value;
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    error::{DecodeError, EncodeError},
    msgpack::{Cursor, MAX_NESTING, check_nesting, put_value},
};

/// Exactly one msgpack value, as raw bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Payload(Bytes);

impl Payload {
    /// msgpack `nil`: what a function returning nothing sends.
    pub fn nil() -> Self {
        Self(Bytes::from_static(&[0xc0]))
    }

    /// An empty map: the kwargs of a call without arguments.
    pub fn empty_map() -> Self {
        Self(Bytes::from_static(&[0x80]))
    }

    /// Encodes a Rust value. Structs become maps keyed by field name (that is how kwargs travel
    /// and how tractor peers expect records); byte buffers marked with `serde_bytes` become
    /// msgpack bin.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, EncodeError> {
        let bytes = crate::arena::carve(0, |buf| {
            rmp_serde::encode::write_named(&mut buf.writer(), value)
        })?;
        Ok(Self(bytes))
    }

    /// Decodes into a Rust type. This is the payload's one decode.
    ///
    /// Nesting is limited to [`MAX_NESTING`] levels, so a hostile payload cannot exhaust the
    /// stack of a type that recurses (a tree, a dynamic value).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        let mut de = rmp_serde::Deserializer::from_read_ref(&self.0[..]);
        de.set_max_depth(MAX_NESTING);
        T::deserialize(&mut de).map_err(|e| DecodeError::Payload(e.to_string()))
    }

    /// Decodes into a Rust type, consuming the payload: [`Blob`](crate::Blob)s in it slice the
    /// frame it arrived in instead of copying (the runtime decodes results and stream items so).
    pub fn decode_owned<T: DeserializeOwned>(self) -> Result<T, DecodeError> {
        crate::blob::decode_from(self.0, |bytes| {
            let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
            de.set_max_depth(MAX_NESTING);
            T::deserialize(&mut de)
                .map_err(|e| DecodeError::Payload(format!("`{}`: {e}", std::any::type_name::<T>())))
        })
    }

    /// The payload as a dynamic value (for untyped calls, logging and tools). Values nested
    /// more than [`MAX_NESTING`] levels are refused.
    pub fn to_value(&self) -> Result<Value, DecodeError> {
        check_nesting(&self.0, MAX_NESTING)?;
        let mut slice = &self.0[..];
        rmpv::decode::read_value(&mut slice).map_err(|e| DecodeError::Payload(e.to_string()))
    }

    /// Encodes a dynamic value.
    pub fn from_value(value: &Value) -> Self {
        let mut buf = BytesMut::new();
        put_value(&mut buf, value);
        Self(buf.freeze())
    }

    /// Takes bytes that must hold exactly one msgpack value, checking that they do.
    pub fn from_msgpack(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut cur = Cursor::new(&bytes);
        cur.skip_value()?;
        match cur.remaining() {
            0 => Ok(Self(bytes)),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    /// Wraps bytes already known to hold one value (a slice the message decoder delimited).
    pub(crate) fn from_checked(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// The raw msgpack bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The raw msgpack bytes, shared.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Whether the value is `nil`.
    pub fn is_nil(&self) -> bool {
        self.0[..] == [0xc0]
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 256;
        if self.0.len() <= SHOWN {
            if let Ok(value) = self.to_value() {
                return write!(f, "Payload({value})");
            }
        }
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Add {
        a: i64,
        b: i64,
    }

    #[test]
    fn structs_travel_as_maps_keyed_by_name() {
        let p = Payload::encode(&Add { a: 1, b: 2 }).unwrap();
        assert_eq!(p.as_bytes(), b"\x82\xa1a\x01\xa1b\x02");
        assert_eq!(p.decode::<Add>().unwrap(), Add { a: 1, b: 2 });
    }

    #[test]
    fn wrong_shape_is_a_payload_error() {
        let p = Payload::encode(&"text").unwrap();
        assert!(matches!(p.decode::<Add>(), Err(DecodeError::Payload(_))));
    }

    #[test]
    fn hostile_nesting_is_refused_not_a_stack_overflow() {
        let mut deep = vec![0x91; 100_000];
        deep.push(0xc0);
        let p = Payload::from_msgpack(Bytes::from(deep)).unwrap();
        assert!(matches!(p.to_value(), Err(DecodeError::TooDeep { .. })));
        assert!(p.decode::<Value>().is_err());
        assert!(format!("{p:?}").contains("bytes"));
    }

    #[test]
    fn from_msgpack_requires_exactly_one_value() {
        assert!(Payload::from_msgpack(Bytes::from_static(b"\x01\x02")).is_err());
        assert!(Payload::from_msgpack(Bytes::from_static(b"\x92\x01")).is_err());
        assert!(Payload::from_msgpack(Bytes::from_static(b"\x92\x01\x02")).is_ok());
    }
}
