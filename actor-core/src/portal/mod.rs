//! Floor 6, portals: the caller's side of another actor.
//!
//! A [`Portal`] is a cheap, cloneable handle on a connection. Many calls may be in flight on
//! one portal from many tasks; replies are routed by call id. Every call kind is typed through
//! the struct `#[actor::remote]` generates beside the function, and untyped through
//! [`Portal::run_from_ns`] for tools and foreign peers.
//!
//! Dropping a pending call, a stream or a context sends `_cancel_task` for it; the explicit
//! cancels ([`CallHandle::cancel`], [`RemoteStream::cancel`], [`Context::cancel`]) wait for the
//! acknowledgement, which comes once the remote task has ended.

use std::{marker::PhantomData, sync::Arc, sync::OnceLock};

use actor_ipc::{Addr, CallKind, Channel, Payload, Uid, Value};
use serde::de::DeserializeOwned;

use crate::{
    base::error::{Error, Result},
    calls::{
        context::Context,
        registry::{RemoteContextFn, RemoteFn, RemoteStreamFn},
        stream::RemoteStream,
    },
    connection::{Connection, Inbox, Lease},
    engine::sequence::Step,
    runtime::{self, ActorCore},
    serving,
};

/// The identity calls are made under outside any actor: one per process, named after the
/// program.
fn client_core() -> Arc<ActorCore> {
    static CLIENT: OnceLock<Arc<ActorCore>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let name = std::env::current_exe()
                .ok()
                .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "client".into());
            ActorCore::client(&name)
        })
        .clone()
}

/// Connects to the actor at `addr`, as the current actor ([`crate::Actor::current`]: in a remote
/// function, the root's `main` or any task of an actor's runtime), which then also answers
/// the peer's calls on this connection; in a program that runs no actor, as its client
/// identity.
pub async fn connect(addr: &Addr) -> Result<Portal> {
    let core = runtime::current().unwrap_or_else(client_core);
    connect_with(core, addr).await
}

/// Connects to the actor at `addr` under a new identity called `name` (which serves nothing).
pub async fn connect_as(name: &str, addr: &Addr) -> Result<Portal> {
    connect_with(ActorCore::client(name), addr).await
}

pub(crate) async fn connect_with(core: Arc<ActorCore>, addr: &Addr) -> Result<Portal> {
    let channel = Channel::connect(addr, &core.uid, &core.config).await?;
    Ok(Portal::from_connection(serving::start(core, channel)))
}

/// A handle for calling one actor. The connection closes (with the sentinel) when the last
/// clone of the portal, and the last stream, context or call handle made through it, is dropped.
#[derive(Clone)]
pub struct Portal {
    conn: Arc<Connection>,
    lease: Arc<Lease>,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal")
            .field("peer", &self.conn.peer)
            .finish()
    }
}

impl Portal {
    /// A portal owning `conn`: the connection closes when the portal and everything made
    /// through it are dropped.
    pub(crate) fn from_connection(conn: Arc<Connection>) -> Self {
        Self {
            lease: Arc::new(Lease { conn: conn.clone() }),
            conn,
        }
    }

    /// The actor this portal calls.
    pub fn peer(&self) -> &Uid {
        &self.conn.peer
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Whether heartbeats run on this connection (both sides are of this runtime and have
    /// them on): a peer that falls silent is then detected within the heartbeat timeout.
    pub fn heartbeats_on(&self) -> bool {
        self.conn.heartbeats_on()
    }

    /// Whether the connection was shut because the peer fell silent (missed heartbeats).
    pub(crate) fn heartbeat_lost(&self) -> bool {
        self.conn.heartbeat_lost()
    }

    /// Calls a request/response function and waits for its result.
    ///
    /// Dropping the returned future before it completes cancels the remote call.
    pub async fn run<F: RemoteFn>(&self, call: F) -> Result<F::Output> {
        // The inbox stays where it is made (a `CallHandle` moved into `result`'s future
        // copied it, and the states around it, three times a call).
        let kwargs = Payload::encode(&call)?;
        let mut inbox = self
            .start(F::NS, F::NAME, kwargs, CallKind::AsyncFunc)
            .await?;
        let value = returned_value(&mut inbox).await?;
        decode_result(value, Some((F::NS, F::NAME)), &inbox.conn.peer)
    }

    /// Starts a request/response call, returning a handle to await or cancel it.
    pub async fn call<F: RemoteFn>(&self, call: F) -> Result<CallHandle<F::Output>> {
        let inbox = self
            .start(F::NS, F::NAME, Payload::encode(&call)?, CallKind::AsyncFunc)
            .await?;
        Ok(CallHandle {
            inbox,
            func: Some((F::NS, F::NAME)),
            _output: PhantomData,
        })
    }

    /// Calls a request/response function by name with dynamic arguments (a map of argument
    /// names to values) and returns the dynamic result. For tools and peers without Rust types.
    pub async fn run_from_ns(&self, ns: &str, func: &str, kwargs: Value) -> Result<Value> {
        if !kwargs.is_map() {
            return Err(Error::Usage(
                "kwargs must be a map of argument names".into(),
            ));
        }
        let inbox = self
            .start(ns, func, Payload::from_value(&kwargs), CallKind::AsyncFunc)
            .await?;
        let mut handle = CallHandle::<Value> {
            inbox,
            func: None,
            _output: PhantomData,
        };
        handle
            .result_payload()
            .await
            .and_then(|p| Ok(p.to_value()?))
    }

    /// Opens a one-way stream from a stream function.
    pub async fn open_stream_from<F: RemoteStreamFn>(
        &self,
        call: F,
    ) -> Result<RemoteStream<F::Item>> {
        self.open_stream_from_ns(F::NS, F::NAME, Payload::encode(&call)?)
            .await
    }

    /// Opens a one-way stream by name with encoded kwargs; items decode as `T` (use
    /// [`Value`] for dynamic items).
    pub async fn open_stream_from_ns<T: DeserializeOwned>(
        &self,
        ns: &str,
        func: &str,
        kwargs: Payload,
    ) -> Result<RemoteStream<T>> {
        self.conn.request_flow_control().await;
        let mut inbox = self.start(ns, func, kwargs, CallKind::AsyncGen).await?;
        match inbox.next_step().await? {
            Step::Opened => Ok(RemoteStream::new(inbox)),
            Step::Failed(error) => Err(self.conn.remote_error(*error)),
            other => Err(self.conn.protocol(format!(
                "{ns}.{func} is not a stream function (first reply: {other:?})"
            ))),
        }
    }

    /// Opens a context: returns this end of it and the callee's `started` value, of the type
    /// the function declares with `#[actor::remote(started = T)]` ([`crate::Value`] if it
    /// declares none).
    pub async fn open_context<F: RemoteContextFn>(&self, call: F) -> Result<(Context, F::Started)> {
        self.open_context_from_ns(F::NS, F::NAME, Payload::encode(&call)?)
            .await
    }

    /// Opens a context by name with encoded kwargs (for peers without Rust types, e.g. a Python
    /// actor's `@tractor.context` function).
    pub async fn open_context_from_ns<S: DeserializeOwned>(
        &self,
        ns: &str,
        func: &str,
        kwargs: Payload,
    ) -> Result<(Context, S)> {
        if runtime::serving_actor().is_some_and(|me| me.uid == self.conn.peer) {
            return Err(Error::Usage(format!(
                "{ns}.{func}: a context to one's own actor would wait on itself"
            )));
        }
        self.conn.request_flow_control().await;
        let cid = self.conn.new_cid();
        let (mut inbox, credits) = self.conn.open_call(&cid, CallKind::Context)?;
        inbox.lease = Some(self.lease.clone());
        self.conn.send_cmd(ns, func, kwargs, &cid).await?;
        loop {
            match inbox.next_step().await? {
                Step::Ignored => continue,
                Step::Started(value) => {
                    let started = value.decode_owned()?;
                    return Ok((Context::caller(inbox, credits, func), started));
                }
                Step::Failed(error) => return Err(self.conn.remote_error(*error)),
                other => {
                    return Err(self.conn.protocol(format!(
                        "{ns}.{func} is not a context function (reply: {other:?})"
                    )));
                }
            }
        }
    }

    /// Calls a request/response function by name with encoded kwargs; the encoded result.
    pub(crate) async fn run_payload(
        &self,
        ns: &str,
        func: &str,
        kwargs: Payload,
    ) -> Result<Payload> {
        let inbox = self.start(ns, func, kwargs, CallKind::AsyncFunc).await?;
        CallHandle::<Value> {
            inbox,
            func: None,
            _output: PhantomData,
        }
        .result_payload()
        .await
    }

    /// Completes when the connection has ended.
    pub(crate) async fn closed(&self) {
        self.conn.closed().await
    }

    /// Why the connection ended, once it has.
    pub(crate) fn disconnected_detail(&self) -> Option<String> {
        match self.conn.disconnected() {
            Error::Disconnected { detail, .. } if self.is_closed() => Some(detail),
            _ => None,
        }
    }

    /// The cid-less error the peer sent, if any (a child that could not start says why so).
    pub(crate) fn runtime_error(&self) -> Option<actor_ipc::ErrorInfo> {
        self.conn.runtime_error()
    }

    /// Asks the actor to cancel everything and exit; returns once it has acknowledged.
    pub async fn cancel_actor(&self) -> Result<bool> {
        let reply = self
            .conn
            .run_raw("self", "cancel", Payload::empty_map())
            .await?;
        Ok(reply.decode().unwrap_or(false))
    }

    /// The actor's account of itself (`actor.runtime` `info`): process, children, running
    /// calls, peers, services. Actors of this runtime answer it; a tractor 0.1.0a5 peer
    /// answers with an error.
    pub async fn report(&self) -> Result<crate::runtime::ActorReport> {
        let reply = self
            .conn
            .run_raw(
                crate::runtime::INTROSPECTION_NS,
                "info",
                Payload::empty_map(),
            )
            .await?;
        Ok(reply.decode()?)
    }

    /// Cancels the calls with id `cid` running in the actor, whoever started them
    /// (`actor.runtime` `cancel_call`); returns how many there were.
    pub async fn cancel_call(&self, cid: &str) -> Result<usize> {
        let kwargs = Payload::encode(&std::collections::BTreeMap::from([("cid", cid)]))?;
        let reply = self
            .conn
            .run_raw(crate::runtime::INTROSPECTION_NS, "cancel_call", kwargs)
            .await?;
        Ok(reply.decode()?)
    }

    /// Closes the connection with the sentinel: the peer cancels every task this side started.
    pub async fn close(&self) {
        self.conn.close().await;
    }

    async fn start(&self, ns: &str, func: &str, kwargs: Payload, kind: CallKind) -> Result<Inbox> {
        let cid = self.conn.new_cid();
        let (mut inbox, _) = self.conn.open_call(&cid, kind)?;
        inbox.lease = Some(self.lease.clone());
        self.conn.send_cmd(ns, func, kwargs, &cid).await?;
        Ok(inbox)
    }
}

/// A request/response call in flight. Dropping it before its result cancels the remote call.
pub struct CallHandle<T> {
    inbox: Inbox,
    /// The function called (namespace, name), to name it when its result does not decode.
    func: Option<(&'static str, &'static str)>,
    _output: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for CallHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallHandle")
            .field("cid", &self.inbox.cid)
            .finish()
    }
}

impl<T> CallHandle<T> {
    /// The call id.
    pub fn cid(&self) -> &str {
        &self.inbox.cid
    }

    /// Cancels the remote call and waits until the remote task has ended.
    pub async fn cancel(mut self) -> Result<()> {
        self.inbox.finished = true;
        let conn = self.inbox.conn.clone();
        conn.cancel_and_wait(&self.inbox.cid).await
    }

    async fn result_payload(&mut self) -> Result<Payload> {
        returned_value(&mut self.inbox).await
    }
}

/// The value a request/response call returned, or its error.
async fn returned_value(inbox: &mut Inbox) -> Result<Payload> {
    loop {
        match inbox.next_step().await? {
            Step::Returned(value) => return Ok(value),
            Step::Failed(error) => return Err(inbox.conn.remote_error(*error)),
            Step::Violation(what) => {
                return Err(inbox.conn.protocol(format!(
                    "unexpected reply to a request/response call: {what}"
                )));
            }
            _ => continue,
        }
    }
}

/// Decodes a call's result as `T`; a result that does not decode names the function (when
/// known) and the actor that answered.
fn decode_result<T: DeserializeOwned>(
    value: Payload,
    func: Option<(&'static str, &'static str)>,
    peer: &Uid,
) -> Result<T> {
    value.decode_owned().map_err(|e| match (e, func) {
        (actor_ipc::DecodeError::Payload(detail), Some((ns, name))) => {
            Error::Decode(actor_ipc::DecodeError::Payload(format!(
                "{detail} (the result of `{ns}.{name}` from actor {peer}: do both programs \
                 agree on its return type?)"
            )))
        }
        (e, _) => Error::Decode(e),
    })
}

impl<T: DeserializeOwned> CallHandle<T> {
    /// Waits for the result.
    pub async fn result(mut self) -> Result<T> {
        let value = self.result_payload().await?;
        decode_result(value, self.func, &self.inbox.conn.peer)
    }
}
