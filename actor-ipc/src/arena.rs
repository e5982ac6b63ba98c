//! Small encoded buffers (frames, payloads) carved out of one block per thread.
//!
//! A frame encoded into a fresh `BytesMut` costs two allocations (the buffer, then the shared
//! header `freeze` adds when the length is not the capacity), and a call sends and receives
//! several small frames. Carving them out of a block instead costs one allocation per block:
//! each buffer is split off the block's front and frozen, sharing the block's reference count,
//! and a block whose buffers have all been dropped is reused from its start.
//!
//! The price is that a live buffer keeps its whole block allocated, so blocks are small
//! ([`BLOCK`]) and a buffer that grew large is never carved from again: the block is left to
//! that buffer alone.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

/// The size of one block: what one long-lived small buffer can keep allocated.
const BLOCK: usize = 16 * 1024;

/// Buffers expected to be larger than this get an allocation of their own.
const LARGEST_CARVED: usize = 4 * 1024;

thread_local! {
    static BLOCK_IN_USE: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Writes one buffer with `write` and returns it frozen, carved from this thread's block when
/// `size_hint` (what the buffer is expected to hold) is small. On an error, nothing written is
/// kept.
pub(crate) fn carve<E>(
    size_hint: usize,
    write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<Bytes, E> {
    if size_hint > LARGEST_CARVED {
        return alone(size_hint, write);
    }
    BLOCK_IN_USE.with(|cell| {
        // Busy: a `write` that carves in turn (a payload encoded while a frame is written).
        let Ok(mut block) = cell.try_borrow_mut() else {
            return alone(size_hint, write);
        };
        if block.capacity() < size_hint.max(64) {
            // Reuses the block's allocation when every buffer carved from it is gone, else
            // starts a new one.
            block.reserve(BLOCK);
        }
        let written = write(&mut block);
        let carved = block.split();
        if carved.len() > LARGEST_CARVED {
            // A large buffer (maybe grown past its block into an allocation of its own):
            // what is left is not carved from, or a small long-lived buffer could keep a large
            // allocation alive.
            *block = BytesMut::new();
        }
        written.map(|()| carved.freeze())
    })
}

fn alone<E>(
    size_hint: usize,
    write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<Bytes, E> {
    let mut buf = BytesMut::with_capacity(size_hint);
    write(&mut buf)?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::BufMut;

    use super::*;

    fn fill(n: usize, byte: u8) -> Bytes {
        carve::<()>(n, |buf| {
            buf.put_bytes(byte, n);
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn carved_buffers_hold_what_was_written_and_share_a_block() {
        let a = fill(100, 1);
        let b = fill(200, 2);
        assert_eq!(&a[..], &[1; 100][..]);
        assert_eq!(&b[..], &[2; 200][..]);
        // Back to back in one allocation.
        assert_eq!(a.as_ptr().wrapping_add(100), b.as_ptr());
    }

    #[test]
    fn a_failed_write_keeps_nothing() {
        let failed = carve(10, |buf| {
            buf.put_bytes(9, 10);
            Err("no")
        });
        assert_eq!(failed, Err("no"));
        let next = fill(10, 3);
        assert_eq!(&next[..], &[3; 10][..]);
    }

    #[test]
    fn a_buffer_that_grows_large_leaves_its_block_to_itself() {
        // Expected small, written large: it grows past its block.
        let big = carve::<()>(10, |buf| {
            buf.put_bytes(4, 3 * BLOCK);
            Ok(())
        })
        .unwrap();
        assert_eq!(&big[..], &[4; 3 * BLOCK][..]);
        // Nothing is left to carve from that allocation.
        BLOCK_IN_USE.with(|block| assert_eq!(block.borrow().capacity(), 0));
        let small = fill(10, 5);
        assert_eq!(&small[..], &[5; 10][..]);
    }

    #[test]
    fn a_write_that_carves_in_turn_gets_a_buffer_of_its_own() {
        let outer = carve::<()>(10, |buf| {
            let inner = fill(5, 6);
            buf.put_slice(&inner);
            Ok(())
        })
        .unwrap();
        assert_eq!(&outer[..], &[6; 5][..]);
    }
}
