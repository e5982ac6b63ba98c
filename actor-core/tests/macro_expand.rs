//! What `#[actor::remote]` generates, checked from the outside: the typed-call structs, the
//! `Remote*Fn` impls, the registrations, and the registered handlers run directly on encoded
//! kwargs (no actor, no socket).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use actor::{
    __private::{Handler, RawPayload, StreamItem},
    RemoteContextFn, RemoteFn, RemoteStreamFn,
    registry::{self, Registration},
};
use futures::StreamExt;

/// Functions registered under their module path.
mod math {
    /// Adds.
    #[actor::remote]
    pub(crate) async fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    #[actor::remote]
    pub(crate) async fn ping() {}

    #[actor::remote]
    pub(crate) async fn div(a: i64, b: i64) -> actor::Result<i64> {
        if b == 0 {
            return Err(actor::Error::raise("ZeroDivisionError", "division by zero"));
        }
        Ok(a / b)
    }

    #[actor::remote]
    pub(crate) async fn parse(text: String) -> Result<i64, std::num::ParseIntError> {
        text.parse()
    }

    /// An `Option` parameter may be left out of the kwargs.
    #[actor::remote]
    pub(crate) async fn greet(name: String, mut title: Option<String>) -> String {
        let title = title.take().map(|t| t + " ").unwrap_or_default();
        format!("hello {title}{name}")
    }

    /// Raw identifiers travel without their `r#`.
    #[actor::remote]
    pub(crate) async fn r#type(r#in: String) -> String {
        format!("type of {in_}", in_ = r#in)
    }
}

/// Functions registered under a namespace of their own.
mod demo {
    use futures::{Stream, StreamExt};

    #[actor::remote(ns = "demo")]
    pub(crate) fn count(n: u64) -> impl futures::Stream<Item = u64> + Send + 'static {
        futures::stream::iter(0..n)
    }

    /// Counts down from `from`, failing when it passes zero.
    /// Blobs of the sizes asked for, all sharing one buffer of the largest.
    #[actor::remote(ns = "demo")]
    pub(crate) fn blobs(sizes: Vec<usize>) -> impl Stream<Item = actor::Result<actor::Blob>> {
        let shared = bytes::Bytes::from(vec![0xab; sizes.iter().copied().max().unwrap_or(0)]);
        futures::stream::iter(sizes).map(move |size| Ok(actor::Blob(shared.slice(..size))))
    }

    #[actor::remote(ns = "demo")]
    pub(crate) fn countdown(from: i64) -> impl Stream<Item = std::io::Result<i64>> {
        futures::stream::iter((-1..=from).rev()).map(|n| {
            if n < 0 {
                Err(std::io::Error::other("below zero"))
            } else {
                Ok(n)
            }
        })
    }

    #[actor::remote(ns = "demo")]
    pub(crate) async fn echo(_ctx: actor::Context, start: i64) -> actor::Result<String> {
        Ok(start.to_string())
    }

    use actor::Context as Ctx;

    /// `context` makes a function whose first parameter is an alias a context function.
    #[actor::remote(ns = "demo", context)]
    pub(crate) async fn aliased(_ctx: Ctx) {}
}

fn lookup(ns: &str, name: &str) -> &'static Registration {
    registry::lookup(ns, name).unwrap_or_else(|| panic!("{ns}.{name} is not registered"))
}

/// An item that was encoded.
fn value(item: StreamItem) -> RawPayload {
    match item {
        StreamItem::Value(value) => value,
        StreamItem::Bin(bin) => panic!("{} bytes of bin, not an encoded value", bin.len()),
    }
}

#[tokio::test]
async fn a_stream_keeps_large_blobs_as_their_bytes_and_encodes_small_ones() {
    let Handler::Stream(blobs) = lookup("demo", "blobs").handler else {
        panic!("blobs is not a stream");
    };
    let large = actor::registry::LARGE_ITEM;
    let sizes = vec![large - 1, large, 4 * large];
    let items: Vec<StreamItem> = blobs(kwargs(&demo::blobs { sizes }))
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    // Below the line: encoded as msgpack bin, like any value.
    let [small, at_line, above] = &items[..] else {
        panic!("3 items, got {items:?}");
    };
    let StreamItem::Value(small) = small else {
        panic!("a small blob was not encoded: {small:?}");
    };
    assert_eq!(small.decode::<actor::Blob>().unwrap().len(), large - 1);
    // From the line up: the blob's own bytes (the same buffer: not copied).
    let (StreamItem::Bin(at_line), StreamItem::Bin(above)) = (at_line, above) else {
        panic!("large blobs were encoded: {at_line:?}, {above:?}");
    };
    assert_eq!((at_line.len(), above.len()), (large, 4 * large));
    assert_eq!(at_line.as_ptr(), above.as_ptr());
}

fn kwargs<T: serde::Serialize>(value: &T) -> RawPayload {
    RawPayload::encode(value).unwrap()
}

async fn call(reg: &Registration, args: RawPayload) -> actor::Result<RawPayload> {
    let Handler::Func(handler) = reg.handler else {
        panic!("{}.{} is not a request/response function", reg.ns, reg.name);
    };
    handler(args)?.await
}

#[test]
fn the_typed_call_names_the_function() {
    assert_eq!(<math::add as RemoteFn>::NS, "macro_expand::math");
    assert_eq!(<math::add as RemoteFn>::NAME, "add");
    assert_eq!(<math::r#type as RemoteFn>::NAME, "type");
    assert_eq!(<demo::count as RemoteStreamFn>::NS, "demo");
    assert_eq!(<demo::count as RemoteStreamFn>::NAME, "count");
    assert_eq!(<demo::echo as RemoteContextFn>::NS, "demo");
    assert_eq!(<demo::echo as RemoteContextFn>::NAME, "echo");
}

#[test]
fn output_types_unwrap_results() {
    fn output<F: RemoteFn>(_: &F) -> std::any::TypeId {
        std::any::TypeId::of::<F::Output>()
    }
    fn item<F: RemoteStreamFn>(_: &F) -> std::any::TypeId {
        std::any::TypeId::of::<F::Item>()
    }
    fn context_output<F: RemoteContextFn>(_: &F) -> std::any::TypeId {
        std::any::TypeId::of::<F::Output>()
    }
    use std::any::TypeId;
    assert_eq!(output(&math::add { a: 1, b: 2 }), TypeId::of::<i64>());
    assert_eq!(output(&math::ping {}), TypeId::of::<()>());
    assert_eq!(output(&math::div { a: 1, b: 2 }), TypeId::of::<i64>());
    let parse = math::parse { text: "1".into() };
    assert_eq!(output(&parse), TypeId::of::<i64>());
    assert_eq!(item(&demo::count { n: 1 }), TypeId::of::<u64>());
    assert_eq!(item(&demo::countdown { from: 1 }), TypeId::of::<i64>());
    assert_eq!(
        context_output(&demo::echo { start: 1 }),
        TypeId::of::<String>()
    );
    assert_eq!(context_output(&demo::aliased {}), TypeId::of::<()>());
}

#[tokio::test]
async fn the_function_stays_callable_locally() {
    assert_eq!(math::add(1, 2).await, 3);
    assert_eq!(math::r#type("x".into()).await, "type of x");
    let items: Vec<u64> = demo::count(3).collect().await;
    assert_eq!(items, [0, 1, 2]);
}

#[test]
fn every_kind_is_registered() {
    let kinds = [
        ("macro_expand::math", "add", "func"),
        ("macro_expand::math", "ping", "func"),
        ("macro_expand::math", "div", "func"),
        ("macro_expand::math", "parse", "func"),
        ("macro_expand::math", "type", "func"),
        ("demo", "count", "stream"),
        ("demo", "countdown", "stream"),
        ("demo", "echo", "context"),
        ("demo", "aliased", "context"),
    ];
    for (ns, name, kind) in kinds {
        let reg = lookup(ns, name);
        assert_eq!((reg.ns, reg.name), (ns, name));
        let actual = match reg.handler {
            Handler::Func(_) => "func",
            Handler::Stream(_) => "stream",
            Handler::Context(_) => "context",
        };
        assert_eq!(actual, kind, "{ns}.{name}");
    }
    assert!(registry::lookup("demo", "add").is_none());
}

#[tokio::test]
async fn a_registered_function_runs_on_its_kwargs() {
    let add = lookup("macro_expand::math", "add");
    let result = call(add, kwargs(&math::add { a: 1, b: 2 })).await.unwrap();
    assert_eq!(result.decode::<i64>().unwrap(), 3);

    let ping = lookup("macro_expand::math", "ping");
    let result = call(ping, kwargs(&math::ping {})).await.unwrap();
    result.decode::<()>().unwrap();

    let greet = lookup("macro_expand::math", "greet");
    let args = std::collections::BTreeMap::from([("name", "ada")]);
    let result = call(greet, kwargs(&args)).await.unwrap();
    assert_eq!(result.decode::<String>().unwrap(), "hello ada");
    let args = math::greet {
        name: "ada".into(),
        title: Some("dr".into()),
    };
    let result = call(greet, kwargs(&args)).await.unwrap();
    assert_eq!(result.decode::<String>().unwrap(), "hello dr ada");

    let ty = lookup("macro_expand::math", "type");
    let args = std::collections::BTreeMap::from([("in", "y")]);
    let result = call(ty, kwargs(&args)).await.unwrap();
    assert_eq!(result.decode::<String>().unwrap(), "type of y");
}

#[tokio::test]
async fn arguments_that_do_not_fit_refuse_the_call() {
    let add = lookup("macro_expand::math", "add");
    let missing = std::collections::BTreeMap::from([("a", 1)]);
    let unknown = std::collections::BTreeMap::from([("a", 1), ("b", 2), ("c", 3)]);
    let wrong_type = std::collections::BTreeMap::from([("a", "1"), ("b", "2")]);
    for args in [kwargs(&missing), kwargs(&unknown), kwargs(&wrong_type)] {
        let Handler::Func(handler) = add.handler else {
            unreachable!()
        };
        let Err(err) = handler(args) else {
            panic!("the call was not refused");
        };
        assert_eq!(err.type_str(), "TypeError", "{err}");
        assert!(err.to_string().contains("add(): bad arguments"), "{err}");
    }
}

#[tokio::test]
async fn a_failing_function_fails_the_call() {
    let div = lookup("macro_expand::math", "div");
    let result = call(div, kwargs(&math::div { a: 7, b: 2 })).await.unwrap();
    assert_eq!(result.decode::<i64>().unwrap(), 3);
    let err = call(div, kwargs(&math::div { a: 1, b: 0 }))
        .await
        .unwrap_err();
    assert_eq!(err.type_str(), "ZeroDivisionError");

    let parse = lookup("macro_expand::math", "parse");
    let err = call(parse, kwargs(&math::parse { text: "x".into() }))
        .await
        .unwrap_err();
    assert_eq!(err.type_str(), "ParseIntError");
}

#[tokio::test]
async fn a_registered_stream_yields_encoded_items() {
    let Handler::Stream(count) = lookup("demo", "count").handler else {
        panic!("count is not a stream");
    };
    let items: Vec<u64> = count(kwargs(&demo::count { n: 3 }))
        .unwrap()
        .map(|item| value(item.unwrap()).decode::<u64>().unwrap())
        .collect()
        .await;
    assert_eq!(items, [0, 1, 2]);

    let Handler::Stream(countdown) = lookup("demo", "countdown").handler else {
        panic!("countdown is not a stream");
    };
    let items: Vec<actor::Result<RawPayload>> = countdown(kwargs(&demo::countdown { from: 1 }))
        .unwrap()
        .map(|item| item.map(value))
        .collect()
        .await;
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].as_ref().unwrap().decode::<i64>().unwrap(), 1);
    assert_eq!(items[1].as_ref().unwrap().decode::<i64>().unwrap(), 0);
    let err = items[2].as_ref().unwrap_err();
    assert!(err.to_string().contains("below zero"), "{err}");
}
