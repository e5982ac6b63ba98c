//! Reading msgpack: a cursor over one frame body that reads headers and strings and *skips*
//! whole values without building them.
//!
//! Skipping is iterative (a count of values still to skip), so hostile nesting cannot overflow
//! the stack, and every length is checked against the bytes actually present before use.

use bytes::Bytes;

use crate::error::DecodeError;

/// A read position in one frame body (copied to try a reading and go back if it fails).
#[derive(Clone, Copy)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The msgpack family of a marker byte, for error messages.
pub(crate) fn kind_name(marker: u8) -> &'static str {
    match marker {
        0x00..=0x7f | 0xcc..=0xd3 | 0xe0..=0xff => "an integer",
        0x80..=0x8f | 0xde | 0xdf => "a map",
        0x90..=0x9f | 0xdc | 0xdd => "an array",
        0xa0..=0xbf | 0xd9..=0xdb => "a string",
        0xc0 => "nil",
        0xc2 | 0xc3 => "a boolean",
        0xc4..=0xc6 => "binary data",
        0xc7..=0xc9 | 0xd4..=0xd8 => "an ext value",
        0xca | 0xcb => "a float",
        0xc1 => "an invalid marker",
    }
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Moves to `pos` (used to read a value whose range an earlier pass recorded).
    pub(crate) fn seek(mut self, pos: usize) -> Self {
        self.pos = pos.min(self.buf.len());
        self
    }

    /// The bytes of `range` in the underlying buffer (empty if out of bounds).
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> &'a [u8] {
        self.buf.get(range).unwrap_or(&[])
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Consumes `prefix` if the bytes ahead start with it (a known run of headers and keys,
    /// compared whole instead of read piece by piece); false, consuming nothing, if not.
    pub(crate) fn skip_prefix(&mut self, prefix: &[u8]) -> bool {
        let ahead = self.buf.get(self.pos..).unwrap_or_default();
        if ahead.starts_with(prefix) {
            self.pos += prefix.len();
            true
        } else {
            false
        }
    }

    /// The next marker byte, without consuming it.
    ///
    /// The error is built only on failure (a `match`, not `ok_or`): `DecodeError` has drop
    /// glue, and building one eagerly on every read and dropping it was 4% of a call's time.
    pub(crate) fn peek(&self) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(marker) => Ok(*marker),
            None => Err(DecodeError::Truncated { at: self.pos }),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => end,
            _ => return Err(DecodeError::Truncated { at: self.buf.len() }),
        };
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    fn be_uint(&mut self, width: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(width)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn wrong(&self, field: &'static str, expected: &'static str, marker: u8) -> DecodeError {
        DecodeError::WrongType {
            field,
            expected,
            found: kind_name(marker),
            at: self.pos,
        }
    }

    /// Reads a map header, returning its number of entries.
    pub(crate) fn map_len(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let m = self.peek()?;
        let len = match m {
            0x80..=0x8f => {
                self.pos += 1;
                u64::from(m & 0x0f)
            }
            0xde => {
                self.pos += 1;
                self.be_uint(2)?
            }
            0xdf => {
                self.pos += 1;
                self.be_uint(4)?
            }
            _ => return Err(self.wrong(field, "a map", m)),
        };
        Ok(len as usize)
    }

    /// Reads an array header, returning its number of elements.
    pub(crate) fn array_len(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let m = self.peek()?;
        let len = match m {
            0x90..=0x9f => {
                self.pos += 1;
                u64::from(m & 0x0f)
            }
            0xdc => {
                self.pos += 1;
                self.be_uint(2)?
            }
            0xdd => {
                self.pos += 1;
                self.be_uint(4)?
            }
            _ => return Err(self.wrong(field, "an array", m)),
        };
        Ok(len as usize)
    }

    /// Reads an array header and checks its length.
    pub(crate) fn array_of(
        &mut self,
        field: &'static str,
        expected: usize,
    ) -> Result<(), DecodeError> {
        let found = self.array_len(field)?;
        if found == expected {
            Ok(())
        } else {
            Err(DecodeError::WrongArity {
                field,
                expected,
                found,
            })
        }
    }

    /// Reads a string, borrowed from the frame.
    pub(crate) fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let bytes = self.str_bytes(field)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { field, at })
    }

    /// Reads a string's bytes, not yet checked to be UTF-8 (a key compared with known ASCII
    /// keys needs no check).
    pub(crate) fn str_bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let m = self.peek()?;
        let len = match m {
            0xa0..=0xbf => {
                self.pos += 1;
                u64::from(m & 0x1f)
            }
            0xd9 => {
                self.pos += 1;
                self.be_uint(1)?
            }
            0xda => {
                self.pos += 1;
                self.be_uint(2)?
            }
            0xdb => {
                self.pos += 1;
                self.be_uint(4)?
            }
            _ => return Err(self.wrong(field, "a string", m)),
        };
        self.take(len as usize)
    }

    /// Reads a string if the next value is one; `None` (and nothing consumed) otherwise.
    pub(crate) fn str_if_any(&mut self) -> Result<Option<&'a str>, DecodeError> {
        match self.peek()? {
            0xa0..=0xbf | 0xd9..=0xdb => self.str("key").map(Some),
            _ => Ok(None),
        }
    }

    /// Reads a string's bytes (unchecked, see [`Cursor::str_bytes`]) if the next value is a
    /// string; `None` (and nothing consumed) otherwise.
    pub(crate) fn key_bytes_if_any(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.peek()? {
            0xa0..=0xbf | 0xd9..=0xdb => self.str_bytes("key").map(Some),
            _ => Ok(None),
        }
    }

    /// Consumes one value's header (and the body of a scalar, string or binary), returning how
    /// many child values follow it (array elements, or map keys plus values).
    fn header(&mut self) -> Result<u64, DecodeError> {
        let at = self.pos;
        let m = self.u8()?;
        let (children, skip) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (2 * u64::from(m & 0x0f), 0),
            0x90..=0x9f => (u64::from(m & 0x0f), 0),
            0xa0..=0xbf => (0, u64::from(m & 0x1f)),
            0xc1 => return Err(DecodeError::InvalidMarker { marker: m, at }),
            0xc4 | 0xd9 => (0, self.be_uint(1)?),
            0xc5 | 0xda => (0, self.be_uint(2)?),
            0xc6 | 0xdb => (0, self.be_uint(4)?),
            0xc7 => (0, self.be_uint(1)? + 1),
            0xc8 => (0, self.be_uint(2)? + 1),
            0xc9 => (0, self.be_uint(4)? + 1),
            0xca => (0, 4),
            0xcb => (0, 8),
            0xcc | 0xd0 => (0, 1),
            0xcd | 0xd1 => (0, 2),
            0xce | 0xd2 => (0, 4),
            0xcf | 0xd3 => (0, 8),
            0xd4 => (0, 2),
            0xd5 => (0, 3),
            0xd6 => (0, 5),
            0xd7 => (0, 9),
            0xd8 => (0, 17),
            0xdc => (self.be_uint(2)?, 0),
            0xdd => (self.be_uint(4)?, 0),
            0xde => (2 * self.be_uint(2)?, 0),
            0xdf => (2 * self.be_uint(4)?, 0),
        };
        let skip = usize::try_from(skip).map_err(|_| DecodeError::Truncated { at })?;
        self.take(skip)?;
        Ok(children)
    }

    /// Reads a non-negative integer.
    pub(crate) fn uint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let m = self.peek()?;
        match m {
            0x00..=0x7f => {
                self.pos += 1;
                Ok(u64::from(m))
            }
            0xcc..=0xcf => {
                self.pos += 1;
                self.be_uint(1 << (m - 0xcc))
            }
            _ => Err(self.wrong(field, "a non-negative integer", m)),
        }
    }

    /// Skips one whole value (however deeply nested) and returns the byte range it occupied.
    pub(crate) fn skip_value(&mut self) -> Result<std::ops::Range<usize>, DecodeError> {
        let start = self.pos;
        // Values still to skip. Every value takes at least one byte, so this loop runs at most
        // once per byte of the frame whatever the declared lengths say.
        let mut pending: u64 = 1;
        while pending > 0 {
            pending = pending - 1 + self.header()?;
        }
        Ok(start..self.pos)
    }

    /// Skips one value and returns it as a zero-copy slice of `frame` (which must be the buffer
    /// this cursor reads).
    pub(crate) fn raw_value(&mut self, frame: &Bytes) -> Result<Bytes, DecodeError> {
        let range = self.skip_value()?;
        Ok(frame.slice(range))
    }
}

/// How deeply a value may nest before something decodes it recursively (rmpv, rmp-serde). Their
/// own limits (512 and 1024 levels) come after the stack of a 2 MiB thread is gone in an
/// unoptimised build, so hostile nesting is refused here first, without recursion.
pub const MAX_NESTING: usize = 100;

/// Checks that the one value in `buf` nests at most `limit` containers deep, without recursion.
pub(crate) fn check_nesting(buf: &[u8], limit: usize) -> Result<(), DecodeError> {
    let mut cur = Cursor::new(buf);
    // For each open container, how many of its child values are still to come.
    let mut open: Vec<u64> = Vec::new();
    loop {
        let children = cur.header()?;
        if children > 0 {
            if open.len() == limit {
                return Err(DecodeError::TooDeep { limit });
            }
            open.push(children);
            continue;
        }
        // A value ended; close every container it completes.
        loop {
            match open.last_mut() {
                None => return Ok(()),
                Some(left) if *left > 1 => {
                    *left -= 1;
                    break;
                }
                Some(_) => {
                    open.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(v: &rmpv::Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, v).unwrap();
        out
    }

    #[test]
    fn skips_nested_values_exactly() {
        let v = rmpv::Value::Map(vec![(
            "a".into(),
            rmpv::Value::Array(vec![1.into(), "xyz".into(), rmpv::Value::Nil, 1.5.into()]),
        )]);
        let mut bytes = encoded(&v);
        bytes.push(0x07);
        let mut cur = Cursor::new(&bytes);
        assert_eq!(cur.skip_value().unwrap(), 0..bytes.len() - 1);
        assert_eq!(cur.remaining(), 1);
    }

    #[test]
    fn skipping_a_huge_declared_array_fails_fast() {
        let bytes = [0xdd, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(
            Cursor::new(&bytes).skip_value(),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        let bytes = vec![0x91; 1_000_000];
        assert!(Cursor::new(&bytes).skip_value().is_err());
    }

    #[test]
    fn nesting_is_measured_without_recursion() {
        let mut deep = vec![0x91; 100];
        deep.push(0xc0);
        assert!(check_nesting(&deep, 100).is_ok());
        assert!(matches!(
            check_nesting(&deep, 99),
            Err(DecodeError::TooDeep { limit: 99 })
        ));
        let mut wide = vec![0x93, 0x91, 0x91, 0xc0, 0x01, 0x92, 0x02, 0x91, 0x03];
        assert!(check_nesting(&wide, 3).is_ok());
        assert!(check_nesting(&wide, 2).is_err());
        wide.truncate(5);
        assert!(matches!(
            check_nesting(&wide, 3),
            Err(DecodeError::Truncated { .. })
        ));
        let mut hostile = vec![0x91; 1_000_000];
        hostile.push(0xc0);
        assert!(check_nesting(&hostile, MAX_NESTING).is_err());
    }
}
