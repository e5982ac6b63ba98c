//! The registrar's side of discovery: its table of `uid → address`, served through the `self`
//! runtime calls `register_actor`, `unregister_actor`, `find_actor`, `wait_for_actor` and
//! `get_registry` exactly as tractor 0.1.0a5 serves them, with two rules tractor lacks:
//!
//! - **ownership**: an actor registers only itself, and a name is unregistered only by the
//!   actor that holds it, or by anyone once the holder is found dead (its address refuses
//!   connections);
//! - **trees**: through the extension calls `actor.runtime.register_tree` and
//!   `actor.runtime.find_in_tree`, an actor says which tree it belongs to, and a lookup of a
//!   name several actors hold prefers the caller's own tree. A 0.1.0a5 peer never makes them.

use std::{sync::Arc, time::Duration};

use actor_ipc::{ErrorInfo, Payload, Uid, Value, WireAddr, transport::Transport};
use serde::Deserialize;
use tokio::sync::Notify;

use crate::{
    base::{
        error::{FUNCTION_NOT_FOUND, PERMISSION_ERROR, TYPE_ERROR},
        lock,
    },
    runtime::{
        core::{RuntimeCall, RuntimeCalls, RuntimeRequest},
        router::RuntimeReply,
    },
};

/// The runtime calls a registrar serves (namespace `self`).
const REGISTRAR_CALLS: [&str; 5] = [
    "register_actor",
    "unregister_actor",
    "find_actor",
    "wait_for_actor",
    "get_registry",
];

/// The registrar's extension calls (namespace `actor.runtime`).
const TREE_CALLS: [&str; 2] = ["register_tree", "find_in_tree"];

/// How long the registrar waits to learn whether a holder it was asked to drop is alive.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// One registration.
#[derive(Clone)]
struct Entry {
    uid: Uid,
    addr: WireAddr,
    /// The tree the actor said it belongs to (its root's uuid), if it said.
    tree: Option<String>,
    /// The connection holding this registration open, if the actor keeps one (actors of this
    /// runtime do; it is numbered per registration): when it ends, the entry goes.
    held_by: Option<u64>,
}

/// How many liveness probes a registrar runs at once.
const MAX_PROBES: usize = 16;

/// The registrar's table.
pub(crate) struct RegistrarTable {
    /// In registration order, so lookups by name return the earliest.
    entries: std::sync::Mutex<Vec<Entry>>,
    changed: Notify,
    /// Numbers the connections that hold registrations.
    next_holder: std::sync::atomic::AtomicU64,
    /// Bounds the liveness probes running at once.
    probes: tokio::sync::Semaphore,
}

impl Default for RegistrarTable {
    fn default() -> Self {
        Self {
            entries: std::sync::Mutex::default(),
            changed: Notify::new(),
            next_holder: std::sync::atomic::AtomicU64::new(0),
            probes: tokio::sync::Semaphore::new(MAX_PROBES),
        }
    }
}

#[derive(Deserialize)]
struct UidArg {
    uid: (String, String),
}

#[derive(Deserialize)]
struct RegisterArgs {
    uid: (String, String),
    sockaddr: (String, u16),
}

#[derive(Deserialize)]
struct NameArg {
    name: String,
}

#[derive(Deserialize)]
struct TreeArgs {
    uid: (String, String),
    tree: String,
}

#[derive(Deserialize)]
struct FindInTreeArgs {
    name: String,
    tree: String,
}

fn args<T: serde::de::DeserializeOwned>(func: &str, kwargs: &Payload) -> Result<T, ErrorInfo> {
    kwargs
        .decode()
        .map_err(|e| ErrorInfo::new(TYPE_ERROR, format!("{func}(): {e}")))
}

fn uid((name, uuid): (String, String)) -> Uid {
    Uid { name, uuid }
}

/// Refuses a call that acts for an actor other than its caller.
fn only_itself(caller: &Uid, uid: &Uid, what: &str) -> Result<(), ErrorInfo> {
    if caller == uid {
        return Ok(());
    }
    Err(ErrorInfo::new(
        PERMISSION_ERROR,
        format!("{caller} may {what} only itself, not {uid}"),
    ))
}

impl RegistrarTable {
    /// Registers `uid` at `addr` (replacing an earlier registration of the same uid).
    pub(crate) fn register(&self, uid: Uid, addr: WireAddr) {
        {
            let mut entries = lock(&self.entries);
            let tree = entries
                .iter()
                .find(|e| e.uid == uid)
                .and_then(|e| e.tree.clone());
            entries.retain(|e| e.uid != uid);
            entries.push(Entry {
                uid,
                addr,
                tree,
                held_by: None,
            });
        }
        self.changed.notify_waiters();
    }

    /// Records the tree of a registered actor, and that the connection saying so holds its
    /// registration. `None` if the actor is not registered; `Some(None)` if a connection holds
    /// it already (repeated calls start no second watch); else the new holder's number.
    fn set_tree(&self, uid: &Uid, tree: String) -> Option<Option<u64>> {
        let mut entries = lock(&self.entries);
        let entry = entries.iter_mut().find(|e| e.uid == *uid)?;
        entry.tree = Some(tree);
        if entry.held_by.is_some() {
            return Some(None);
        }
        let holder = self
            .next_holder
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        entry.held_by = Some(holder);
        Some(Some(holder))
    }

    /// Drops `uid`'s registration if `holder` still holds it (the actor did not register again
    /// over another connection meanwhile).
    fn forget_held(&self, uid: &Uid, holder: u64) {
        lock(&self.entries).retain(|e| !(e.uid == *uid && e.held_by == Some(holder)));
    }

    fn unregister(&self, uid: &Uid) {
        lock(&self.entries).retain(|e| e.uid != *uid);
    }

    fn named(&self, name: &str) -> Vec<Entry> {
        lock(&self.entries)
            .iter()
            .filter(|e| e.uid.name == name)
            .cloned()
            .collect()
    }

    /// `uid`'s address, and whether an open connection holds its registration.
    fn addr_of(&self, uid: &Uid) -> Option<(WireAddr, bool)> {
        lock(&self.entries)
            .iter()
            .find(|e| e.uid == *uid)
            .map(|e| (e.addr.clone(), e.held_by.is_some()))
    }

    /// Serves one `self` registrar call from `caller`; `Err` is the error reply.
    async fn serve(&self, func: &str, kwargs: &Payload, caller: &Uid) -> Result<Value, ErrorInfo> {
        match func {
            "register_actor" => {
                let a: RegisterArgs = args(func, kwargs)?;
                let uid = uid(a.uid);
                only_itself(caller, &uid, "register")?;
                let addr = WireAddr {
                    host: a.sockaddr.0,
                    port: a.sockaddr.1,
                };
                self.register(uid, addr);
                Ok(Value::Nil)
            }
            "unregister_actor" => {
                let a: UidArg = args(func, kwargs)?;
                let uid = uid(a.uid);
                let Some((addr, held)) = self.addr_of(&uid) else {
                    // As tractor does for an unknown uid.
                    return Err(ErrorInfo::new(
                        "KeyError",
                        format!("{uid} is not registered"),
                    ));
                };
                // An entry whose connection is open belongs to a live actor; others are probed.
                if *caller != uid && (held || self.holder_alive(&addr).await) {
                    return Err(ErrorInfo::new(
                        PERMISSION_ERROR,
                        format!(
                            "{uid} is alive at {}: only it can unregister itself",
                            addr.to_addr()
                        ),
                    ));
                }
                self.unregister(&uid);
                Ok(Value::Nil)
            }
            "find_actor" => {
                let a: NameArg = args(func, kwargs)?;
                Ok(self
                    .named(&a.name)
                    .first()
                    .map_or(Value::Nil, |e| e.addr.to_value()))
            }
            "wait_for_actor" => {
                let a: NameArg = args(func, kwargs)?;
                loop {
                    // Register interest before looking, so a registration in between wakes us.
                    let changed = self.changed.notified();
                    let found = self.named(&a.name);
                    if !found.is_empty() {
                        return Ok(Value::Array(
                            found.iter().map(|e| e.addr.to_value()).collect(),
                        ));
                    }
                    changed.await;
                }
            }
            "get_registry" => {
                let entries = lock(&self.entries).clone();
                Ok(Value::Map(
                    entries
                        .iter()
                        .map(|e| (Value::from(e.uid.registry_key()), e.addr.to_value()))
                        .collect(),
                ))
            }
            other => Err(ErrorInfo::new(
                FUNCTION_NOT_FOUND,
                format!("self.{other} is not a registrar call"),
            )),
        }
    }

    /// Serves one `actor.runtime` tree call. A `register_tree` also makes its connection the
    /// registration's holder: when it ends (the actor stopped or died), the entry goes.
    fn serve_tree(
        self: &Arc<Self>,
        func: &str,
        request: &RuntimeRequest,
    ) -> Result<Value, ErrorInfo> {
        let (kwargs, caller) = (&request.kwargs, &request.caller);
        match func {
            "register_tree" => {
                let a: TreeArgs = args(func, kwargs)?;
                let uid = uid(a.uid);
                only_itself(caller, &uid, "register")?;
                let Some(holder) = self.set_tree(&uid, a.tree) else {
                    return Err(ErrorInfo::new(
                        "KeyError",
                        format!("{uid} is not registered"),
                    ));
                };
                if let Some(holder) = holder {
                    let ending = request.scope.ending();
                    let table = self.clone();
                    let forget = async move {
                        ending.cancelled().await;
                        table.forget_held(&uid, holder);
                    };
                    tokio::spawn(request.core.io_tasks.track_future(forget));
                }
                Ok(Value::Nil)
            }
            "find_in_tree" => {
                let a: FindInTreeArgs = args(func, kwargs)?;
                let found = self.named(&a.name);
                let preferred = found
                    .iter()
                    .find(|e| e.tree.as_deref() == Some(a.tree.as_str()))
                    .or(found.first());
                Ok(preferred.map_or(Value::Nil, |e| e.addr.to_value()))
            }
            other => Err(ErrorInfo::new(
                FUNCTION_NOT_FOUND,
                format!("actor.runtime.{other} is not a registrar call"),
            )),
        }
    }
}

impl RegistrarTable {
    /// Whether something may still serve a registered address: only a refused connection (or a
    /// socket file that is gone) proves it dead. Probes run a few at a time, so a flood of
    /// unregistrations cannot make the registrar open connections without bound.
    async fn holder_alive(&self, addr: &WireAddr) -> bool {
        let Ok(_probing) = self.probes.acquire().await else {
            return true;
        };
        match tokio::time::timeout(PROBE_TIMEOUT, Transport::connect(&addr.to_addr())).await {
            Ok(Err(e)) => !matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ),
            Ok(Ok(_)) | Err(_) => true,
        }
    }
}

/// Shared handle on a registrar table, for an actor that serves one.
pub(crate) type SharedTable = Arc<RegistrarTable>;

/// The registrar's `self` runtime calls, answered from `table`. `wait_for_actor` blocks: it
/// gives up when its connection ends or the actor stops.
pub(crate) fn registrar_calls(table: &SharedTable) -> RuntimeCalls {
    let mut calls = RuntimeCalls::default();
    for name in REGISTRAR_CALLS {
        let table = table.clone();
        let call: RuntimeCall = Arc::new(move |request: RuntimeRequest| {
            let table = table.clone();
            Box::pin(async move {
                let ending = request.scope.ending();
                tokio::select! {
                    outcome = table.serve(name, &request.kwargs, &request.caller) => {
                        RuntimeReply::answer(outcome.map(|v| Payload::from_value(&v)))
                    }
                    () = ending.cancelled() => RuntimeReply::Abandoned,
                }
            })
        });
        calls.register(name, call);
    }
    calls
}

/// The registrar's tree calls (namespace `actor.runtime`), answered from `table`.
pub(crate) fn tree_calls(table: &SharedTable) -> RuntimeCalls {
    let mut calls = RuntimeCalls::default();
    for name in TREE_CALLS {
        let table = table.clone();
        let call: RuntimeCall = Arc::new(move |request: RuntimeRequest| {
            let outcome = table.serve_tree(name, &request);
            Box::pin(std::future::ready(RuntimeReply::answer(
                outcome.map(|v| Payload::from_value(&v)),
            )))
        });
        calls.register(name, call);
    }
    calls
}
