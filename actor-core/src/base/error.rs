//! The one error type users of the runtime see.
//!
//! A failure in another actor arrives as [`RemoteActorError`], keeping the remote type name, the
//! remote trace and the actor it came from. Local failures (connecting, decoding a result,
//! misusing a context) have their own variants. [`Error::raise`] lets a remote function fail
//! with a type name of its choosing (e.g. `ValueError` for Python callers).

use std::fmt;

use actor_ipc::{ConnectError, DecodeError, EncodeError, ErrorInfo, Uid, Value};

/// `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The `type_str` of a remote panic.
pub const PANIC_TYPE: &str = "Panic";
/// The `type_str` of a call into a namespace the actor did not enable.
pub const MODULE_NOT_EXPOSED: &str = "ModuleNotExposed";
/// The `type_str` of a call to a function the namespace does not have.
pub const FUNCTION_NOT_FOUND: &str = "FunctionNotFound";
/// The `type_str` of a call whose arguments do not fit the function.
pub const TYPE_ERROR: &str = "TypeError";
/// The `type_str` of a failure a team retries ([`Error::recoverable`]).
pub const RECOVERABLE_TYPE: &str = "RecoverableError";
/// The `type_str` of a service (or adopted task) whose end stopped its actor.
pub const SERVICE_FAILED_TYPE: &str = "ServiceFailed";
/// The `type_str` of a blocking invocation its stopping actor gave up ([`Error::Rerouted`]).
pub const REROUTED_TYPE: &str = "Rerouted";
/// The `type_str` of a call refused because its connection already runs as many calls as it
/// may (`actor::MAX_CALLS_PER_CONNECTION`): retry once some have ended.
pub const TOO_MANY_CALLS: &str = "TooManyCalls";
/// The `type_str` of a registrar call refused by its ownership rules: an actor registers only
/// itself, and unregisters only itself (or an actor found dead).
pub const PERMISSION_ERROR: &str = "PermissionError";
/// The `type_str` of a call refused because its actor is stopping.
pub const ACTOR_CANCELLED: &str = "ActorCancelled";
/// The `type_str` of a cancelled context.
pub const CONTEXT_CANCELLED: &str = "ContextCancelled";

/// Everything that can go wrong in the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The remote function failed, or the remote actor refused the call.
    #[error(transparent)]
    Remote(#[from] RemoteActorError),
    /// A context was cancelled; `canceller` says by whom when known.
    #[error("context cancelled{}: {detail}", by(.canceller))]
    ContextCancelled {
        /// The actor that asked for the cancellation.
        canceller: Option<Uid>,
        /// What the cancelled side said.
        detail: String,
    },
    /// A failure raised by a remote function with a type name of its choosing.
    #[error("{type_str}: {message}")]
    Raised {
        /// The type name the caller will see (e.g. `ValueError`).
        type_str: String,
        /// The message.
        message: String,
    },
    /// The call was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// Connecting to an actor failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The connection to the peer broke, or was closed, before the call ended.
    #[error("connection to actor {peer} lost: {detail}")]
    Disconnected {
        /// The peer.
        peer: Uid,
        /// Why.
        detail: String,
    },
    /// A value could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A value received does not decode into the expected type.
    #[error("received value does not fit the expected type: {0}")]
    Decode(#[from] DecodeError),
    /// The peer broke the protocol (e.g. a reply out of sequence).
    #[error("protocol violation by {peer}: {detail}")]
    Protocol {
        /// The peer.
        peer: String,
        /// What happened.
        detail: String,
    },
    /// A stream's receive buffer overflowed because its consumer fell behind a producer that
    /// does not take flow control; the stream was cancelled.
    #[error(
        "stream {cid} overrun: its consumer fell more than {capacity} items behind a producer \
         that does not take flow control (a tractor 0.1.0a5 peer); read it faster, or raise \
         the window with ActorBuilder::stream_window"
    )]
    Overrun {
        /// The stream's call id.
        cid: String,
        /// The buffer's capacity.
        capacity: usize,
    },
    /// A fan-out subscriber fell more than its buffer behind and missed `skipped` items; it
    /// continues with the oldest item still buffered.
    #[error("subscriber lagged behind and missed {skipped} items")]
    Lagged {
        /// How many items it missed.
        skipped: u64,
    },
    /// The API was misused by its caller (e.g. `started` twice, a stream before `started`, an
    /// actor without addresses). Failures of an operation have their own variants.
    #[error("{0}")]
    Usage(String),
    /// A child actor could not be started; `cause` says why.
    #[error("cannot start child {actor}: {cause}")]
    Spawn {
        /// The child's name.
        actor: String,
        /// What went wrong.
        cause: Box<Error>,
    },
    /// A child actor's process ended when nobody asked it to: it crashed, was killed by a
    /// signal this side did not send, or exited on its own (also before it had started, which
    /// [`Error::Spawn`] wraps).
    #[error("child actor {actor} (pid {}) ended unexpectedly: {exit}", pid_text(*.pid))]
    ChildExited {
        /// The child's name.
        actor: String,
        /// Its process id, when it had one.
        pid: Option<u32>,
        /// How it ended.
        exit: ChildExit,
    },
    /// A child actor stopped answering (missed heartbeats: stopped, hung, or cut off) while its
    /// process lived; it was killed, since it can no longer be supervised.
    #[error("child actor {actor} (pid {}) stopped answering: {detail}; it was killed", pid_text(*.pid))]
    ChildUnresponsive {
        /// The child's name.
        actor: String,
        /// Its process id, when it had one.
        pid: Option<u32>,
        /// How it was found silent.
        detail: String,
    },
    /// A registrar could not be used: it refused, was unreachable, or answered with something
    /// that is not what the protocol says.
    #[error("registrar at {addr}: {detail}")]
    Registrar {
        /// The registrar's address.
        addr: String,
        /// What went wrong.
        detail: String,
    },
    /// Something awaited did not happen in time (`what` happened not, within `after`).
    #[error("{what} within {after:?}")]
    Timeout {
        /// What did not happen.
        what: String,
        /// How long it was given.
        after: std::time::Duration,
    },
    /// A service or adopted task of this actor ended while the actor ran (it returned, failed
    /// or panicked), which stopped the actor. `detail` names the service, with its error.
    #[error("{detail}")]
    ServiceFailed {
        /// The service's name and what happened to it.
        detail: String,
    },
    /// A blocking invocation did not finish because its actor stopped (gracefully): run it
    /// elsewhere. Teams retry it on another member.
    #[error("{func} was rerouted: its actor stopped before it finished")]
    Rerouted {
        /// The function.
        func: String,
    },
    /// A message would not fit in one frame: over the channel's frame limit, which the peer
    /// would refuse. Nothing was sent.
    #[error(
        "a message of {len} bytes is over the frame limit of {limit} bytes, and nothing was \
         sent: send it in pieces (stream it as chunks), or raise ChannelConfig::max_frame_len \
         on both sides"
    )]
    TooLarge {
        /// The encoded message's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A team's task failed: unrecoverably, or on every attempt it was given.
    #[error("task {task} failed after {} attempt(s){}: {cause}", .members.len(), on(.members))]
    TaskFailed {
        /// The task's number in its team.
        task: u64,
        /// The members its attempts ran on, in order.
        members: Vec<String>,
        /// The error of its last attempt (or why it never ran).
        cause: Box<Error>,
    },
    /// Several errors, each reported (a nursery whose children failed together). The first is
    /// the one that caused the others' cancellation, when there was one.
    #[error("{} errors:{}", .0.len(), list(.0))]
    Group(Vec<Error>),
    /// An operating-system failure (binding a socket, spawning a process).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn on(members: &[String]) -> String {
    if members.is_empty() {
        String::new()
    } else {
        format!(" (on {})", members.join(", "))
    }
}

/// `core::num::error::ParseIntError` → `ParseIntError`; generic arguments dropped.
fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map_or_else(|| "unknown".to_owned(), |pid| pid.to_string())
}

/// How a child process ended, as the operating system reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChildExit {
    /// It exited with this status code.
    Code(i32),
    /// A signal killed it.
    Signal {
        /// The signal's number.
        number: i32,
        /// Its name (`SIGKILL`), when known.
        name: Option<&'static str>,
    },
    /// Its status could not be read (the reason).
    Unknown(String),
}

impl fmt::Display for ChildExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "exit status {code}"),
            Self::Signal {
                number,
                name: Some(name),
            } => write!(f, "killed by signal {number} ({name})"),
            Self::Signal { number, name: None } => write!(f, "killed by signal {number}"),
            Self::Unknown(why) => write!(f, "exit status unknown ({why})"),
        }
    }
}

fn list(errors: &[Error]) -> String {
    errors
        .iter()
        .enumerate()
        .map(|(i, e)| format!("\n  {}. {}", i + 1, e.to_string().replace('\n', "\n     ")))
        .collect()
}

fn by(canceller: &Option<Uid>) -> String {
    canceller
        .as_ref()
        .map(|uid| format!(" by {uid}"))
        .unwrap_or_default()
}

impl Error {
    /// An error a remote function raises with the type name its caller will see.
    ///
    /// ```
    /// fn check(n: i64) -> actor::Result<i64> {
    ///     if n < 0 {
    ///         return Err(actor::Error::raise("ValueError", format!("{n} is negative")));
    ///     }
    ///     Ok(n)
    /// }
    /// assert!(check(-1).is_err());
    /// ```
    pub fn raise(type_str: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Raised {
            type_str: type_str.into(),
            message: message.into(),
        }
    }

    /// Any error as the runtime's: an [`Error`] stays as it is (so [`Error::raise`] keeps the
    /// type name the caller sees); any other error reports its type's name as `type_str` and
    /// its error chain as the trace. This is what a remote function's `Err` becomes.
    ///
    /// ```
    /// let err = actor::Error::from_any("x".parse::<i32>().unwrap_err());
    /// assert_eq!(err.type_str(), "ParseIntError");
    /// ```
    pub fn from_any<E>(error: E) -> Self
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let type_str = short_type_name::<E>();
        let boxed: Box<dyn std::error::Error + Send + Sync> = error.into();
        match boxed.downcast::<Error>() {
            Ok(own) => *own,
            Err(other) => Self::Raised {
                type_str,
                message: error_chain(other.as_ref()),
            },
        }
    }

    /// A failure a team retries on another member (type `RecoverableError`, which every
    /// team retries; see `actor::team`): a transient condition, not a wrong input.
    ///
    /// ```
    /// fn fetch(attempt: u32) -> actor::Result<u32> {
    ///     if attempt == 0 {
    ///         return Err(actor::Error::recoverable("the upstream was busy"));
    ///     }
    ///     Ok(attempt)
    /// }
    /// assert_eq!(fetch(0).unwrap_err().type_str(), "RecoverableError");
    /// ```
    pub fn recoverable(message: impl Into<String>) -> Self {
        Self::raise(RECOVERABLE_TYPE, message)
    }

    /// A copy of this error for a second reader, of the same kind with the same fields where
    /// the kind can be copied; errors of the wire crate that cannot be (connect and encode
    /// failures) keep their type name and text.
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Spawn { actor, cause } => Self::Spawn {
                actor: actor.clone(),
                cause: Box::new(cause.duplicate()),
            },
            Self::ChildExited { actor, pid, exit } => Self::ChildExited {
                actor: actor.clone(),
                pid: *pid,
                exit: exit.clone(),
            },
            Self::ChildUnresponsive { actor, pid, detail } => Self::ChildUnresponsive {
                actor: actor.clone(),
                pid: *pid,
                detail: detail.clone(),
            },
            Self::Registrar { addr, detail } => Self::Registrar {
                addr: addr.clone(),
                detail: detail.clone(),
            },
            Self::Timeout { what, after } => Self::Timeout {
                what: what.clone(),
                after: *after,
            },
            Self::Rerouted { func } => Self::Rerouted { func: func.clone() },
            Self::TooLarge { len, limit } => Self::TooLarge {
                len: *len,
                limit: *limit,
            },
            Self::ServiceFailed { detail } => Self::ServiceFailed {
                detail: detail.clone(),
            },
            Self::TaskFailed {
                task,
                members,
                cause,
            } => Self::TaskFailed {
                task: *task,
                members: members.clone(),
                cause: Box::new(cause.duplicate()),
            },
            Self::Protocol { peer, detail } => Self::Protocol {
                peer: peer.clone(),
                detail: detail.clone(),
            },
            Self::Overrun { cid, capacity } => Self::Overrun {
                cid: cid.clone(),
                capacity: *capacity,
            },
            Self::Lagged { skipped } => Self::Lagged { skipped: *skipped },
            Self::Decode(e) => Self::Decode(e.clone()),
            Self::Io(e) => Self::Io(std::io::Error::new(e.kind(), e.to_string())),
            Self::Remote(e) => Self::Remote(e.clone()),
            Self::ContextCancelled { canceller, detail } => Self::ContextCancelled {
                canceller: canceller.clone(),
                detail: detail.clone(),
            },
            Self::Raised { type_str, message } => Self::raise(type_str.clone(), message.clone()),
            Self::Cancelled => Self::Cancelled,
            Self::Disconnected { peer, detail } => Self::Disconnected {
                peer: peer.clone(),
                detail: detail.clone(),
            },
            Self::Usage(text) => Self::Usage(text.clone()),
            Self::Group(errors) => Self::Group(errors.iter().map(Self::duplicate).collect()),
            other => Self::raise(other.type_str(), other.to_string()),
        }
    }

    /// Every error this one stands for: the members of a group, or itself.
    pub fn flatten(self) -> Vec<Self> {
        match self {
            Self::Group(errors) => errors.into_iter().flat_map(Self::flatten).collect(),
            other => vec![other],
        }
    }

    /// The remote error behind this one, if it is one.
    pub fn as_remote(&self) -> Option<&RemoteActorError> {
        match self {
            Self::Remote(e) => Some(e),
            _ => None,
        }
    }

    /// The type name a caller sees when this error ends a remote call.
    pub fn type_str(&self) -> &str {
        match self {
            Self::Remote(e) => &e.type_str,
            Self::Raised { type_str, .. } => type_str,
            Self::ContextCancelled { .. } => CONTEXT_CANCELLED,
            Self::Cancelled => "Cancelled",
            Self::Connect(_) | Self::Disconnected { .. } => "TransportClosed",
            Self::Encode(_) => "EncodeError",
            Self::Decode(_) => "DecodeError",
            Self::Protocol { .. } => "ProtocolError",
            Self::Overrun { .. } => "StreamOverrun",
            Self::Lagged { .. } => "Lagged",
            Self::Usage(_) => "RuntimeError",
            Self::Spawn { .. } => "SpawnError",
            Self::ChildExited { .. } => "ChildExited",
            Self::ChildUnresponsive { .. } => "ChildUnresponsive",
            Self::Registrar { .. } => "RegistrarError",
            Self::Timeout { .. } => "TimeoutError",
            Self::TaskFailed { .. } => "TaskFailed",
            Self::TooLarge { .. } => "FrameTooLarge",
            Self::Rerouted { .. } => REROUTED_TYPE,
            Self::ServiceFailed { .. } => SERVICE_FAILED_TYPE,
            Self::Group(_) => "ErrorGroup",
            Self::Io(_) => "OSError",
        }
    }

    /// The error as the protocol's `error` map, ready to send to a caller.
    pub fn to_error_info(&self) -> ErrorInfo {
        match self {
            Self::Remote(e) => ErrorInfo {
                type_str: e.type_str.clone(),
                tb_str: e.tb_str.clone(),
                extra: e.extra.clone(),
            },
            Self::Raised { type_str, message } => ErrorInfo::new(type_str, message),
            other => ErrorInfo::new(other.type_str(), error_chain(other)),
        }
    }
}

/// An error and its sources, one per line: the trace a Rust function sends as `tb_str`.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str("\ncaused by: ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A failure that happened in another actor.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteActorError {
    /// The remote error's type name (`ValueError`, `ModuleNotExposed`, `Panic`, ...).
    pub type_str: String,
    /// The remote trace, as the remote side wrote it.
    pub tb_str: String,
    /// The actor where the error happened (from the error's `src_uid`, or the peer).
    pub src_uid: Option<Uid>,
    /// Other keys of the error map (kept for relaying).
    pub extra: Vec<(String, Value)>,
}

impl RemoteActorError {
    /// Builds the error from a received `error` map, sent by `peer`.
    pub fn from_info(info: ErrorInfo, peer: &Uid) -> Self {
        let src_uid = info
            .extra("src_uid")
            .and_then(Uid::from_value)
            .or_else(|| Some(peer.clone()));
        Self {
            type_str: info.type_str,
            tb_str: info.tb_str,
            src_uid,
            extra: info.extra,
        }
    }

    /// Whether the remote actor refused the call because its namespace is not enabled.
    pub fn is_module_not_exposed(&self) -> bool {
        self.type_str == MODULE_NOT_EXPOSED
    }

    /// Whether the remote function panicked.
    pub fn is_panic(&self) -> bool {
        self.type_str == PANIC_TYPE
    }
}

impl fmt::Display for RemoteActorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "remote {}", self.type_str)?;
        if let Some(uid) = &self.src_uid {
            write!(f, " in actor {uid}")?;
        }
        write!(f, ":\n{}", self.tb_str.trim_end())
    }
}

impl std::error::Error for RemoteActorError {}

#[cfg(test)]
mod tests {
    use super::{ChildExit, Error};

    #[test]
    fn a_duplicate_keeps_the_kind_and_the_fields() {
        let spawn = Error::Spawn {
            actor: "w1".into(),
            cause: Box::new(Error::ChildExited {
                actor: "w1".into(),
                pid: Some(41),
                exit: ChildExit::Code(3),
            }),
        };
        let copy = spawn.duplicate();
        assert_eq!(copy.to_string(), spawn.to_string());
        match copy {
            Error::Spawn { actor, cause } => {
                assert_eq!(actor, "w1");
                assert!(matches!(
                    *cause,
                    Error::ChildExited {
                        pid: Some(41),
                        exit: ChildExit::Code(3),
                        ..
                    }
                ));
            }
            other => panic!("not a spawn error: {other:?}"),
        }
        let registrar = Error::Registrar {
            addr: "tcp://127.0.0.1:1616".into(),
            detail: "sent 3 for an address".into(),
        };
        assert!(
            matches!(registrar.duplicate(), Error::Registrar { addr, .. } if addr.ends_with(":1616"))
        );
        let io = Error::Io(std::io::Error::new(std::io::ErrorKind::AddrInUse, "taken"));
        assert!(
            matches!(io.duplicate(), Error::Io(e) if e.kind() == std::io::ErrorKind::AddrInUse)
        );
    }

    #[test]
    fn each_operation_has_its_type_name_on_the_wire() {
        let timeout = Error::Timeout {
            what: "child w1 did not connect back".into(),
            after: std::time::Duration::from_secs(10),
        };
        assert_eq!(
            timeout.to_string(),
            "child w1 did not connect back within 10s"
        );
        assert_eq!(timeout.to_error_info().type_str, "TimeoutError");
        let exited = Error::ChildExited {
            actor: "w1".into(),
            pid: Some(4242),
            exit: ChildExit::Signal {
                number: 9,
                name: Some("SIGKILL"),
            },
        };
        assert_eq!(
            exited.to_string(),
            "child actor w1 (pid 4242) ended unexpectedly: killed by signal 9 (SIGKILL)"
        );
        assert_eq!(exited.type_str(), "ChildExited");
    }
}
