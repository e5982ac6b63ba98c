//! What `#[actor::remote]` registered: every remote function of the program, keyed by
//! `(namespace, name)`, with its kind and a handler that decodes its arguments and runs it.
//!
//! Registration is distributed: each annotated function submits a [`Registration`] through
//! `inventory`, so functions in any crate linked into the program are found without a
//! hand-written list.

use std::{collections::HashMap, sync::OnceLock};

use actor_ipc::{CallKind, Payload};
use futures::{future::BoxFuture, stream::BoxStream};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    base::error::Error,
    calls::context::Context,
    runtime::services::{Service, ServiceEnd},
};

/// A running request/response function: resolves to its encoded result.
pub type CallFuture = BoxFuture<'static, Result<Payload, Error>>;
/// A running one-way stream: its encoded items; an `Err` ends the stream with that error.
pub type ItemStream = BoxStream<'static, Result<StreamItem, Error>>;

/// Stream items this large are written from where they are (buffers of their own), not
/// copied into a buffer of frames.
pub const LARGE_ITEM: usize = 16 * 1024;

/// One item of a one-way stream, ready for the wire.
#[derive(Debug)]
pub enum StreamItem {
    /// The item, encoded.
    Value(Payload),
    /// The bytes of a [`Blob`](actor_ipc::Blob) or `Bytes` item of at least [`LARGE_ITEM`]
    /// bytes, to send as msgpack bin from where they are: encoding them first would copy them
    /// into a fresh buffer of their size (a page fault per 4 KiB of it), per item.
    Bin(bytes::Bytes),
}

/// How to start a registered function from its encoded kwargs. An `Err` from the outer call
/// means the arguments do not fit: the call is refused before it runs.
#[derive(Clone, Copy)]
pub enum Handler {
    /// `asyncfunc`.
    Func(fn(Payload) -> Result<CallFuture, Error>),
    /// `asyncgen`.
    Stream(fn(Payload) -> Result<ItemStream, Error>),
    /// `context`.
    Context(fn(Context, Payload) -> Result<CallFuture, Error>),
}

impl Handler {
    /// The protocol's kind for this handler.
    pub fn kind(&self) -> CallKind {
        match self {
            Self::Func(_) => CallKind::AsyncFunc,
            Self::Stream(_) => CallKind::AsyncGen,
            Self::Context(_) => CallKind::Context,
        }
    }
}

/// One remote function, as `#[actor::remote]` registers it.
pub struct Registration {
    /// Its namespace: the module path, or the `ns` given to the attribute.
    pub ns: &'static str,
    /// Its name.
    pub name: &'static str,
    /// How to run it.
    pub handler: Handler,
}

inventory::collect!(Registration);

/// Registered functions by `(ns, name)`.
type Table = HashMap<(&'static str, &'static str), &'static Registration, crate::base::FastHash>;

/// Every registered function, by `(ns, name)`.
fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        inventory::iter::<Registration>
            .into_iter()
            .map(|r| ((r.ns, r.name), r))
            .collect()
    })
}

/// The function registered as `ns.name`, if any.
pub fn lookup(ns: &str, name: &str) -> Option<&'static Registration> {
    table().get(&(ns, name)).copied()
}

/// The names of the functions registered in `ns`, sorted (for errors that list them).
pub fn functions_in(ns: &str) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = table()
        .keys()
        .filter(|(n, _)| *n == ns)
        .map(|(_, name)| *name)
        .collect();
    names.sort_unstable();
    names
}

/// Whether any function or service is registered in `ns`.
pub fn has_namespace(ns: &str) -> bool {
    table().keys().any(|(n, _)| *n == ns) || services(ns).next().is_some()
}

/// How a declared service starts.
#[derive(Clone, Copy)]
pub enum ServiceStart {
    /// An async service: a tokio task of the actor.
    Async(fn(Service) -> BoxFuture<'static, ServiceEnd>),
    /// A blocking service: a thread of its own.
    Blocking(fn(Service) -> ServiceEnd),
}

/// One service, as `#[actor::service]` registers it: started by every actor that enables its
/// namespace.
pub struct ServiceRegistration {
    /// Its namespace.
    pub ns: &'static str,
    /// Its name.
    pub name: &'static str,
    /// How to start it.
    pub start: ServiceStart,
}

inventory::collect!(ServiceRegistration);

/// The services declared in `ns`.
pub fn services(ns: &str) -> impl Iterator<Item = &'static ServiceRegistration> + '_ {
    inventory::iter::<ServiceRegistration>
        .into_iter()
        .filter(move |s| s.ns == ns)
}

/// Every registered function, sorted by namespace and name (for tools and `--help` texts).
pub fn all() -> Vec<&'static Registration> {
    let mut all: Vec<_> = table().values().copied().collect();
    all.sort_by_key(|r| (r.ns, r.name));
    all
}

/// A typed call of a request/response function: the arguments, by name.
///
/// `#[actor::remote]` implements it for the struct it generates beside an `async fn`, named
/// like the function, whose fields are the function's parameters: `portal.run(add { a: 1, b: 2 })`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a request/response remote function: `run`, `call` and `run_in_actor` take one",
    label = "not a call of an `#[actor::remote] async fn`",
    note = "a remote function is called through the struct `#[actor::remote]` generates beside it, named like it, with the arguments by name: `portal.run(add {{ a: 1, b: 2 }})`; `add(1, 2)` would run it here, in this process",
    note = "a stream function (one returning `impl Stream`) is opened with `portal.open_stream_from(..)`, a context function (one taking `actor::Context`) with `portal.open_context(..)`"
)]
pub trait RemoteFn: Serialize + Send + Sync {
    /// The function's namespace.
    const NS: &'static str;
    /// The function's name.
    const NAME: &'static str;
    /// What the function returns (the `Ok` type for a fallible function).
    type Output: DeserializeOwned + Send + 'static;
}

/// A typed call of a one-way stream function (`asyncgen`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a stream remote function: `open_stream_from` takes one",
    label = "not a call of an `#[actor::remote] fn .. -> impl Stream`",
    note = "a remote function is called through the struct `#[actor::remote]` generates beside it, named like it, with the arguments by name: `portal.open_stream_from(count {{ n: 3 }})`; `count(3)` would run it here, in this process",
    note = "a request/response function (an `async fn`) is called with `portal.run(..)`, a context function (one taking `actor::Context`) is opened with `portal.open_context(..)`"
)]
pub trait RemoteStreamFn: Serialize + Send + Sync {
    /// The function's namespace.
    const NS: &'static str;
    /// The function's name.
    const NAME: &'static str;
    /// The stream's item type (the `Ok` type for a fallible stream).
    type Item: DeserializeOwned + Send + 'static;
}

/// A typed call of a context function (bidirectional).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a context remote function: `open_context` takes one",
    label = "not a call of an `#[actor::remote] async fn (ctx: actor::Context, ..)`",
    note = "a remote function is called through the struct `#[actor::remote]` generates beside it, named like it, with the arguments by name (the context is not one): `portal.open_context(echo {{ first: 1 }})`",
    note = "a request/response function (an `async fn`) is called with `portal.run(..)`, a stream function (one returning `impl Stream`) is opened with `portal.open_stream_from(..)`"
)]
pub trait RemoteContextFn: Serialize + Send + Sync {
    /// The function's namespace.
    const NS: &'static str;
    /// The function's name.
    const NAME: &'static str;
    /// The context's final result.
    type Output: DeserializeOwned + Send + 'static;
    /// The callee's `started` value: the type given with `#[actor::remote(started = T)]` (the
    /// callee's `ctx.started(value)` is not checked against it: a value of another type is a
    /// decode error at the caller), else
    /// [`crate::Value`]: any value, to match on or decode with
    /// `actor::Payload::from_value(&value).decode::<T>()`.
    type Started: DeserializeOwned + Send + 'static;
}
