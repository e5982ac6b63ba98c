//! Floor 5: serving the peer's calls. The reader task of every connection lives here: it reads
//! frames, hands `cmd`s to the dispatcher and everything else to the connection's routing.
//!
//! - `listen.rs`: accepting an actor's connections;
//! - `reader.rs`: the read loop, and starting a connection with its reader;
//! - `dispatch.rs`: which function answers a `cmd`, served inline while it does not wait,
//!   else as a tracked task;
//! - `replies.rs`: the reply producers of a running call (a result, a stream, a context);
//! - `runtime_calls.rs`: `self` calls, through the actor's router.

mod dispatch;
mod listen;
mod reader;
mod replies;
mod runtime_calls;

pub(crate) use listen::accept_loop;
pub(crate) use reader::{adopt, serve, start};
