//! Name discovery: the registrar (tractor's "arbiter") and its clients.
//!
//! A registrar is an actor that keeps a table of `uid → address`, served through the `self`
//! runtime calls `register_actor`, `unregister_actor`, `find_actor`, `wait_for_actor` and
//! `get_registry`, exactly as tractor 0.1.0a5 serves them, so Rust and Python actors can share
//! one. Every actor given a registrar registers when it starts serving and unregisters when it
//! stops; separately launched programs find each other by name through it.
//!
//! [`Registry`] is the client side. A registered actor that no longer answers is dropped from
//! the registrar by the lookup that finds it dead.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use actor_ipc::{Addr, ErrorInfo, Payload, Uid, Value, WireAddr};
use serde::Deserialize;
use tokio::sync::Notify;

use crate::{
    base::error::{Error, FUNCTION_NOT_FOUND, Result, TYPE_ERROR},
    portal::{Portal, connect},
    runtime::{
        self, ActorCore,
        core::{RuntimeCall, RuntimeCalls, RuntimeRequest},
        router::RuntimeReply,
    },
};

/// Where actors look for the registrar unless told otherwise (tractor's default).
pub const DEFAULT_REGISTRAR: &str = "tcp://127.0.0.1:1616";

/// The environment variable that overrides [`DEFAULT_REGISTRAR`] for a process.
pub const REGISTRAR_ENV: &str = "ACTOR_REGISTRAR";

/// The registrar address this process uses by default: `$ACTOR_REGISTRAR`, else
/// [`DEFAULT_REGISTRAR`].
pub fn default_registrar() -> Result<Addr> {
    let url = std::env::var(REGISTRAR_ENV).unwrap_or_else(|_| DEFAULT_REGISTRAR.to_owned());
    url.parse()
        .map_err(|e| Error::Usage(format!("registrar address {url:?}: {e}")))
}

/// The runtime calls a registrar serves.
const REGISTRAR_CALLS: [&str; 5] = [
    "register_actor",
    "unregister_actor",
    "find_actor",
    "wait_for_actor",
    "get_registry",
];

/// The registrar's table.
#[derive(Default)]
pub(crate) struct RegistrarTable {
    /// In registration order, so lookups by name return the earliest.
    entries: Mutex<Vec<(Uid, WireAddr)>>,
    changed: Notify,
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

fn args<T: serde::de::DeserializeOwned>(func: &str, kwargs: &Payload) -> Result<T, ErrorInfo> {
    kwargs
        .decode()
        .map_err(|e| ErrorInfo::new(TYPE_ERROR, format!("{func}(): {e}")))
}

fn uid((name, uuid): (String, String)) -> Uid {
    Uid { name, uuid }
}

impl RegistrarTable {
    pub(crate) fn register(&self, uid: Uid, addr: WireAddr) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(u, _)| *u != uid);
            entries.push((uid, addr));
        }
        self.changed.notify_waiters();
    }

    pub(crate) fn unregister(&self, uid: &Uid) -> bool {
        self.entries
            .lock()
            .map(|mut entries| {
                let before = entries.len();
                entries.retain(|(u, _)| u != uid);
                entries.len() != before
            })
            .unwrap_or(false)
    }

    fn addrs_of(&self, name: &str) -> Vec<WireAddr> {
        self.entries
            .lock()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|(u, _)| u.name == name)
                    .map(|(_, a)| a.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Serves one registrar call; `Err` is the error reply.
    pub(crate) async fn serve(&self, func: &str, kwargs: &Payload) -> Result<Value, ErrorInfo> {
        match func {
            "register_actor" => {
                let a: RegisterArgs = args(func, kwargs)?;
                let addr = WireAddr {
                    host: a.sockaddr.0,
                    port: a.sockaddr.1,
                };
                self.register(uid(a.uid), addr);
                Ok(Value::Nil)
            }
            "unregister_actor" => {
                let a: UidArg = args(func, kwargs)?;
                let uid = uid(a.uid);
                if self.unregister(&uid) {
                    Ok(Value::Nil)
                } else {
                    // As tractor does for an unknown uid.
                    Err(ErrorInfo::new(
                        "KeyError",
                        format!("{uid} is not registered"),
                    ))
                }
            }
            "find_actor" => {
                let a: NameArg = args(func, kwargs)?;
                Ok(self
                    .addrs_of(&a.name)
                    .first()
                    .map_or(Value::Nil, WireAddr::to_value))
            }
            "wait_for_actor" => {
                let a: NameArg = args(func, kwargs)?;
                loop {
                    // Register interest before looking, so a registration in between wakes us.
                    let changed = self.changed.notified();
                    let addrs = self.addrs_of(&a.name);
                    if !addrs.is_empty() {
                        return Ok(Value::Array(addrs.iter().map(WireAddr::to_value).collect()));
                    }
                    changed.await;
                }
            }
            "get_registry" => {
                let entries = self.entries.lock().map(|e| e.clone()).unwrap_or_default();
                Ok(Value::Map(
                    entries
                        .iter()
                        .map(|(u, a)| (Value::from(u.registry_key()), a.to_value()))
                        .collect(),
                ))
            }
            other => Err(ErrorInfo::new(
                FUNCTION_NOT_FOUND,
                format!("self.{other} is not a registrar call"),
            )),
        }
    }
}

/// A client of a registrar.
#[derive(Debug, Clone)]
pub struct Registry {
    portal: Portal,
    addr: Addr,
}

impl Registry {
    /// Connects to the registrar at `addr`.
    pub async fn connect(addr: &Addr) -> Result<Self> {
        Ok(Self {
            portal: connect(addr).await?,
            addr: addr.clone(),
        })
    }

    /// Connects to the registrar at `addr` as the actor `core` (so the registrar sees who
    /// registers, and the actor's secret is proved).
    pub(crate) async fn connect_as_actor(core: Arc<ActorCore>, addr: &Addr) -> Result<Self> {
        Ok(Self {
            portal: crate::portal::connect_with(core, addr).await?,
            addr: addr.clone(),
        })
    }

    /// Connects to this process's default registrar (see [`default_registrar`]).
    pub async fn connect_default() -> Result<Self> {
        Self::connect(&default_registrar()?).await
    }

    /// The registrar's portal (e.g. to `cancel_actor` it).
    pub fn portal(&self) -> &Portal {
        &self.portal
    }

    /// The registrar's error: it answered `detail`.
    fn fault(&self, detail: String) -> Error {
        Error::Registrar {
            addr: self.addr.to_string(),
            detail,
        }
    }

    /// The address in a `find_actor`/`wait_for_actor` reply entry.
    fn addr_of(&self, value: &Value) -> Result<Addr> {
        WireAddr::from_value(value)
            .map(|w| w.to_addr())
            .ok_or_else(|| self.fault(format!("sent {value} for an address")))
    }

    async fn call(&self, func: &str, kwargs: Vec<(&str, Value)>) -> Result<Value> {
        let kwargs = Value::Map(kwargs.into_iter().map(|(k, v)| (k.into(), v)).collect());
        self.portal.run_from_ns("self", func, kwargs).await
    }

    /// Registers `uid` at `addr`.
    pub async fn register(&self, uid: &Uid, addr: &Addr) -> Result<()> {
        self.call(
            "register_actor",
            vec![
                ("uid", uid.to_value()),
                ("sockaddr", addr.to_wire().to_value()),
            ],
        )
        .await
        .map(drop)
    }

    /// Removes `uid`; an error if it was not registered.
    pub async fn unregister(&self, uid: &Uid) -> Result<()> {
        self.call("unregister_actor", vec![("uid", uid.to_value())])
            .await
            .map(drop)
    }

    /// The address of an actor called `name`, if one is registered.
    pub async fn query_actor(&self, name: &str) -> Result<Option<Addr>> {
        match self.call("find_actor", vec![("name", name.into())]).await? {
            Value::Nil => Ok(None),
            value => self.addr_of(&value).map(Some),
        }
    }

    /// Every registered actor: `name.uuid` → address.
    pub async fn get_registry(&self) -> Result<BTreeMap<String, Addr>> {
        let table = self.call("get_registry", Vec::new()).await?;
        let Value::Map(entries) = table else {
            return Err(self.fault(format!("sent {table} for its table")));
        };
        entries
            .iter()
            .map(|(k, v)| {
                let key = k
                    .as_str()
                    .ok_or_else(|| self.fault(format!("sent registry key {k}, not a string")))?;
                Ok((key.to_owned(), self.addr_of(v)?))
            })
            .collect()
    }

    /// A portal to an actor called `name`, if one is registered and answers. Registered actors
    /// found dead on the way are unregistered.
    pub async fn find_actor(&self, name: &str) -> Result<Option<Portal>> {
        loop {
            let Some(addr) = self.query_actor(name).await? else {
                return Ok(None);
            };
            match connect(&addr).await {
                Ok(portal) => return Ok(Some(portal)),
                Err(Error::Connect(e)) => {
                    tracing::debug!(%name, %addr, error = %e, "registered actor is unreachable; dropping it");
                    self.drop_dead(name, &addr).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A portal to an actor called `name`, waiting until one registers (and answers).
    pub async fn wait_for_actor(&self, name: &str) -> Result<Portal> {
        loop {
            let addrs = self
                .call("wait_for_actor", vec![("name", name.into())])
                .await?;
            let Value::Array(addrs) = addrs else {
                return Err(self.fault(format!("sent {addrs} for addresses")));
            };
            for value in &addrs {
                let addr = self.addr_of(value)?;
                match connect(&addr).await {
                    Ok(portal) => return Ok(portal),
                    Err(Error::Connect(_)) => self.drop_dead(name, &addr).await?,
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Unregisters every `name` entry at `addr`.
    async fn drop_dead(&self, name: &str, addr: &Addr) -> Result<()> {
        for (key, registered) in self.get_registry().await? {
            let Some((entry_name, uuid)) = key.rsplit_once('.') else {
                continue;
            };
            if entry_name == name && registered == *addr {
                let uid = Uid {
                    name: entry_name.to_owned(),
                    uuid: uuid.to_owned(),
                };
                // Someone else may have dropped it first.
                let _ = self.unregister(&uid).await;
            }
        }
        Ok(())
    }
}

/// Shared handle on a registrar table, for an actor that serves one.
pub(crate) type SharedTable = Arc<RegistrarTable>;

/// The registrar's runtime calls, answered from `table`, for the router of the actor that
/// serves it. `wait_for_actor` blocks: it gives up when its connection ends or the actor stops.
pub(crate) fn registrar_calls(table: &SharedTable) -> RuntimeCalls {
    let mut calls = RuntimeCalls::default();
    for name in REGISTRAR_CALLS {
        let table = table.clone();
        let call: RuntimeCall = Arc::new(move |request: RuntimeRequest| {
            let table = table.clone();
            Box::pin(async move {
                let ending = request.scope.ending();
                tokio::select! {
                    outcome = table.serve(name, &request.kwargs) => {
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

/// A client of the registrar the current actor uses (inside an actor tree), else of this
/// process's default registrar ([`default_registrar`]).
pub async fn registry() -> Result<Registry> {
    let addr = match runtime::current().and_then(|me| me.registrar_addr.get().cloned()) {
        Some(addr) => addr,
        None => default_registrar()?,
    };
    Registry::connect(&addr).await
}

/// A portal to an actor called `name`, if one is registered and answers (see [`registry`]).
pub async fn find_actor(name: &str) -> Result<Option<Portal>> {
    registry().await?.find_actor(name).await
}

/// A portal to an actor called `name`, waiting until one registers (see [`registry`]).
pub async fn wait_for_actor(name: &str) -> Result<Portal> {
    registry().await?.wait_for_actor(name).await
}

/// The address of an actor called `name`, if one is registered (see [`registry`]).
pub async fn query_actor(name: &str) -> Result<Option<Addr>> {
    registry().await?.query_actor(name).await
}

/// Every registered actor: `name.uuid` → address (see [`registry`]).
pub async fn get_registry() -> Result<BTreeMap<String, Addr>> {
    registry().await?.get_registry().await
}
