//! The writer sets the benchmark compares: one trait, three implementations.

use std::io;

use bytes::{BufMut, BytesMut};

/// One set of msgpack writers.
pub(crate) trait Writers {
    fn map_len(buf: &mut BytesMut, len: usize);
    fn array_len(buf: &mut BytesMut, len: usize);
    fn str(buf: &mut BytesMut, s: &str);
    fn raw_str(buf: &mut BytesMut, bytes: &[u8]);
    fn uint(buf: &mut BytesMut, n: u64);
    fn int(buf: &mut BytesMut, n: i64);
    fn bin(buf: &mut BytesMut, data: &[u8]);
    fn ext(buf: &mut BytesMut, tag: i8, data: &[u8]);
    fn f32(buf: &mut BytesMut, f: f32);
    fn f64(buf: &mut BytesMut, f: f64);
    fn bool(buf: &mut BytesMut, b: bool);
    fn nil(buf: &mut BytesMut);
}

/// The hand-written writers, as the crate had them before `rmp` was measured against them.
pub(crate) struct Ours;

impl Writers for Ours {
    fn map_len(buf: &mut BytesMut, len: usize) {
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

    fn array_len(buf: &mut BytesMut, len: usize) {
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

    fn str(buf: &mut BytesMut, s: &str) {
        Self::raw_str(buf, s.as_bytes());
    }

    fn raw_str(buf: &mut BytesMut, bytes: &[u8]) {
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

    fn uint(buf: &mut BytesMut, n: u64) {
        match n {
            0..=0x7f => buf.put_u8(n as u8),
            0x80..=0xff => {
                buf.put_u8(0xcc);
                buf.put_u8(n as u8);
            }
            0x100..=0xffff => {
                buf.put_u8(0xcd);
                buf.put_u16(n as u16);
            }
            0x1_0000..=0xffff_ffff => {
                buf.put_u8(0xce);
                buf.put_u32(n as u32);
            }
            _ => {
                buf.put_u8(0xcf);
                buf.put_u64(n);
            }
        }
    }

    fn int(buf: &mut BytesMut, n: i64) {
        if let Ok(u) = u64::try_from(n) {
            return Self::uint(buf, u);
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

    fn bin(buf: &mut BytesMut, data: &[u8]) {
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

    fn ext(buf: &mut BytesMut, tag: i8, data: &[u8]) {
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

    fn f32(buf: &mut BytesMut, f: f32) {
        buf.put_u8(0xca);
        buf.put_f32(f);
    }

    fn f64(buf: &mut BytesMut, f: f64) {
        buf.put_u8(0xcb);
        buf.put_f64(f);
    }

    fn bool(buf: &mut BytesMut, b: bool) {
        buf.put_u8(if b { 0xc3 } else { 0xc2 });
    }

    fn nil(buf: &mut BytesMut) {
        buf.put_u8(0xc0);
    }
}

/// `io::Write` over a `BytesMut`: every write is one `extend_from_slice`.
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

#[inline]
fn sink(buf: &mut BytesMut) -> Sink<'_> {
    Sink(buf)
}

#[inline]
fn bufmut_writer(buf: &mut BytesMut) -> bytes::buf::Writer<&mut BytesMut> {
    buf.writer()
}

/// `rmp::encode` through the writer `$sink` makes of the buffer. Writing to a `BytesMut`
/// cannot fail, so results are dropped.
macro_rules! rmp_writers {
    ($set:ident, $sink:ident) => {
        impl Writers for $set {
            fn map_len(buf: &mut BytesMut, len: usize) {
                let _ = rmp::encode::write_map_len(&mut $sink(buf), len as u32);
            }

            fn array_len(buf: &mut BytesMut, len: usize) {
                let _ = rmp::encode::write_array_len(&mut $sink(buf), len as u32);
            }

            fn str(buf: &mut BytesMut, s: &str) {
                let _ = rmp::encode::write_str(&mut $sink(buf), s);
            }

            fn raw_str(buf: &mut BytesMut, bytes: &[u8]) {
                let mut w = $sink(buf);
                let _ = rmp::encode::write_str_len(&mut w, bytes.len() as u32);
                let _ = io::Write::write_all(&mut w, bytes);
            }

            fn uint(buf: &mut BytesMut, n: u64) {
                let _ = rmp::encode::write_uint(&mut $sink(buf), n);
            }

            fn int(buf: &mut BytesMut, n: i64) {
                let _ = rmp::encode::write_sint(&mut $sink(buf), n);
            }

            fn bin(buf: &mut BytesMut, data: &[u8]) {
                let _ = rmp::encode::write_bin(&mut $sink(buf), data);
            }

            fn ext(buf: &mut BytesMut, tag: i8, data: &[u8]) {
                let mut w = $sink(buf);
                let _ = rmp::encode::write_ext_meta(&mut w, data.len() as u32, tag);
                let _ = io::Write::write_all(&mut w, data);
            }

            fn f32(buf: &mut BytesMut, f: f32) {
                let _ = rmp::encode::write_f32(&mut $sink(buf), f);
            }

            fn f64(buf: &mut BytesMut, f: f64) {
                let _ = rmp::encode::write_f64(&mut $sink(buf), f);
            }

            fn bool(buf: &mut BytesMut, b: bool) {
                let _ = rmp::encode::write_bool(&mut $sink(buf), b);
            }

            fn nil(buf: &mut BytesMut) {
                let _ = rmp::encode::write_nil(&mut $sink(buf));
            }
        }
    };
}

/// `rmp::encode` through [`Sink`].
pub(crate) struct Rmp;
rmp_writers!(Rmp, sink);

/// `rmp::encode` through `BufMut::writer()`.
pub(crate) struct RmpWriter;
rmp_writers!(RmpWriter, bufmut_writer);
