//! A header declaring a huge frame must be refused before any buffer of that size exists.
//!
//! This test binary installs an allocator that records the largest single allocation, then has
//! a real server read a header declaring 512 MiB (the limit is 1 MiB). Without the guard in the
//! frame decoder, the decoder would reserve the declared size and this test would see it.
//! It is its own binary so no other test's allocations blur the measurement.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(unsafe_code)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
};

use actor_ipc::{ChannelConfig, FrameError, RecvError};
use actor_tests::{EchoServer, Outcome, RawClient, Transport};

/// Forwards to the system allocator, remembering the largest request.
struct LargestAllocation;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only addition is a relaxed atomic update, which allocates nothing.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout the caller gave us, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through `alloc`/`realloc` above) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; `ptr` and `layout` come from this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

#[tokio::test]
async fn huge_declared_length_allocates_nothing_of_that_size() {
    const LIMIT: usize = 1024 * 1024;
    const DECLARED: u32 = 512 * 1024 * 1024;
    let config = ChannelConfig {
        max_frame_len: LIMIT,
        ..ChannelConfig::default()
    };
    for transport in [Transport::Tcp, Transport::Unix] {
        let mut server = EchoServer::start(transport, config.clone()).await;
        let mut client = RawClient::connect_handshaken(&server.addr).await;
        LARGEST.store(0, Ordering::Relaxed);
        let mut bytes = DECLARED.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 64]);
        client.write(&bytes).await;
        // End the stream too, so a decoder without the guard reports the truncated body
        // instead of waiting for 512 MiB that never come.
        client.shutdown_write().await;
        let outcome = server.next_outcome().await;
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest < LIMIT,
            "largest allocation while refusing the frame: {largest} bytes"
        );
        assert!(
            matches!(
                outcome,
                Outcome::Recv(RecvError::Frame(FrameError::TooLarge { .. }))
            ),
            "{outcome:?}"
        );
        server.assert_still_serving().await;
    }
}
