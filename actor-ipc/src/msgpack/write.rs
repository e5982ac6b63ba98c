//! Writing msgpack: headers and scalars, each in its shortest form (byte for byte what msgspec
//! and rmp write), appended to a `BytesMut`.
//!
//! # `rmp::encode` where it is as fast, ours where ours is faster
//!
//! `put_uint`, `put_bool` and `put_nil` are `rmp::encode`'s writers (through [`Sink`]).
//! The others stay hand-written because they measured clearly faster than `rmp::encode`: rmp's
//! header and string writers are not inlined (each is a call, and a frame is mostly small
//! headers and keys), and bytes' `put_u8`/`put_slice` on a `BytesMut` are. Measured with
//! `benches/writers.rs` (both implementations in one run, bench profile = release: fat LTO, one
//! codegen unit; one core of a 2-core Xeon VM):
//!
//! ```text
//! cargo bench -p actor-ipc --bench writers --no-run
//! taskset -c 0 cargo bench -p actor-ipc --bench writers
//! ```
//!
//! ns per iteration, median of 15 repetitions (ours = hand-written, rmp = `rmp::encode`
//! through [`Sink`]):
//!
//! | case                                 |   ours |    rmp |   rmp vs ours |
//! |--------------------------------------|-------:|-------:|--------------:|
//! | `yield` frame, u64 value             |   15.2 |   16.1 |    +6 %       |
//! | `return` frame, `{sum, ok}`          |   40.4 |   63.3 |   +57 %       |
//! | `cmd` frame                          |   58.8 |   89.8 |   +53 %       |
//! | `yield` frame, 1 MiB bin             |  47666 |  49315 |    +3 % (memcpy) |
//! | nested `Value` (`put_value`), 371 B  |  519.6 |  679.5 |   +31 %       |
//! | 16 `put_uint`, all widths            |   83.1 |   70.4 |   −15 % → rmp |
//! | 16 `put_int`, negative               |   71.3 |   81.5 |   +14 % → ours |
//! | 8 `put_str`, 0–100 B                 |   52.0 |   83.7 |   +61 % → ours |
//! | 8 `put_map_len` + 8 `put_array_len`  |   59.4 |   96.0 |   +62 % → ours |
//! | 8 `put_bin`, 0–1000 B                |   65.5 |   75.5 |   +15 % → ours |
//! | 8 `put_ext`, 1–300 B                 |   68.6 |   82.7 |   +21 % → ours |
//! | 8 `put_bool` + 8 `put_nil`           |   15.0 |   15.7 |    +5 % → rmp |
//! | 8 f64 + 8 f32 (in `put_value`)       |   26.2 |   41.0 |   +56 % → ours |
//!
//! Four other runs of the same bench gave the same verdicts (the VM is noisy: min..max spreads
//! are often ±20 %). The close calls, rmp against ours in those runs: uints −18 %, −17 %,
//! −19 %, +5 % (taken from rmp); bool + nil −13 %, +1 %, −2 % (taken from rmp); negative ints
//! −0 %, +6 %, +7 %, +5 % (kept ours: rmp slower in 4 runs of 5, by over 5 % in 3).
//!
//! `put_value` walks the tree itself rather than calling `rmpv::encode::write_value`, which
//! would write a non-UTF-8 string as bin and so change the bytes. Every writer writes the
//! shortest form, byte for byte what msgspec and rmp write.

use std::io;

use bytes::{BufMut, BytesMut};

/// `io::Write` over a `BytesMut`, for `rmp::encode`: each write is one `extend_from_slice`,
/// and none fails (the buffer grows). bytes' own `BufMut::writer()` adapter measured slower.
struct Sink<'a>(&'a mut BytesMut);

impl io::Write for Sink<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Drops the result of an `rmp::encode` writer run on a [`Sink`]: rmp reports the writer's
/// errors, and a [`Sink`] has none, so the result is always `Ok`.
#[inline]
fn cannot_fail<T, E>(_result: Result<T, E>) {}

/// Writes a map header.
pub(crate) fn put_map_len(buf: &mut BytesMut, len: usize) {
    match len {
        0..=15 => buf.put_u8(0x80 | len as u8),
        16..=0xffff => {
            buf.put_u8(0xde);
            buf.put_u16(len as u16);
        }
        _ => {
            buf.put_u8(0xdf);
            buf.put_u32(len as u32);
        }
    }
}

/// Writes an array header.
pub(crate) fn put_array_len(buf: &mut BytesMut, len: usize) {
    match len {
        0..=15 => buf.put_u8(0x90 | len as u8),
        16..=0xffff => {
            buf.put_u8(0xdc);
            buf.put_u16(len as u16);
        }
        _ => {
            buf.put_u8(0xdd);
            buf.put_u32(len as u32);
        }
    }
}

/// Writes the header of a bin of `len` bytes in its shortest form (what rmp-serde writes for
/// serde bytes); the bytes themselves follow it.
pub(crate) fn put_bin_len(buf: &mut BytesMut, len: u32) {
    cannot_fail(rmp::encode::write_bin_len(&mut Sink(buf), len));
}

/// Writes a string in its shortest form.
pub(crate) fn put_str(buf: &mut BytesMut, s: &str) {
    put_raw_str(buf, s.as_bytes());
}

/// Writes an unsigned integer in its shortest form (`rmp::encode::write_uint`).
pub(crate) fn put_uint(buf: &mut BytesMut, n: u64) {
    cannot_fail(rmp::encode::write_uint(&mut Sink(buf), n));
}

/// Writes a signed integer in its shortest form: non-negative values as unsigned (as msgspec
/// and rmp do), through [`put_uint`]; negative ones by hand (measured faster, see above).
fn put_int(buf: &mut BytesMut, n: i64) {
    if let Ok(u) = u64::try_from(n) {
        return put_uint(buf, u);
    }
    match n {
        -32..=-1 => buf.put_i8(n as i8),
        -128..=-33 => {
            buf.put_u8(0xd0);
            buf.put_i8(n as i8);
        }
        -32768..=-129 => {
            buf.put_u8(0xd1);
            buf.put_i16(n as i16);
        }
        -2_147_483_648..=-32769 => {
            buf.put_u8(0xd2);
            buf.put_i32(n as i32);
        }
        _ => {
            buf.put_u8(0xd3);
            buf.put_i64(n);
        }
    }
}

/// Writes a byte string (msgpack bin) header and body.
fn put_bin(buf: &mut BytesMut, data: &[u8]) {
    let len = data.len();
    match len {
        0..=0xff => {
            buf.put_u8(0xc4);
            buf.put_u8(len as u8);
        }
        0x100..=0xffff => {
            buf.put_u8(0xc5);
            buf.put_u16(len as u16);
        }
        _ => {
            buf.put_u8(0xc6);
            buf.put_u32(len as u32);
        }
    }
    buf.put_slice(data);
}

/// Writes a dynamic value, every scalar in its shortest form and floats at their own width.
pub(crate) fn put_value(buf: &mut BytesMut, value: &rmpv::Value) {
    use rmpv::Value;
    match value {
        Value::Nil => put_nil(buf),
        Value::Boolean(b) => put_bool(buf, *b),
        Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => put_uint(buf, u),
            (None, Some(n)) => put_int(buf, n),
            (None, None) => put_nil(buf), // unreachable: an Integer is always one of the two
        },
        Value::F32(f) => {
            buf.put_u8(0xca);
            buf.put_f32(*f);
        }
        Value::F64(f) => {
            buf.put_u8(0xcb);
            buf.put_f64(*f);
        }
        Value::String(s) => match s.as_str() {
            Some(text) => put_str(buf, text),
            // Kept bytes of a string that was not UTF-8: write them back as they came.
            None => put_raw_str(buf, s.as_bytes()),
        },
        Value::Binary(data) => put_bin(buf, data),
        Value::Array(items) => {
            put_array_len(buf, items.len());
            for item in items {
                put_value(buf, item);
            }
        }
        Value::Map(entries) => {
            put_map_len(buf, entries.len());
            for (k, v) in entries {
                put_value(buf, k);
                put_value(buf, v);
            }
        }
        Value::Ext(tag, data) => put_ext(buf, *tag, data),
    }
}

fn put_raw_str(buf: &mut BytesMut, bytes: &[u8]) {
    let len = bytes.len();
    match len {
        0..=31 => buf.put_u8(0xa0 | len as u8),
        32..=0xff => {
            buf.put_u8(0xd9);
            buf.put_u8(len as u8);
        }
        0x100..=0xffff => {
            buf.put_u8(0xda);
            buf.put_u16(len as u16);
        }
        _ => {
            buf.put_u8(0xdb);
            buf.put_u32(len as u32);
        }
    }
    buf.put_slice(bytes);
}

fn put_ext(buf: &mut BytesMut, tag: i8, data: &[u8]) {
    match data.len() {
        1 => buf.put_u8(0xd4),
        2 => buf.put_u8(0xd5),
        4 => buf.put_u8(0xd6),
        8 => buf.put_u8(0xd7),
        16 => buf.put_u8(0xd8),
        len @ 0..=0xff => {
            buf.put_u8(0xc7);
            buf.put_u8(len as u8);
        }
        len @ 0x100..=0xffff => {
            buf.put_u8(0xc8);
            buf.put_u16(len as u16);
        }
        len => {
            buf.put_u8(0xc9);
            buf.put_u32(len as u32);
        }
    }
    buf.put_i8(tag);
    buf.put_slice(data);
}

/// Writes a boolean (`rmp::encode::write_bool`).
pub(crate) fn put_bool(buf: &mut BytesMut, b: bool) {
    cannot_fail(rmp::encode::write_bool(&mut Sink(buf), b));
}

/// Writes nil (`rmp::encode::write_nil`).
pub(crate) fn put_nil(buf: &mut BytesMut) {
    cannot_fail(rmp::encode::write_nil(&mut Sink(buf)));
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
    fn writers_pick_the_shortest_form() {
        for n in [
            0u64,
            127,
            128,
            255,
            256,
            65535,
            65536,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut buf = BytesMut::new();
            put_uint(&mut buf, n);
            assert_eq!(&buf[..], &encoded(&n.into())[..], "{n}");
        }
        for n in [
            -1i64,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i32::MIN as i64,
            i64::MIN,
        ] {
            let mut buf = BytesMut::new();
            put_int(&mut buf, n);
            assert_eq!(&buf[..], &encoded(&n.into())[..], "{n}");
        }
        for len in [0usize, 31, 32, 255, 256, 70000] {
            let s = "x".repeat(len);
            let mut buf = BytesMut::new();
            put_str(&mut buf, &s);
            assert_eq!(&buf[..], &encoded(&s.as_str().into())[..], "{len}");
        }
        for n in [0i64, 127, 128, 65536, i64::MAX] {
            let mut buf = BytesMut::new();
            put_int(&mut buf, n);
            assert_eq!(&buf[..], &encoded(&n.into())[..], "{n}");
        }
        let mut buf = BytesMut::new();
        put_bool(&mut buf, true);
        put_bool(&mut buf, false);
        put_nil(&mut buf);
        assert_eq!(&buf[..], &[0xc3, 0xc2, 0xc0]);
    }
}
