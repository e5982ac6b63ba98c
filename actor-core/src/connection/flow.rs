//! Negotiating credit-based flow control on a connection (`docs/protocol-notes.md`): the
//! caller's request before its first stream, the callee's answer, and the agreed window. The
//! credit rule itself is the engine's (`engine/credit.rs`).

use std::{collections::HashMap, sync::Arc, sync::atomic::Ordering};

use actor_ipc::{Cmd, ErrorInfo, Msg, Payload};
use serde::Deserialize;
use tracing::debug;

use super::Connection;
pub use crate::engine::credit::MAX_STREAM_CREDIT;
use crate::{
    base::{error::TYPE_ERROR, lock},
    engine::credit::{MIN_WINDOW, agreed_window},
};

/// Flow-control state of a connection.
pub(super) const FLOW_UNKNOWN: u8 = 0;
const FLOW_ON: u8 = 1;
const FLOW_OFF: u8 = 2;

/// The namespace of this runtime's protocol extensions. It is not `self` on purpose: tractor
/// 0.1.0a5 looks `self` functions up outside its error handling (an unknown one kills that
/// actor), while a call into a namespace it did not enable is answered with a clean
/// `ModuleNotExposed` error.
pub(crate) const EXTENSION_NS: &str = crate::runtime::INTROSPECTION_NS;

/// The extension call a caller of this runtime makes (once per connection, before its first
/// stream) to turn credit-based flow control on. A tractor 0.1.0a5 peer refuses it, which
/// leaves flow control off for that connection.
pub(crate) const FLOW_CONTROL_CALL: &str = "flow_control";

impl Connection {
    /// The peer asked for flow control: agree on the smaller of the two windows.
    pub(crate) async fn enable_flow_control(self: &Arc<Self>, cmd: Box<Cmd>) {
        #[derive(Deserialize)]
        struct Args {
            window: u64,
        }
        let asked = match cmd.kwargs.decode::<Args>() {
            Ok(args) => args.window,
            Err(e) => {
                let error = ErrorInfo::new(TYPE_ERROR, format!("{FLOW_CONTROL_CALL}(): {e}"));
                return self.reply_error(&cmd.cid, error).await;
            }
        };
        let window = agreed_window(asked, self.core.stream_window);
        self.window.store(window, Ordering::Release);
        self.flow.store(FLOW_ON, Ordering::Release);
        let reply = Payload::encode(&HashMap::from([("window", window as u64)]))
            .unwrap_or_else(|_| Payload::nil());
        self.reply_value(&cmd.cid, reply).await;
    }

    /// Before the first stream on this connection: ask the peer for flow control (without
    /// waiting; the answer arrives before any item of a stream opened after it).
    pub(crate) async fn request_flow_control(self: &Arc<Self>) {
        if self.flow_requested.swap(true, Ordering::AcqRel) {
            return;
        }
        let cid = self.new_cid();
        *lock(&self.flow_cid) = Some(cid.clone());
        self.flow_pending.store(true, Ordering::Release);
        let kwargs = Payload::encode(&HashMap::from([("window", self.core.stream_window as u64)]))
            .unwrap_or_else(|_| Payload::empty_map());
        if self
            .send_cmd(EXTENSION_NS, FLOW_CONTROL_CALL, kwargs, &cid)
            .await
            .is_err()
        {
            self.flow.store(FLOW_OFF, Ordering::Release);
        }
    }

    /// Whether an answer to our flow-control request is still awaited.
    pub(super) fn flow_answer_pending(&self) -> bool {
        self.flow_pending.load(Ordering::Acquire)
    }

    /// Handles the answer to our flow-control request; false if `msg` is not one.
    pub(super) fn flow_answer(&self, cid: &str, msg: &Msg) -> bool {
        if lock(&self.flow_cid).as_deref() != Some(cid) {
            return false;
        }
        #[derive(Deserialize)]
        struct Agreed {
            window: u64,
        }
        if !matches!(msg, Msg::FuncType { .. }) {
            self.flow_pending.store(false, Ordering::Release);
        }
        match msg {
            Msg::FuncType { .. } => {}
            Msg::Return { value, .. } => match value.decode::<Agreed>() {
                Ok(agreed) if agreed.window >= MIN_WINDOW as u64 => {
                    let window = agreed_window(agreed.window, self.core.stream_window);
                    self.window.store(window, Ordering::Release);
                    self.flow.store(FLOW_ON, Ordering::Release);
                }
                _ => {
                    debug!(peer = %self.peer, "flow control answer without a usable window");
                    self.flow.store(FLOW_OFF, Ordering::Release);
                }
            },
            _ => {
                debug!(peer = %self.peer, "peer declined flow control; overruns end streams");
                self.flow.store(FLOW_OFF, Ordering::Release);
            }
        }
        true
    }

    /// Whether flow control is on for this connection.
    pub(crate) fn flow_on(&self) -> bool {
        self.flow.load(Ordering::Acquire) == FLOW_ON
    }

    /// The agreed stream window (meaningful while flow control is on).
    pub(crate) fn window(&self) -> usize {
        self.window.load(Ordering::Acquire)
    }
}
