//! Our hand-written msgpack writers against `rmp::encode`, on the frames of the hot paths.
//!
//! This is what decided which msgpack writers `src/msgpack/write.rs` uses (its figures are at
//! the top of that file). Build and run it pinned to one core (the bench profile is the release
//! profile: fat LTO, one codegen unit):
//!
//! ```text
//! cargo bench -p actor-ipc --bench writers --no-run
//! taskset -c 0 cargo bench -p actor-ipc --bench writers
//! ```
//!
//! Every case is written by one piece of composition code, generic over the writer set, so the
//! sets differ only in their writers (`sets.rs`):
//! - `ours`: the hand-written writers the crate had before (`BufMut` calls on a `BytesMut`),
//!   copied here verbatim as the reference;
//! - `rmp`: `rmp::encode` through a minimal `io::Write` over the `BytesMut` (each write one
//!   `extend_from_slice`), the same adapter as the crate's `Sink`;
//! - `rmp+writer`: `rmp::encode` through `bytes`' `BufMut::writer()` adapter, to show what the
//!   adapter costs.
//!
//! Before timing, each case checks that all three write the same bytes as actor-ipc's own
//! encoder (`Msg::yield_frame`, `Msg::cmd_frame`, `Payload::from_value`, ...). Each figure is
//! ns per frame (or per value), the median of `REPS` repetitions of `n` iterations into a reused
//! buffer; the sets take turns within each repetition so drift hits them alike.

// Bench code: a failed check is a failed run, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sets;

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use actor_ipc::{CmdRef, Msg, Payload, Uid, Value, frame::put_framed};
use bytes::BytesMut;
use sets::{Ours, Rmp, RmpWriter, Writers};

/// Repetitions per case and writer set; the median is reported.
const REPS: usize = 15;

// ---------------------------------------------------------------------------------------------
// The cases, written as actor-ipc writes them (keys in tractor's order).
// ---------------------------------------------------------------------------------------------

fn put_value<W: Writers>(buf: &mut BytesMut, value: &Value) {
    match value {
        Value::Nil => W::nil(buf),
        Value::Boolean(b) => W::bool(buf, *b),
        Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => W::uint(buf, u),
            (None, Some(n)) => W::int(buf, n),
            (None, None) => W::nil(buf),
        },
        Value::F32(f) => W::f32(buf, *f),
        Value::F64(f) => W::f64(buf, *f),
        Value::String(s) => match s.as_str() {
            Some(text) => W::str(buf, text),
            None => W::raw_str(buf, s.as_bytes()),
        },
        Value::Binary(data) => W::bin(buf, data),
        Value::Array(items) => {
            W::array_len(buf, items.len());
            for item in items {
                put_value::<W>(buf, item);
            }
        }
        Value::Map(entries) => {
            W::map_len(buf, entries.len());
            for (k, v) in entries {
                put_value::<W>(buf, k);
                put_value::<W>(buf, v);
            }
        }
        Value::Ext(tag, data) => W::ext(buf, *tag, data),
    }
}

fn put_cid<W: Writers>(buf: &mut BytesMut, cid: &str) {
    W::str(buf, "cid");
    W::str(buf, cid);
}

/// `{"yield": n, "cid": cid}` framed.
fn yield_u64<W: Writers>(buf: &mut BytesMut, cid: &str, n: u64) {
    put_framed(buf, |buf| {
        W::map_len(buf, 2);
        W::str(buf, "yield");
        W::uint(buf, n);
        put_cid::<W>(buf, cid);
    })
    .unwrap();
}

/// `{"yield": <bin>, "cid": cid}` framed.
fn yield_bin<W: Writers>(buf: &mut BytesMut, cid: &str, data: &[u8]) {
    put_framed(buf, |buf| {
        W::map_len(buf, 2);
        W::str(buf, "yield");
        W::bin(buf, data);
        put_cid::<W>(buf, cid);
    })
    .unwrap();
}

/// `{"return": value, "cid": cid}` framed.
fn return_value<W: Writers>(buf: &mut BytesMut, cid: &str, value: &Value) {
    put_framed(buf, |buf| {
        W::map_len(buf, 2);
        W::str(buf, "return");
        put_value::<W>(buf, value);
        put_cid::<W>(buf, cid);
    })
    .unwrap();
}

/// A call's parts.
struct Call {
    ns: &'static str,
    func: &'static str,
    kwargs: Vec<(&'static str, i64)>,
    caller: Uid,
    cid: String,
}

/// `{"cmd": [ns, func, kwargs, [name, uuid], cid]}` framed.
fn cmd<W: Writers>(buf: &mut BytesMut, call: &Call) {
    put_framed(buf, |buf| {
        W::map_len(buf, 1);
        W::str(buf, "cmd");
        W::array_len(buf, 5);
        W::str(buf, call.ns);
        W::str(buf, call.func);
        W::map_len(buf, call.kwargs.len());
        for (k, v) in &call.kwargs {
            W::str(buf, k);
            W::int(buf, *v);
        }
        W::array_len(buf, 2);
        W::str(buf, &call.caller.name);
        W::str(buf, &call.caller.uuid);
        W::str(buf, &call.cid);
    })
    .unwrap();
}

const UINTS: [u64; 16] = [
    0,
    7,
    127,
    128,
    255,
    256,
    1000,
    65535,
    65536,
    1 << 20,
    u32::MAX as u64,
    1 << 33,
    u64::MAX,
    42,
    3,
    200,
];
const NEG_INTS: [i64; 16] = [
    -1,
    -5,
    -32,
    -33,
    -100,
    -128,
    -129,
    -1000,
    -32768,
    -32769,
    -1 << 20,
    i32::MIN as i64,
    -1 << 40,
    i64::MIN,
    -7,
    -300,
];
const STRS: [&str; 8] = [
    "",
    "cid",
    "functype",
    "0123456789abcdef0123456789abcde",
    "0123456789abcdef0123456789abcdef",
    "3f1c2a9e-5b7d-4c1e-9f00-7a2b3c4d5e6f",
    "a string of one hundred characters, give or take: a string of one hundred characters, give or take!",
    "",
];

fn uints<W: Writers>(buf: &mut BytesMut, ns: &[u64; 16]) {
    for n in ns {
        W::uint(buf, *n);
    }
}

fn neg_ints<W: Writers>(buf: &mut BytesMut, ns: &[i64; 16]) {
    for n in ns {
        W::int(buf, *n);
    }
}

fn strs<W: Writers>(buf: &mut BytesMut, ss: &[&str; 8]) {
    for s in ss {
        W::str(buf, s);
    }
}

fn bins<W: Writers>(buf: &mut BytesMut, blobs: &[Vec<u8>; 8]) {
    for b in blobs {
        W::bin(buf, b);
    }
}

fn exts<W: Writers>(buf: &mut BytesMut, exts: &[(i8, Vec<u8>); 8]) {
    for (tag, data) in exts {
        W::ext(buf, *tag, data);
    }
}

fn bools_nils<W: Writers>(buf: &mut BytesMut, flags: &[bool; 8]) {
    for b in flags {
        W::bool(buf, *b);
        W::nil(buf);
    }
}

fn floats<W: Writers>(buf: &mut BytesMut, fs: &[f64; 8]) {
    for f in fs {
        W::f64(buf, *f);
        W::f32(buf, *f as f32);
    }
}

fn headers<W: Writers>(buf: &mut BytesMut, lens: &[usize; 8]) {
    for len in lens {
        W::map_len(buf, *len);
        W::array_len(buf, *len);
    }
}

/// A nested dynamic value of every kind.
fn nested_value() -> Value {
    let ints = UINTS
        .iter()
        .map(|n| Value::from(*n))
        .chain(NEG_INTS.iter().map(|n| Value::from(*n)));
    let point = |x: i64, y: i64| Value::Map(vec![("x".into(), x.into()), ("y".into(), y.into())]);
    Value::Map(vec![
        ("name".into(), "worker-7".into()),
        ("ids".into(), Value::Array(ints.collect())),
        ("ratio".into(), Value::F64(0.25)),
        ("scale".into(), Value::F32(1.5)),
        (
            "tags".into(),
            Value::Array(vec![
                "alpha".into(),
                "beta".into(),
                "gamma".into(),
                "delta".into(),
            ]),
        ),
        ("blob".into(), Value::Binary(vec![0xab; 64])),
        (
            "nested".into(),
            Value::Map(vec![
                (
                    "points".into(),
                    Value::Array(vec![point(1, -1), point(200, -200), point(70000, -70000)]),
                ),
                ("none".into(), Value::Nil),
                ("ok".into(), Value::Boolean(true)),
                ("ext".into(), Value::Ext(5, vec![1, 2, 3, 4])),
            ]),
        ),
        ("long".into(), "x".repeat(40).into()),
    ])
}

/// Median ns per iteration of `n` runs of `f`, over [`REPS`] repetitions.
struct Samples(Vec<f64>);

impl Samples {
    fn median(&mut self) -> f64 {
        self.0.sort_by(f64::total_cmp);
        self.0[self.0.len() / 2]
    }

    fn spread(&self) -> (f64, f64) {
        (self.0[0], self.0[self.0.len() - 1])
    }
}

#[inline(never)]
fn time_once(n: usize, buf: &mut BytesMut, mut write: impl FnMut(&mut BytesMut)) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        buf.clear();
        write(black_box(&mut *buf));
        black_box(&*buf);
    }
    let elapsed: Duration = start.elapsed();
    elapsed.as_nanos() as f64 / n as f64
}

/// One case: each writer set's function writes into its own reused buffer; `expected` is what
/// actor-ipc itself writes. The closures are generic, so each set's loop is compiled (and
/// inlined) on its own, with no dynamic call in the timed loop.
fn case(
    name: &str,
    n: usize,
    expected: &[u8],
    mut ours: impl FnMut(&mut BytesMut),
    mut rmp: impl FnMut(&mut BytesMut),
    mut rmp_writer: impl FnMut(&mut BytesMut),
) {
    let mut bufs: Vec<BytesMut> = (0..3)
        .map(|_| BytesMut::with_capacity(expected.len() + 64))
        .collect();
    let mut run = |set: usize, n: usize, buf: &mut BytesMut| match set {
        0 => time_once(n, buf, &mut ours),
        1 => time_once(n, buf, &mut rmp),
        _ => time_once(n, buf, &mut rmp_writer),
    };
    for (set, buf) in bufs.iter_mut().enumerate() {
        run(set, 1, buf);
        assert_eq!(
            &buf[..],
            expected,
            "{name}: writer set {set} writes other bytes than actor-ipc"
        );
        // Warm-up: caches, branch predictors, the buffer's pages.
        run(set, n / 10 + 1, buf);
    }
    let mut samples: Vec<Samples> = (0..3).map(|_| Samples(Vec::with_capacity(REPS))).collect();
    for rep in 0..REPS {
        for k in 0..3 {
            let set = (rep + k) % 3;
            samples[set].0.push(run(set, n, &mut bufs[set]));
        }
    }
    let medians: Vec<f64> = samples.iter_mut().map(Samples::median).collect();
    let cell = |i: usize| {
        let (lo, hi) = samples[i].spread();
        format!("{:>10.1} [{:.1}..{:.1}]", medians[i], lo, hi)
    };
    println!(
        "{name:<22} {:>6} B | {} | {} {:>+6.1}% | {} {:>+6.1}%",
        expected.len(),
        cell(0),
        cell(1),
        (medians[1] / medians[0] - 1.0) * 100.0,
        cell(2),
        (medians[2] / medians[0] - 1.0) * 100.0,
    );
}

/// Runs [`case`] with `$write::<W>(buf, args...)` for each writer set `W`.
macro_rules! case {
    ($name:expr, $n:expr, $expected:expr, $write:ident($($arg:expr),*)) => {
        case(
            $name,
            $n,
            $expected,
            |b: &mut BytesMut| $write::<Ours>(b, $(black_box($arg)),*),
            |b: &mut BytesMut| $write::<Rmp>(b, $(black_box($arg)),*),
            |b: &mut BytesMut| $write::<RmpWriter>(b, $(black_box($arg)),*),
        )
    };
}

/// The bytes of `values` each encoded by rmp-serde (the reference for the single writers).
fn serde_encoded<T: serde::Serialize>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(Payload::encode(v).unwrap().as_bytes());
    }
    out
}

fn main() {
    // `cargo bench` passes `--bench`; there are no options.
    println!(
        "ns per iteration: median [min..max] of {REPS} repetitions; % is the median against ours"
    );
    println!(
        "{:<22} {:>8} | {:>28} | {:>36} | {:>36}",
        "case", "bytes", "ours", "rmp (io::Write sink)", "rmp (BufMut::writer)"
    );

    let cid = "3f1c2a9e-5b7d-4c1e-9f00-7a2b3c4d5e6f";

    let n: u64 = 1_234_567;
    let expected = Msg::yield_frame(cid, &Payload::encode(&n).unwrap()).unwrap();
    case!("yield u64", 2_000_000, &expected, yield_u64(cid, n));

    let record = Value::Map(vec![("sum".into(), 3.into()), ("ok".into(), true.into())]);
    let expected = Msg::return_frame(cid, &Payload::from_value(&record)).unwrap();
    case!(
        "return {sum, ok}",
        2_000_000,
        &expected,
        return_value(cid, &record)
    );

    let call = Call {
        ns: "examples.math",
        func: "add",
        kwargs: vec![("a", 1), ("b", -2)],
        caller: Uid {
            name: "client".into(),
            uuid: "0f6c1d2e-3a4b-4c5d-8e9f-a0b1c2d3e4f5".into(),
        },
        cid: cid.into(),
    };
    let kwargs = Payload::from_value(&Value::Map(
        call.kwargs
            .iter()
            .map(|(k, v)| (Value::from(*k), Value::from(*v)))
            .collect(),
    ));
    let expected = Msg::cmd_frame(CmdRef {
        ns: call.ns,
        func: call.func,
        kwargs: &kwargs,
        caller: &call.caller,
        cid: &call.cid,
        trace: None,
    })
    .unwrap();
    case!("cmd", 2_000_000, &expected, cmd(&call));

    let blob = vec![0x5a_u8; 1 << 20];
    let expected =
        Msg::yield_frame(cid, &Payload::from_value(&Value::Binary(blob.clone()))).unwrap();
    case!(
        "yield 1 MiB bin",
        2_000,
        &expected,
        yield_bin(cid, &blob[..])
    );

    let value = nested_value();
    let expected = Payload::from_value(&value).into_bytes();
    case!("nested Value", 500_000, &expected, put_value(&value));

    // Single writers, 16 (or 8) calls per iteration, to attribute a difference.
    let expected = serde_encoded(&UINTS);
    case!("16 uints (all widths)", 2_000_000, &expected, uints(&UINTS));
    let expected = serde_encoded(&NEG_INTS);
    case!(
        "16 negative ints",
        2_000_000,
        &expected,
        neg_ints(&NEG_INTS)
    );
    let expected = serde_encoded(&STRS);
    case!("8 strs (0..100 B)", 2_000_000, &expected, strs(&STRS));
    let lens = [0usize, 1, 2, 5, 15, 16, 300, 70_000];
    let mut expected = Vec::new();
    for len in lens {
        rmp::encode::write_map_len(&mut expected, len as u32).unwrap();
        rmp::encode::write_array_len(&mut expected, len as u32).unwrap();
    }
    case!(
        "8 map + 8 array heads",
        2_000_000,
        &expected,
        headers(&lens)
    );

    // The remaining writers, checked against rmpv's encoder.
    let rmpv_encoded = |values: &[Value]| {
        let mut out = Vec::new();
        for v in values {
            rmpv::encode::write_value(&mut out, v).unwrap();
        }
        out
    };
    let blobs: [Vec<u8>; 8] = [0usize, 1, 16, 64, 255, 256, 300, 1000].map(|n| vec![7u8; n]);
    let expected = rmpv_encoded(&blobs.clone().map(Value::Binary));
    case!("8 bins (0..1000 B)", 2_000_000, &expected, bins(&blobs));
    let ext_list: [(i8, Vec<u8>); 8] =
        [1usize, 2, 4, 8, 16, 3, 100, 300].map(|n| (5i8, vec![9u8; n]));
    let expected = rmpv_encoded(&ext_list.clone().map(|(t, d)| Value::Ext(t, d)));
    case!("8 exts (1..300 B)", 2_000_000, &expected, exts(&ext_list));
    let flags = [true, false, true, true, false, false, true, false];
    let expected = rmpv_encoded(&flags.map(|b| [Value::Boolean(b), Value::Nil]).concat());
    case!("8 bools + 8 nils", 2_000_000, &expected, bools_nils(&flags));
    let fs = [
        0.0,
        1.5,
        -2.25,
        1e300,
        f64::MIN_POSITIVE,
        2.5e-7,
        -0.0,
        42.0,
    ];
    let expected = rmpv_encoded(&fs.map(|f| [Value::F64(f), Value::F32(f as f32)]).concat());
    case!("8 f64 + 8 f32", 2_000_000, &expected, floats(&fs));
}
