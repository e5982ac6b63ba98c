//! Name discovery: the registrar (tractor's "arbiter") and its clients.
//!
//! A registrar is an actor that keeps a table of `uid → address`, served through the `self`
//! runtime calls `register_actor`, `unregister_actor`, `find_actor`, `wait_for_actor` and
//! `get_registry`, exactly as tractor 0.1.0a5 serves them, so Rust and Python actors can share
//! one. Every actor given a registrar registers when it starts serving and unregisters when it
//! stops; separately launched programs find each other by name through it.
//!
//! [`Registry`] is the client side (the registrar's is `tree/registrar.rs`). A registered
//! actor that no longer answers is dropped from the registrar by the lookup that finds it
//! dead. Inside an actor tree, a lookup of a name several actors hold prefers the one in the
//! caller's own tree (when the registrar is of this runtime).

use std::{collections::BTreeMap, sync::Arc};

use actor_ipc::{Addr, ConnectError, HandshakeError, Uid, Value, WireAddr};

use crate::{
    base::error::{Error, FUNCTION_NOT_FOUND, PERMISSION_ERROR, Result},
    portal::{Portal, connect},
    runtime::{self, ActorCore, INTROSPECTION_NS},
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

/// How many times a lookup tries an unreachable registered actor before it says so.
const LOOKUP_ROUNDS: u32 = 5;

/// Whether a failed connection means nothing serves the address any more (refused, or no such
/// socket), rather than a live actor refusing us.
fn is_dead(e: &actor_ipc::ConnectError) -> bool {
    matches!(
        e,
        actor_ipc::ConnectError::Io { source, .. }
            if matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            )
    )
}

/// Whether a call failed because the peer does not have it (a tractor 0.1.0a5 registrar, or
/// an actor that is no registrar).
fn is_unsupported(e: &Error) -> bool {
    matches!(e, Error::Remote(r) if r.is_module_not_exposed() || r.type_str == FUNCTION_NOT_FOUND)
}

/// A client of a registrar.
#[derive(Debug, Clone)]
pub struct Registry {
    portal: Portal,
    addr: Addr,
    /// The caller's tree, for lookups that prefer it.
    tree: Option<String>,
}

impl Registry {
    /// Connects to the registrar at `addr`.
    pub async fn connect(addr: &Addr) -> Result<Self> {
        Ok(Self {
            portal: connect(addr).await?,
            addr: addr.clone(),
            tree: runtime::current().and_then(|me| me.tree.get().cloned()),
        })
    }

    /// Connects to the registrar at `addr` as the actor `core` (so the registrar sees who
    /// registers, and the actor's secret is proved).
    pub(crate) async fn connect_as_actor(core: Arc<ActorCore>, addr: &Addr) -> Result<Self> {
        Ok(Self {
            tree: core.tree.get().cloned(),
            portal: crate::portal::connect_with(core, addr).await?,
            addr: addr.clone(),
        })
    }

    /// The registrar at `addr`, reached through `portal` (a connection this actor has already,
    /// to the process that serves it), as the actor `core`.
    pub(crate) fn through(core: &ActorCore, portal: Portal, addr: Addr) -> Self {
        Self {
            tree: core.tree.get().cloned(),
            portal,
            addr,
        }
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

    /// Tells the registrar which tree `uid` belongs to. A registrar of tractor 0.1.0a5 does not
    /// know trees: that is no error.
    pub(crate) async fn register_tree(&self, uid: &Uid, tree: &str) -> Result<()> {
        let kwargs = Value::Map(vec![
            ("uid".into(), uid.to_value()),
            ("tree".into(), tree.into()),
        ]);
        match self
            .portal
            .run_from_ns(INTROSPECTION_NS, "register_tree", kwargs)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_unsupported(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes `uid`; an error if it was not registered, or if it is another actor's that is
    /// alive (only an actor unregisters itself).
    pub async fn unregister(&self, uid: &Uid) -> Result<()> {
        self.call("unregister_actor", vec![("uid", uid.to_value())])
            .await
            .map(drop)
    }

    /// The address of an actor called `name`, if one is registered; of several, the one in the
    /// caller's tree if the registrar knows it.
    pub async fn query_actor(&self, name: &str) -> Result<Option<Addr>> {
        let found = match &self.tree {
            Some(tree) => {
                let kwargs = Value::Map(vec![
                    ("name".into(), name.into()),
                    ("tree".into(), tree.as_str().into()),
                ]);
                match self
                    .portal
                    .run_from_ns(INTROSPECTION_NS, "find_in_tree", kwargs)
                    .await
                {
                    Ok(found) => found,
                    // A tractor 0.1.0a5 registrar: no trees.
                    Err(e) if is_unsupported(&e) => {
                        self.call("find_actor", vec![("name", name.into())]).await?
                    }
                    Err(e) => return Err(e),
                }
            }
            None => self.call("find_actor", vec![("name", name.into())]).await?,
        };
        match found {
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
        let mut attempts = 0;
        loop {
            let Some(addr) = self.query_actor(name).await? else {
                return Ok(None);
            };
            match connect(&addr).await {
                Ok(portal) => return Ok(Some(portal)),
                // A live actor refusing us (authentication): the lookup's error.
                Err(
                    e @ Error::Connect(ConnectError::Handshake {
                        source: HandshakeError::Auth(_),
                        ..
                    }),
                ) => return Err(e),
                Err(Error::Connect(e)) => {
                    // Unreachable: dead, or dying (the registrar has not heard yet), or at its
                    // connection limit. The registrar drops it if it is dead; a few rounds let
                    // it learn of a death, and bound the lookup if the actor is alive.
                    attempts += 1;
                    tracing::debug!(%name, %addr, error = %e, "registered actor is unreachable");
                    if attempts >= LOOKUP_ROUNDS {
                        return Err(Error::Connect(e));
                    }
                    if self.drop_dead(name, &addr).await.is_err() {
                        tokio::task::yield_now().await;
                    }
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
                    Err(Error::Connect(e)) if is_dead(&e) => self.drop_dead(name, &addr).await?,
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Unregisters every `name` entry at `addr`. The registrar checks that it is dead: if it
    /// says the holder is alive (`PermissionError`), that is the lookup's error, not a reason
    /// to look again.
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
                match self.unregister(&uid).await {
                    Err(Error::Remote(e)) if e.type_str == PERMISSION_ERROR => {
                        return Err(Error::Remote(e));
                    }
                    // Someone else may have dropped it first.
                    _ => {}
                }
            }
        }
        Ok(())
    }
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
