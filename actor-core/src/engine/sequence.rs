//! Which reply may come next on a call this side made, for each kind of call, as one state
//! machine (`docs/protocol.md`, "Calls"):
//!
//! - asyncfunc: `functype`, then `return` or `error`;
//! - asyncgen: `functype`, any number of `yield`, then `stop` or `error`;
//! - context: `functype`, `started`, then `yield`/`stop`, then `return` or `error`.
//!
//! A call refused before it runs gets an `error` with no `functype` first. tractor 0.1.0a5 sends
//! `stop` twice at the end of a context's stream and may send stream messages after a result:
//! those are [`Step::Ignored`]. Anything else out of order is a [`Step::Violation`], which the
//! consumer reports as a protocol error (or, inside a stream, logs and skips).

use actor_ipc::{CallKind, ErrorInfo, Msg, Payload};

/// What a reply means for the call that receives it.
#[derive(Debug)]
pub(crate) enum Step {
    /// The callee confirmed the kind of call (a stream may now be read).
    Opened,
    /// A context's `started` value.
    Started(Payload),
    /// One stream item.
    Item(Payload),
    /// The stream ended (`stop`, or an asyncgen's `return`); a context's result may follow.
    StreamEnded,
    /// The call's result: it is over.
    Returned(Payload),
    /// The call failed: it is over.
    Failed(Box<ErrorInfo>),
    /// Nothing to act on (a duplicate `stop`, a message after the end).
    Ignored,
    /// A message that cannot come at this point of the call.
    Violation(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for `functype` (or a refusal).
    Called,
    /// A context whose `functype` arrived, waiting for `started`.
    AwaitingStarted,
    /// Replies of a running call: results, items, stops.
    Running,
    /// The call returned or failed.
    Over,
}

/// The reply sequence of one call this side made.
#[derive(Debug)]
pub(crate) struct ReplySequence {
    kind: CallKind,
    phase: Phase,
}

impl ReplySequence {
    /// A call of `kind`, just sent.
    pub(crate) fn new(kind: CallKind) -> Self {
        Self {
            kind,
            phase: Phase::Called,
        }
    }

    /// A call of `kind` whose opening replies were already taken (a context handed to its
    /// caller after `started`, a stream after `functype`).
    pub(crate) fn running(kind: CallKind) -> Self {
        Self {
            kind,
            phase: Phase::Running,
        }
    }

    /// Whether the call has returned or failed.
    pub(crate) fn is_over(&self) -> bool {
        self.phase == Phase::Over
    }

    /// Takes the next reply and says what it means.
    pub(crate) fn on(&mut self, msg: Msg) -> Step {
        if self.phase == Phase::Over {
            return Step::Ignored;
        }
        match msg {
            Msg::Error { error, .. } => {
                self.phase = Phase::Over;
                Step::Failed(error)
            }
            Msg::FuncType { kind, .. } => self.on_functype(kind),
            Msg::Return { value, .. } => match (self.kind, self.phase) {
                (CallKind::AsyncFunc | CallKind::Context, Phase::Running)
                | (CallKind::AsyncFunc, Phase::Called) => {
                    self.phase = Phase::Over;
                    Step::Returned(value)
                }
                // An asyncgen that returns ends its stream.
                (CallKind::AsyncGen, Phase::Running) => {
                    self.phase = Phase::Over;
                    Step::StreamEnded
                }
                _ => self.violation("a result before the call started"),
            },
            Msg::Started { value, .. } => match (self.kind, self.phase) {
                (CallKind::Context, Phase::AwaitingStarted) => {
                    self.phase = Phase::Running;
                    Step::Started(value)
                }
                _ => self.violation("`started` outside a context's opening"),
            },
            Msg::Yield { value, .. } => match (self.kind, self.phase) {
                (CallKind::AsyncGen | CallKind::Context, Phase::Running) => Step::Item(value),
                _ => self.violation("a stream item outside a running stream"),
            },
            Msg::Stop { .. } => match (self.kind, self.phase) {
                (CallKind::AsyncGen, Phase::Running) => {
                    self.phase = Phase::Over;
                    Step::StreamEnded
                }
                (CallKind::Context, Phase::Running) => Step::StreamEnded,
                _ => self.violation("`stop` outside a running stream"),
            },
            other => self.violation(&format!("unexpected message {other:?}")),
        }
    }

    fn on_functype(&mut self, kind: CallKind) -> Step {
        if self.phase != Phase::Called {
            return self.violation("a second `functype`");
        }
        if kind != self.kind {
            let expected = self.kind.as_str();
            return self.violation(&format!(
                "the function is a {}, not a {expected}",
                kind.as_str()
            ));
        }
        match kind {
            CallKind::Context => {
                self.phase = Phase::AwaitingStarted;
                Step::Ignored
            }
            CallKind::AsyncGen => {
                self.phase = Phase::Running;
                Step::Opened
            }
            CallKind::AsyncFunc => {
                self.phase = Phase::Running;
                Step::Ignored
            }
        }
    }

    fn violation(&self, what: &str) -> Step {
        Step::Violation(format!("{what} (a {} call)", self.kind.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use actor_ipc::{CallKind, ErrorInfo, Msg, Payload};

    use super::{ReplySequence, Step};

    fn functype(kind: CallKind) -> Msg {
        Msg::FuncType {
            cid: "c1".into(),
            kind,
        }
    }
    fn ret(n: u64) -> Msg {
        Msg::Return {
            cid: "c1".into(),
            value: Payload::encode(&n).unwrap(),
        }
    }
    fn item(n: u64) -> Msg {
        Msg::Yield {
            cid: "c1".into(),
            value: Payload::encode(&n).unwrap(),
        }
    }
    fn started(n: u64) -> Msg {
        Msg::Started {
            cid: "c1".into(),
            value: Payload::encode(&n).unwrap(),
        }
    }
    fn stop() -> Msg {
        Msg::Stop { cid: "c1".into() }
    }
    fn error() -> Msg {
        Msg::Error {
            cid: Some("c1".into()),
            error: Box::new(ErrorInfo::new("ValueError", "kaboom")),
        }
    }
    fn decoded(payload: &Payload) -> u64 {
        payload.decode().unwrap()
    }

    #[test]
    fn asyncfunc_functype_then_return() {
        let mut seq = ReplySequence::new(CallKind::AsyncFunc);
        assert!(matches!(
            seq.on(functype(CallKind::AsyncFunc)),
            Step::Ignored
        ));
        assert!(matches!(seq.on(ret(3)), Step::Returned(v) if decoded(&v) == 3));
        assert!(seq.is_over());
        // Anything after the end is harmless.
        assert!(matches!(seq.on(stop()), Step::Ignored));
    }

    #[test]
    fn asyncfunc_return_without_functype() {
        // The reader drops a confirming asyncfunc functype, so a return may come first.
        let mut seq = ReplySequence::new(CallKind::AsyncFunc);
        assert!(matches!(seq.on(ret(5)), Step::Returned(v) if decoded(&v) == 5));
    }

    #[test]
    fn a_refused_call_fails_without_functype() {
        for kind in [CallKind::AsyncFunc, CallKind::AsyncGen, CallKind::Context] {
            let mut seq = ReplySequence::new(kind);
            match seq.on(error()) {
                Step::Failed(e) => assert_eq!(e.type_str, "ValueError"),
                other => panic!("{kind:?}: {other:?}"),
            }
            assert!(seq.is_over());
        }
    }

    #[test]
    fn asyncfunc_refuses_stream_messages() {
        let mut seq = ReplySequence::new(CallKind::AsyncFunc);
        assert!(matches!(seq.on(item(1)), Step::Violation(_)));
        let mut seq = ReplySequence::new(CallKind::AsyncFunc);
        assert!(matches!(seq.on(started(1)), Step::Violation(_)));
    }

    #[test]
    fn asyncgen_items_then_stop() {
        let mut seq = ReplySequence::new(CallKind::AsyncGen);
        assert!(matches!(seq.on(functype(CallKind::AsyncGen)), Step::Opened));
        for n in 0..3 {
            assert!(matches!(seq.on(item(n)), Step::Item(v) if decoded(&v) == n));
        }
        assert!(matches!(seq.on(stop()), Step::StreamEnded));
        assert!(seq.is_over());
        assert!(matches!(seq.on(stop()), Step::Ignored));
        assert!(matches!(seq.on(item(9)), Step::Ignored));
    }

    #[test]
    fn asyncgen_error_mid_stream() {
        let mut seq = ReplySequence::running(CallKind::AsyncGen);
        assert!(matches!(seq.on(item(0)), Step::Item(_)));
        assert!(matches!(seq.on(error()), Step::Failed(_)));
        assert!(seq.is_over());
    }

    #[test]
    fn a_function_of_another_kind_is_a_violation() {
        let mut seq = ReplySequence::new(CallKind::AsyncGen);
        match seq.on(functype(CallKind::AsyncFunc)) {
            Step::Violation(text) => assert!(text.contains("not a asyncgen"), "{text}"),
            other => panic!("{other:?}"),
        }
        let mut seq = ReplySequence::new(CallKind::Context);
        assert!(matches!(
            seq.on(functype(CallKind::AsyncGen)),
            Step::Violation(_)
        ));
    }

    #[test]
    fn context_functype_started_stream_then_result() {
        let mut seq = ReplySequence::new(CallKind::Context);
        assert!(matches!(seq.on(functype(CallKind::Context)), Step::Ignored));
        assert!(matches!(seq.on(started(7)), Step::Started(v) if decoded(&v) == 7));
        assert!(matches!(seq.on(item(1)), Step::Item(_)));
        assert!(matches!(seq.on(stop()), Step::StreamEnded));
        // tractor's duplicate stop.
        assert!(matches!(seq.on(stop()), Step::StreamEnded));
        assert!(!seq.is_over());
        assert!(matches!(seq.on(ret(42)), Step::Returned(v) if decoded(&v) == 42));
        assert!(seq.is_over());
        assert!(matches!(seq.on(stop()), Step::Ignored));
    }

    #[test]
    fn context_started_needs_functype_first_and_comes_once() {
        let mut seq = ReplySequence::new(CallKind::Context);
        assert!(matches!(seq.on(started(1)), Step::Violation(_)));
        let mut seq = ReplySequence::new(CallKind::Context);
        seq.on(functype(CallKind::Context));
        assert!(matches!(seq.on(item(1)), Step::Violation(_)));
        let mut seq = ReplySequence::new(CallKind::Context);
        seq.on(functype(CallKind::Context));
        seq.on(started(1));
        assert!(matches!(seq.on(started(2)), Step::Violation(_)));
        assert!(matches!(
            seq.on(functype(CallKind::Context)),
            Step::Violation(_)
        ));
    }

    #[test]
    fn context_cancelled_fails_after_started() {
        let mut seq = ReplySequence::running(CallKind::Context);
        assert!(matches!(seq.on(stop()), Step::StreamEnded));
        assert!(matches!(seq.on(error()), Step::Failed(_)));
        assert!(seq.is_over());
    }
}
