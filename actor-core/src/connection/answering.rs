//! Answering the peer's calls: a result (`functype` and `return` in one write) or an error,
//! and frames queued from places that cannot wait.

use actor_ipc::{ErrorInfo, Msg, Payload, TrySendError};
use tracing::debug;

use super::Connection;
use crate::base::error::Error;

impl Connection {
    /// [`Connection::reply_value`] if it can be queued now: the value back if it must wait
    /// (the queue is full, or the frames are large or too large), for `reply_value`.
    pub(crate) fn try_reply_value(&self, cid: &str, value: Payload) -> Option<Payload> {
        let sent = self
            .sender
            .try_send_written(Msg::answer_frames_size(cid, &value), |buf| {
                Msg::put_answer_frames(buf, cid, &value)
            });
        let Some(sent) = sent else {
            return Some(value);
        };
        match sent.map_err(|e| self.send_error(e)) {
            Ok(()) => None,
            // `reply_value` answers with that error.
            Err(Error::TooLarge { .. }) => Some(value),
            Err(e) => {
                debug!(peer = %self.peer, error = %e, "could not reply");
                None
            }
        }
    }

    /// `functype asyncfunc` and `return value`, written together.
    pub(crate) async fn reply_value(&self, cid: &str, value: Payload) {
        let sent = self
            .sender
            .send_written(Msg::answer_frames_size(cid, &value), |buf| {
                Msg::put_answer_frames(buf, cid, &value)
            })
            .await
            .map_err(|e| self.send_error(e));
        match sent {
            Ok(()) => {}
            // Too large for a frame: the caller gets that error instead of nothing.
            Err(e @ Error::TooLarge { .. }) => {
                self.reply_error(cid, ErrorInfo::new(e.type_str(), e.to_string()))
                    .await;
            }
            Err(e) => debug!(peer = %self.peer, error = %e, "could not reply"),
        }
    }

    /// An `error` reply for call `cid`, naming this actor as where it happened.
    pub(crate) async fn reply_error(&self, cid: &str, mut error: ErrorInfo) {
        crate::base::trace::record_error(&error.type_str);
        if error.extra("src_uid").is_none() {
            error
                .extra
                .push(("src_uid".into(), self.core.uid.to_value()));
        }
        let msg = Msg::Error {
            cid: Some(cid.into()),
            error: Box::new(error),
        };
        if let Err(e) = self.sender.send(&msg).await {
            debug!(peer = %self.peer, error = %e, "could not send an error reply");
        }
    }

    /// Queues a frame without waiting if possible, else from a tracked task (for `Drop`s and
    /// `poll` functions, which cannot wait).
    pub(crate) fn send_frame_soon(&self, frame: bytes::Bytes) {
        match self.sender.try_send_frame(frame) {
            Ok(()) | Err(TrySendError::Closed) => {}
            Err(TrySendError::Full(frame)) => {
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    let sender = self.sender.clone();
                    let send = async move {
                        let _ = sender.send_frame(frame).await;
                    };
                    handle.spawn(self.core.io_tasks.track_future(send));
                }
            }
        }
    }
}
