//! Floor 1: the protocol's rules with no I/O, the way quinn-proto keeps protocol apart from
//! sockets. Nothing here reads, writes, spawns or sleeps; each type takes what happened and says
//! what follows, so every rule is unit-tested in memory. The connection (floor 3) drives them.
//!
//! - [`inflight`]: the table of calls in flight on one connection, with explicit verbs.
//! - [`sequence`]: which reply may come next for each kind of call, as one state machine.
//! - [`credit`]: the credit-based flow-control rule for streams.
//! - [`heartbeat`]: when a silent peer is gone, and how often to prove this side is not.

pub(crate) mod credit;
pub(crate) mod heartbeat;
pub(crate) mod inflight;
pub(crate) mod sequence;
