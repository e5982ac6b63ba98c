//! [`Blob`]: bytes received without a copy.
//!
//! A frame arrives as one `Bytes` buffer, and a payload is a slice of it. Decoding a `Vec<u8>`
//! or a `bytes::Bytes` from it copies the bytes; decoding a [`Blob`] from a payload decoded with
//! [`Payload::decode_owned`](crate::Payload::decode_owned) (what the runtime does for results,
//! stream items and context values) slices the frame instead: a 1 MiB blob costs no copy and no
//! allocation. Anywhere else (a `&Payload` decode, another serde format) a `Blob` still decodes,
//! by copying.

use std::cell::RefCell;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

thread_local! {
    /// The buffer an owned decode is reading from, so a [`Blob`] can slice it.
    static SOURCE: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Runs `decode` on `bytes` with them as the source [`Blob`]s slice.
pub(crate) fn decode_from<R>(bytes: Bytes, decode: impl FnOnce(&[u8]) -> R) -> R {
    // Put back, also if the decode panics: a frame must not stay pinned in the thread.
    struct Restore(Option<Bytes>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            SOURCE.with(|source| *source.borrow_mut() = previous);
        }
    }
    // Inside another owned decode (the source is borrowed), decode plainly: Blobs copy then.
    if SOURCE.with(|source| source.try_borrow_mut().is_err()) {
        return decode(&bytes);
    }
    let _restore = Restore(SOURCE.with(|source| source.replace(Some(bytes))));
    SOURCE.with(|source| {
        let source = source.borrow();
        decode(source.as_deref().unwrap_or_default())
    })
}

/// The part of the source buffer `bytes` is, if it is one.
fn slice_of_source(bytes: &[u8]) -> Option<Bytes> {
    SOURCE.with(|source| {
        let source = source.try_borrow().ok()?;
        let source = source.as_ref()?;
        let within = source.as_ptr_range();
        let part = bytes.as_ptr_range();
        (within.start <= part.start && part.end <= within.end).then(|| source.slice_ref(bytes))
    })
}

/// Bytes that travel as msgpack bin and are received without a copy where possible (see the
/// module docs). Derefs to `[u8]`; [`Blob::into_bytes`] gives the `Bytes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Blob(pub Bytes);

impl Blob {
    /// The bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<Bytes> for Blob {
    fn from(bytes: Bytes) -> Self {
        Self(bytes)
    }
}

impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes.into())
    }
}

impl std::ops::Deref for Blob {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Blob;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes (msgpack bin)")
            }

            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Blob, E> {
                Ok(Blob(
                    slice_of_source(v).unwrap_or_else(|| Bytes::copy_from_slice(v)),
                ))
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(Bytes::copy_from_slice(v)))
            }

            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v.into()))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Blob, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element::<u8>()? {
                    bytes.push(b);
                }
                Ok(Blob(bytes.into()))
            }
        }

        deserializer.deserialize_bytes(Visitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Payload;

    #[test]
    fn an_owned_decode_slices_the_payload_and_a_borrowed_one_copies() {
        let blob = Blob(Bytes::from(vec![7_u8; 100_000]));
        let payload = Payload::encode(&vec![blob.clone(), blob.clone()]).unwrap();
        let within = payload.as_bytes().as_ptr_range();
        let copied: Vec<Blob> = payload.decode().unwrap();
        let sliced: Vec<Blob> = payload.decode_owned().unwrap();
        assert_eq!(copied, vec![blob.clone(), blob.clone()]);
        assert_eq!(sliced, vec![blob.clone(), blob]);
        for b in &sliced {
            let range = b.0.as_ptr_range();
            assert!(
                within.start <= range.start && range.end <= within.end,
                "not a slice"
            );
        }
        for b in &copied {
            assert!(
                !within.contains(&b.0.as_ptr()),
                "a borrowed decode must copy"
            );
        }
    }
}

#[cfg(test)]
mod nesting_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Payload;

    /// A type whose decoding decodes another payload, owned.
    #[derive(Debug)]
    struct Nested(Blob);

    impl<'de> Deserialize<'de> for Nested {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let outer = Blob::deserialize(deserializer)?;
            let inner = Payload::from_msgpack(outer.0.clone()).unwrap();
            Ok(Nested(inner.decode_owned().unwrap()))
        }
    }

    #[test]
    fn an_owned_decode_inside_another_works() {
        let inner = Payload::encode(&Blob(Bytes::from_static(b"inner"))).unwrap();
        let outer = Payload::encode(&Blob(inner.into_bytes())).unwrap();
        let nested: Nested = outer.decode_owned().unwrap();
        assert_eq!(&nested.0[..], b"inner");
    }
}
