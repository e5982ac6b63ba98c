//! Support for the code `#[actor::remote]` generates. Not a public API: names here may change
//! in any release.

use std::future::Future;

use actor_ipc::Payload;
use futures::{Stream, StreamExt};
use serde::{Serialize, de::DeserializeOwned};

pub use crate::calls::registry::{
    CallFuture, Handler, ItemStream, Registration, ServiceRegistration, ServiceStart, StreamItem,
};
pub use crate::entry::{run_main, run_test, run_test_program};
pub use crate::root_program::{AsTask, InPlace, Program, Tag};
pub use crate::runtime::services::{ServiceEnd, ServiceOutcome, async_service};
pub use actor_ipc::Payload as RawPayload;
pub use futures;
pub use inventory;
pub use serde;

use crate::{
    base::error::{Error, TYPE_ERROR},
    calls::registry::LARGE_ITEM,
};

/// Decodes a call's kwargs into the function's argument struct; a mismatch refuses the call
/// with a `TypeError` naming the problem.
pub fn decode_args<T: DeserializeOwned>(kwargs: &Payload, func: &str) -> Result<T, Error> {
    kwargs
        .decode()
        .map_err(|e| Error::raise(TYPE_ERROR, format!("{func}(): bad arguments: {e}")))
}

/// Encodes an infallible function's result.
pub fn encode_output<T: Serialize>(value: &T) -> Result<Payload, Error> {
    Ok(Payload::encode(value)?)
}

/// Encodes a fallible function's result; its error becomes the call's error.
pub fn encode_result<T, E>(result: Result<T, E>) -> Result<Payload, Error>
where
    T: Serialize,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    match result {
        Ok(value) => encode_output(&value),
        Err(e) => Err(error_from(e)),
    }
}

/// Turns a remote function's error into the runtime's ([`Error::from_any`]).
pub fn error_from<E>(error: E) -> Error
where
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    Error::from_any(error)
}

/// Runs a `blocking` remote function's body on the serving actor's thread runner (a thread of
/// its own, within the actor's slots), never on the async executor. The thread sees the actor
/// as its current one.
pub async fn run_blocking<T, W>(func: &'static str, work: W) -> Result<T, Error>
where
    T: Send + 'static,
    W: FnOnce() -> Result<T, Error> + Send + 'static,
{
    let core = crate::runtime::current()
        .ok_or_else(|| Error::Usage(format!("{func}: a blocking function runs in an actor")))?;
    let runner = core.thread_runner.clone();
    let work = move || crate::runtime::with_current_sync(core, work);
    runner.submit(func, work).await
}

/// A fallible blocking function's result, its error as the runtime's.
pub fn blocking_result<T, E>(result: Result<T, E>) -> Result<T, Error>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    result.map_err(Error::from_any)
}

/// Boxes a running function.
pub fn call_future<F>(fut: F) -> CallFuture
where
    F: Future<Output = Result<Payload, Error>> + Send + 'static,
{
    Box::pin(fut)
}

/// Encodes one stream item; a large [`Blob`](actor_ipc::Blob) or `Bytes` (both msgpack bin)
/// is kept as its bytes, to be written without a copy.
fn encode_item<T: Serialize + 'static>(item: &T) -> Result<StreamItem, Error> {
    let any: &dyn std::any::Any = item;
    let bin = match any.downcast_ref::<actor_ipc::Blob>() {
        Some(blob) => Some(&blob.0),
        None => any.downcast_ref::<bytes::Bytes>(),
    };
    match bin {
        Some(bin) if bin.len() >= LARGE_ITEM => Ok(StreamItem::Bin(bin.clone())),
        _ => encode_output(item).map(StreamItem::Value),
    }
}

/// Encodes the items of an infallible stream.
pub fn item_stream<S>(stream: S) -> ItemStream
where
    S: Stream + Send + 'static,
    S::Item: Serialize + 'static,
{
    stream.map(|item| encode_item(&item)).boxed()
}

/// Encodes the items of a fallible stream; an `Err` item ends the stream with that error.
pub fn fallible_item_stream<S, T, E>(stream: S) -> ItemStream
where
    S: Stream<Item = Result<T, E>> + Send + 'static,
    T: Serialize + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    stream
        .map(|item| item.map_err(error_from).and_then(|item| encode_item(&item)))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_errors_report_their_type_and_chain() {
        let err = error_from("x".parse::<i32>().unwrap_err());
        assert_eq!(err.type_str(), "ParseIntError");
        assert!(err.to_error_info().tb_str.contains("invalid digit"));
    }

    #[test]
    fn raised_errors_keep_their_type() {
        let err = error_from(Error::raise("ValueError", "bad"));
        assert_eq!(err.type_str(), "ValueError");
        assert_eq!(err.to_error_info().tb_str, "bad");
    }
}
