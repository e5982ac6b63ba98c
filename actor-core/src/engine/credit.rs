//! The credit rule of the flow-control extension (`docs/protocol-notes.md`): how much a stream's
//! consumer lets its producer have in flight, when it grants more, and how much of a peer's
//! grant a producer accepts.

/// The most stream items a consumer lets its producer have in flight (credit granted and not
/// yet used), however small the items; credit a peer grants beyond it is ignored.
pub const MAX_STREAM_CREDIT: usize = 16 * 1024;

/// The bytes of stream items a consumer lets its producer have in flight, at the items'
/// average size so far: small items get up to [`MAX_STREAM_CREDIT`] in flight (a deep
/// pipeline), large ones only a few (bounded memory).
pub(crate) const STREAM_BYTES_IN_FLIGHT: usize = 8 * 1024 * 1024;

/// What a queued item costs beyond its payload (its message).
pub(crate) const ITEM_OVERHEAD: usize = 64;

/// The smallest window either side agrees to.
pub(crate) const MIN_WINDOW: usize = 2;

/// A grant the consumer sends: `credit` more items, after raising its buffer to hold
/// `in_flight` items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grant {
    /// Items added to what the producer may send.
    pub(crate) credit: usize,
    /// Items the producer may now have in flight in all: the consumer's buffer must hold them.
    pub(crate) in_flight: usize,
}

/// The consumer's side of one stream: counts what it consumed and decides on grants.
///
/// What the producer may have in flight starts at the agreed window and adapts to the items:
/// as many as [`STREAM_BYTES_IN_FLIGHT`] holds at their average size (payload plus
/// [`ITEM_OVERHEAD`]), between [`MIN_WINDOW`] and [`MAX_STREAM_CREDIT`]. A grant goes out once
/// half of that was consumed, topping the producer up to the target: tiny items get a deep
/// pipeline (a producer waiting for credit leaves both sides idle), large ones bounded memory.
#[derive(Debug, Default)]
pub(crate) struct CreditWindow {
    /// Items the producer may send in all: the window, plus every credit granted.
    allowed: usize,
    /// Items consumed, and their size in memory (for the average).
    consumed: usize,
    consumed_bytes: usize,
}

impl CreditWindow {
    /// Records one item of `size` payload bytes consumed on a stream whose agreed window is
    /// `window`; returns the grant to send, if one is due now.
    pub(crate) fn consumed(&mut self, size: usize, window: usize) -> Option<Grant> {
        if self.allowed == 0 {
            self.allowed = window;
        }
        self.consumed += 1;
        self.consumed_bytes = self.consumed_bytes.saturating_add(size + ITEM_OVERHEAD);
        let average = (self.consumed_bytes / self.consumed).max(1);
        let target = (STREAM_BYTES_IN_FLIGHT / average).clamp(MIN_WINDOW, MAX_STREAM_CREDIT);
        let in_flight = self.allowed.saturating_sub(self.consumed);
        if in_flight * 2 > target {
            return None;
        }
        let credit = target - in_flight;
        self.allowed += credit;
        Some(Grant {
            credit,
            in_flight: target,
        })
    }
}

/// How much of a peer's grant of `credit` a producer accepts when `available` credit is unused
/// already: never more than [`MAX_STREAM_CREDIT`] outstanding, whatever a peer claims.
pub(crate) fn accepted_credit(available: usize, credit: u64) -> usize {
    let room = MAX_STREAM_CREDIT.saturating_sub(available);
    usize::try_from(credit).unwrap_or(usize::MAX).min(room)
}

/// The window two sides agree on: what the asker asked for, at least [`MIN_WINDOW`], at most
/// what this side allows.
pub(crate) fn agreed_window(asked: u64, ours: usize) -> usize {
    usize::try_from(asked)
        .unwrap_or(usize::MAX)
        .clamp(MIN_WINDOW, ours.max(MIN_WINDOW))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_items_are_topped_up_to_the_most_credit_then_granted_at_half() {
        let mut window = CreditWindow::default();
        // Tiny items: the target is the most credit, above the first window of 1024, so the
        // first item consumed already tops the producer up.
        let first = window.consumed(8, 1024).expect("a grant at once");
        assert_eq!(first.in_flight, MAX_STREAM_CREDIT);
        assert_eq!(first.credit, MAX_STREAM_CREDIT - 1023);
        // Then nothing until half of what is in flight was consumed.
        let mut consumed = 1;
        while window.consumed(8, 1024).is_none() {
            consumed += 1;
            assert!(consumed < MAX_STREAM_CREDIT, "no second grant");
        }
        consumed += 1;
        assert_eq!(consumed, 1 + MAX_STREAM_CREDIT / 2);
    }

    #[test]
    fn large_items_get_only_a_few_in_flight() {
        let mut window = CreditWindow::default();
        let mib = 1024 * 1024;
        // With 1 MiB items, 8 MiB holds 7 of them (each costs a little more than 1 MiB).
        let mut grants = Vec::new();
        for _ in 0..64 {
            grants.extend(window.consumed(mib, 16));
        }
        assert!(!grants.is_empty());
        for grant in &grants {
            assert_eq!(grant.in_flight, 7);
        }
        // Outstanding never exceeds the target once adapted.
        let total: usize = grants.iter().map(|g| g.credit).sum();
        assert!(16 + total - 64 <= 7, "{} outstanding", 16 + total - 64);
    }

    #[test]
    fn a_grant_tops_up_to_the_target_and_never_goes_negative() {
        let mut window = CreditWindow::default();
        // A producer that was allowed 2 and sent both: the consumer grants after the first.
        let grant = window.consumed(0, 2).expect("half of 2 consumed");
        assert_eq!(grant.credit + 1, grant.in_flight);
        assert!(grant.in_flight >= MIN_WINDOW);
    }

    #[test]
    fn a_peer_cannot_grant_beyond_the_most_credit() {
        assert_eq!(accepted_credit(0, 10), 10);
        assert_eq!(accepted_credit(0, u64::MAX), MAX_STREAM_CREDIT);
        assert_eq!(accepted_credit(MAX_STREAM_CREDIT - 5, 100), 5);
        assert_eq!(accepted_credit(MAX_STREAM_CREDIT, 1), 0);
        assert_eq!(accepted_credit(usize::MAX, 1), 0);
    }

    #[test]
    fn the_agreed_window_is_the_smaller_one_and_at_least_two() {
        assert_eq!(agreed_window(64, 1024), 64);
        assert_eq!(agreed_window(4096, 1024), 1024);
        assert_eq!(agreed_window(0, 1024), MIN_WINDOW);
        assert_eq!(agreed_window(u64::MAX, 1024), 1024);
        assert_eq!(agreed_window(64, 1), MIN_WINDOW);
    }
}
