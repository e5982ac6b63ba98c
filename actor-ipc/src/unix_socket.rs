//! A connected Unix stream socket registered with the runtime for readability only.
//!
//! tokio registers its sockets for reading and writing at once, and a Unix stream socket
//! signals "writable" every time its peer reads what it sent (the kernel frees the sent
//! buffer and wakes whoever polls the socket). A connection in request/response rhythm then
//! woke its parked thread once more per round trip, to learn nothing: the writer waits for
//! room only when a write finds the socket full, which such a connection never does. Here
//! the socket is registered for readability alone; a writer that finds it full registers a
//! duplicate descriptor for writability for as long as it waits.

use std::{
    io::{self, Write},
    os::{
        fd::{AsRawFd, RawFd},
        unix::net::UnixStream,
    },
    sync::Arc,
    task::{Context, Poll, ready},
};

use tokio::io::{Interest, ReadBuf, unix::AsyncFd};

/// One connected Unix stream socket, shared by its read and write halves.
#[derive(Debug)]
pub struct UnixSocket {
    io: AsyncFd<UnixStream>,
    /// The watch for room of the writer's waits, kept from one wait to the next while it
    /// writes a batch (a stream of large items waits many times in a row), dropped after.
    room: std::sync::Mutex<Option<Arc<AsyncFd<UnixStream>>>>,
}

/// Registers `stream` with the current runtime for `interest` only.
fn register(stream: UnixStream, interest: Interest) -> io::Result<AsyncFd<UnixStream>> {
    // SAFETY: `register_with_interest` needs the descriptor to stay open and the same for
    // the `AsyncFd`'s whole life. A std `UnixStream` owns its descriptor, closes it only when
    // dropped (which the `AsyncFd` does after deregistering it), and `as_raw_fd` always
    // returns that one descriptor.
    #[allow(unsafe_code)]
    let registered = unsafe { AsyncFd::register_with_interest(stream, interest) };
    registered.map_err(|e| e.into_parts().1)
}

impl UnixSocket {
    /// Takes `stream` over from tokio's registration (read and write) to one for reading.
    /// Must be called within a tokio runtime, which then drives the socket.
    pub(crate) fn new(stream: tokio::net::UnixStream) -> io::Result<Self> {
        // `into_std` deregisters the stream and leaves it non-blocking.
        let stream = stream.into_std()?;
        Ok(Self {
            io: register(stream, Interest::READABLE)?,
            room: std::sync::Mutex::new(None),
        })
    }

    /// The socket's descriptor (for a read that does not wait on readiness).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.io.get_ref().as_raw_fd()
    }

    /// Reads into the unfilled part of `buf` once the socket has bytes (or has ended).
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            let mut ready = ready!(self.io.poll_read_ready(cx))?;
            // SAFETY: `unfilled_mut` hands out memory that may be uninitialised; it is given
            // only to `recv`, which writes at most its length into it and reads none of it.
            // Exactly the bytes `recv` reports written are then marked initialised.
            #[allow(unsafe_code)]
            let unfilled = unsafe { buf.unfilled_mut() };
            let received = ready.try_io(|io| {
                // SAFETY: the pointer and length describe `unfilled`, writable memory owned
                // by `buf` for the duration of the call (see above).
                #[allow(unsafe_code)]
                let n = unsafe {
                    libc::recv(
                        io.as_raw_fd(),
                        unfilled.as_mut_ptr().cast(),
                        unfilled.len(),
                        0,
                    )
                };
                usize::try_from(n).map_err(|_| io::Error::last_os_error())
            });
            match received {
                Ok(Ok(n)) => {
                    // SAFETY: `recv` wrote these `n` bytes (n <= unfilled.len()).
                    #[allow(unsafe_code)]
                    unsafe {
                        buf.assume_init(n)
                    };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                // Nothing after all: readiness was cleared; wait for the next.
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes what the socket takes of `buf` now (`WouldBlock` if nothing).
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.get_ref().write(buf)
    }

    /// Writes what the socket takes of `bufs` now, in one syscall (`WouldBlock` if nothing).
    pub(crate) fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.io.get_ref().write_vectored(bufs)
    }

    /// A registration for writability, for one wait: a duplicate of the descriptor (the
    /// socket itself stays registered for reading only). It reports the socket's state when
    /// made, so room that appeared since the failed write is not missed.
    pub(crate) fn room_watch(&self) -> io::Result<AsyncFd<UnixStream>> {
        register(self.io.get_ref().try_clone()?, Interest::WRITABLE)
    }

    /// Waits until the socket may take more bytes (possibly spuriously: a write can still
    /// find it full). Call after a write found it full; [`UnixSocket::end_waits`] once the
    /// batch is written.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        let watch = {
            let mut room = self.room.lock().unwrap_or_else(|e| e.into_inner());
            match &*room {
                Some(watch) => watch.clone(),
                None => room.insert(Arc::new(self.room_watch()?)).clone(),
            }
        };
        // Cleared at once: the write that follows either finds room, or finds the socket
        // full again, after which the peer's next read raises a new edge.
        watch.writable().await?.clear_ready();
        Ok(())
    }

    /// The writer has written its batch: stop watching for room (each read by the peer would
    /// otherwise raise an event).
    pub(crate) fn end_waits(&self) {
        let mut room = self.room.lock().unwrap_or_else(|e| e.into_inner());
        *room = None;
    }

    /// Ends the sending direction (the peer reads an end of stream).
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        self.io.get_ref().shutdown(std::net::Shutdown::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use tokio::io::AsyncReadExt;

    /// A socket pair: ours registered for reading only, theirs a plain non-blocking std end.
    fn pair() -> (UnixSocket, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs.set_nonblocking(true).unwrap();
        let ours = UnixSocket::new(tokio::net::UnixStream::from_std(ours).unwrap()).unwrap();
        (ours, theirs)
    }

    /// Reads through `AsyncRead`-style polling, as the frame reader does.
    struct Reading<'a>(&'a UnixSocket);

    impl tokio::io::AsyncRead for Reading<'_> {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.0.poll_read(cx, buf)
        }
    }

    #[tokio::test]
    async fn bytes_written_either_way_arrive_whole_and_in_order() {
        let (ours, mut theirs) = pair();
        theirs.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        Reading(&ours).read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        assert_eq!(ours.try_write(b"back").unwrap(), 4);
        let mut back = [0u8; 4];
        theirs.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"back");
        // The peer's end of stream reads as zero bytes.
        drop(theirs);
        let mut rest = Vec::new();
        Reading(&ours).read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    /// A writer that fills the socket waits for room, and resumes once the peer reads:
    /// without the writability watch it would wait forever (the socket is registered for
    /// reading only).
    #[tokio::test]
    async fn a_full_socket_wakes_its_writer_once_the_peer_reads() {
        let (ours, mut theirs) = pair();
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0usize;
        loop {
            match ours.try_write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write failed: {e}"),
            }
        }
        assert!(sent > 0);
        let waiting = tokio::spawn(async move {
            tokio::time::timeout(std::time::Duration::from_secs(10), ours.writable())
                .await
                .expect("the writer was not woken once the peer read")
                .unwrap();
        });
        // Let the writer register and park, then make room.
        tokio::task::yield_now().await;
        let mut drained = vec![0u8; sent];
        let mut got = 0;
        while got < sent {
            match theirs.read(&mut drained[got..]) {
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => tokio::task::yield_now().await,
                Err(e) => panic!("read failed: {e}"),
            }
        }
        waiting.await.unwrap();
    }
}
