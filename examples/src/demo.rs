//! The `demo` namespace the `daemon` example serves, in a library so callers get the typed
//! calls (`demo::add { a: 1, b: 2 }`) and the runtime finds functions registered in another
//! crate of the program.

/// The namespace's name.
pub const NS: &str = "demo";
use actor::{Actor, Context};
use futures::{Stream, StreamExt};

/// `a + b`.
#[actor::remote(ns = "demo")]
pub async fn add(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}

/// Returns its argument.
#[actor::remote(ns = "demo")]
pub async fn echo(x: u64) -> u64 {
    x
}

/// Streams 0..n.
#[actor::remote(ns = "demo")]
pub fn count(n: u64) -> impl Stream<Item = u64> {
    futures::stream::iter(0..n)
}

/// Streams `n` byte blobs (msgpack bin) of `size` bytes each; a size over the frame limit
/// (16 MiB) is refused with a `ValueError` before anything is allocated. Items are
/// [`actor::Blob`]s: a Rust caller receives each as a slice of its frame, without a copy.
#[actor::remote(ns = "demo")]
pub fn blob(n: u64, size: u64) -> impl Stream<Item = actor::Result<actor::Blob>> {
    let limit = actor::ipc::DEFAULT_MAX_FRAME_LEN as u64;
    let blob = (size <= limit)
        .then(|| bytes::Bytes::from(vec![0xab_u8; usize::try_from(size).unwrap_or(0)]));
    futures::stream::iter(0..n).map(move |_| {
        blob.clone().map(actor::Blob).ok_or_else(|| {
            actor::Error::raise(
                "ValueError",
                format!("blob size {size} is over the frame limit of {limit} bytes"),
            )
        })
    })
}

/// Sends `started(start)`, echoes every stream item back, and returns `"done"` once the
/// caller closes its stream.
#[actor::remote(ns = "demo", started = i64)]
pub async fn echo_ctx(ctx: Context, start: i64) -> actor::Result<String> {
    ctx.started(start).await?;
    let mut stream = ctx.open_stream::<actor::Value>().await?;
    while let Some(item) = stream.next().await {
        stream.send(item?).await?;
    }
    Ok("done".into())
}

/// Never returns until cancelled.
#[actor::remote(ns = "demo")]
pub async fn sleep_forever() {
    std::future::pending::<()>().await
}

/// Fails with a `ValueError` carrying `msg`.
#[actor::remote(ns = "demo")]
pub async fn fail(msg: String) -> actor::Result<()> {
    Err(actor::Error::raise("ValueError", msg))
}

/// How many `demo` calls are running in this daemon now, not counting this one.
#[actor::remote(ns = "demo")]
pub async fn running() -> u64 {
    Actor::current()
        .map(|me| me.running_calls("demo").saturating_sub(1))
        .unwrap_or(0)
}

/// Keeps one of the daemon's thread-runner slots busy with `ms` milliseconds of CPU work (a
/// blocking function: it runs on a thread of its own, never on the event loop); returns how
/// many rounds it spun.
#[actor::remote(ns = "demo", blocking)]
pub fn hog(ms: u64) -> u64 {
    let start = std::time::Instant::now();
    let mut rounds = 0_u64;
    while start.elapsed() < std::time::Duration::from_millis(ms) {
        rounds = std::hint::black_box(rounds.wrapping_add(1));
    }
    rounds
}
