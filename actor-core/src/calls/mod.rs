//! Floor 4: the call kinds as users hold them: a [`context::Context`] and its bidirectional
//! stream, a one-way [`stream::RemoteStream`], and the [`registry`] of remotely callable
//! functions (whose handlers take a `Context`).

pub mod context;
pub mod registry;
pub mod stream;
