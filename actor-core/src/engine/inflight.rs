//! The table of calls in flight on one connection, keyed by call id, with explicit verbs:
//! [`InFlight::insert`] refuses a duplicate cid (it never overwrites a running call),
//! [`InFlight::complete`] removes a call that ended, [`InFlight::cancel`] asks one to stop, and
//! [`InFlight::close`] ends them all when the connection closes; after that nothing new enters.
//!
//! One table holds the calls the peer started here (tasks), another the calls this side made
//! (routes to their inboxes). What an entry does when cancelled or closed is its own business
//! ([`Entry`]); the table keeps the bookkeeping exact under concurrent use.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use actor_ipc::Cid;
use dashmap::{DashMap, mapref::one::Ref};

use crate::base::FastHash;

/// What the table needs of an entry.
pub(crate) trait Entry {
    /// Asks the call to stop (a `_cancel_task`, or a consumer that fell behind).
    fn cancel(&self);
    /// The connection closed: release whoever waits on the call.
    fn close(&self);
}

/// Why an insert was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InsertError {
    /// A call with this id is already in flight: the new one is refused, the running one kept.
    #[error("call id {0:?} is already in flight")]
    Duplicate(String),
    /// The connection closed: no call can start on it any more.
    #[error("the connection is closed")]
    Closed,
}

/// The calls in flight on one connection.
pub(crate) struct InFlight<E> {
    calls: DashMap<Cid, E, FastHash>,
    /// How many calls are in the table: `contains` on an empty table (the common case for a
    /// connection whose calls are all served inline) then takes no lock.
    len: AtomicUsize,
    closed: AtomicBool,
}

/// How many shards each table has: a connection's calls are started and finished by at most
/// its runtime's threads at once, and sixteen locks keep them apart on large machines too.
/// Fixed rather than dashmap's default (four per CPU), which reads the CPU count (cgroup
/// files: about twenty syscalls, in every actor's start) and gives every connection of a
/// 64-CPU machine 512 locked maps.
const SHARDS: usize = 16;

impl<E: Entry> Default for InFlight<E> {
    fn default() -> Self {
        Self {
            calls: DashMap::with_hasher_and_shard_amount(FastHash::default(), SHARDS),
            len: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }
}

impl<E: Entry> InFlight<E> {
    /// Adds call `cid`; refused if that id is in flight or the table was closed.
    pub(crate) fn insert(&self, cid: &str, entry: E) -> Result<(), InsertError> {
        use dashmap::Entry as Slot;
        if self.closed.load(Ordering::Acquire) {
            return Err(InsertError::Closed);
        }
        match self.calls.entry(Cid::from(cid)) {
            Slot::Occupied(_) => return Err(InsertError::Duplicate(cid.to_owned())),
            Slot::Vacant(slot) => {
                slot.insert(entry);
                self.len.fetch_add(1, Ordering::AcqRel);
            }
        }
        // A close that ran meanwhile drained the table before this entry arrived: take it out
        // again and close it, so nothing is left behind a closed connection.
        if self.closed.load(Ordering::Acquire) {
            if let Some(entry) = self.complete(cid) {
                entry.close();
            }
            return Err(InsertError::Closed);
        }
        Ok(())
    }

    /// The entry of call `cid`, borrowed (hold it briefly: it locks a shard of the table).
    pub(crate) fn get(&self, cid: &str) -> Option<Ref<'_, Cid, E>> {
        self.calls.get(cid)
    }

    /// Whether call `cid` is in flight.
    pub(crate) fn contains(&self, cid: &str) -> bool {
        self.len.load(Ordering::Acquire) > 0 && self.calls.contains_key(cid)
    }

    /// Changes the entry of call `cid` in place, if it is in flight.
    pub(crate) fn update(&self, cid: &str, change: impl FnOnce(&mut E)) {
        if let Some(mut entry) = self.calls.get_mut(cid) {
            change(&mut entry);
        }
    }

    /// Call `cid` ended: removes and returns its entry.
    pub(crate) fn complete(&self, cid: &str) -> Option<E> {
        let (_, entry) = self.calls.remove(cid)?;
        self.len.fetch_sub(1, Ordering::AcqRel);
        Some(entry)
    }

    /// Asks call `cid` to stop, leaving it in the table until it completes; false if no such
    /// call is in flight.
    pub(crate) fn cancel(&self, cid: &str) -> bool {
        match self.calls.get(cid) {
            Some(entry) => {
                entry.cancel();
                true
            }
            None => false,
        }
    }

    /// The connection closed: refuses every later insert, closes and removes every entry.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let cids: Vec<Cid> = self.calls.iter().map(|e| e.key().clone()).collect();
        for cid in cids {
            if let Some(entry) = self.complete(&cid) {
                entry.close();
            }
        }
    }

    /// `view` of every call in the table now, with its id.
    pub(crate) fn snapshot<T>(&self, mut view: impl FnMut(&str, &E) -> T) -> Vec<T> {
        self.calls
            .iter()
            .map(|call| view(call.key(), call.value()))
            .collect()
    }

    /// Whether [`InFlight::close`] ran.
    #[cfg(test)]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// How many calls are in flight.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call is in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::{Entry, InFlight, InsertError};

    /// Counts what the table did to it.
    #[derive(Default)]
    struct Probe {
        id: u32,
        cancelled: Arc<AtomicUsize>,
        closed: Arc<AtomicUsize>,
    }

    impl Entry for Probe {
        fn cancel(&self) {
            self.cancelled.fetch_add(1, Ordering::SeqCst);
        }
        fn close(&self) {
            self.closed.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn probe(id: u32) -> Probe {
        Probe {
            id,
            ..Probe::default()
        }
    }

    #[test]
    fn contains_follows_inserts_completions_and_the_close() {
        let table = InFlight::default();
        assert!(!table.contains("a"));
        assert!(table.insert("a", probe(1)).is_ok());
        assert!(table.insert("b", probe(2)).is_ok());
        assert!(table.contains("a") && table.contains("b") && !table.contains("c"));
        assert!(table.complete("a").is_some());
        assert!(table.complete("a").is_none());
        assert!(!table.contains("a") && table.contains("b"));
        table.close();
        assert!(!table.contains("b"));
        assert_eq!(table.len.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_duplicate_cid_is_refused_and_the_running_call_kept() {
        let table = InFlight::default();
        table.insert("c1", probe(1)).unwrap();
        assert_eq!(
            table.insert("c1", probe(2)),
            Err(InsertError::Duplicate("c1".into()))
        );
        assert_eq!(table.get("c1").map(|e| e.id), Some(1));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn complete_removes_and_frees_the_cid() {
        let table = InFlight::default();
        table.insert("c1", probe(1)).unwrap();
        assert_eq!(table.complete("c1").map(|e| e.id), Some(1));
        assert!(!table.contains("c1"));
        assert!(table.complete("c1").is_none());
        table.insert("c1", probe(2)).unwrap();
        assert_eq!(table.get("c1").map(|e| e.id), Some(2));
    }

    #[test]
    fn cancel_reaches_only_its_call_and_keeps_it_until_complete() {
        let table = InFlight::default();
        let one = probe(1);
        let two = probe(2);
        let (c1, c2) = (one.cancelled.clone(), two.cancelled.clone());
        table.insert("c1", one).unwrap();
        table.insert("c2", two).unwrap();
        assert!(table.cancel("c1"));
        assert!(!table.cancel("c9"));
        assert_eq!(c1.load(Ordering::SeqCst), 1);
        assert_eq!(c2.load(Ordering::SeqCst), 0);
        assert!(table.contains("c1"), "cancelled calls stay until they end");
    }

    #[test]
    fn close_closes_every_call_and_refuses_new_ones() {
        let table = InFlight::default();
        let closed = Arc::new(AtomicUsize::new(0));
        for n in 0..5 {
            let mut entry = probe(n);
            entry.closed = closed.clone();
            table.insert(&format!("c{n}"), entry).unwrap();
        }
        table.close();
        assert!(table.is_closed());
        assert_eq!(closed.load(Ordering::SeqCst), 5);
        assert_eq!(table.len(), 0);
        assert_eq!(table.insert("c9", probe(9)), Err(InsertError::Closed));
    }

    #[test]
    fn update_changes_an_entry_in_place() {
        let table = InFlight::default();
        table.insert("c1", probe(1)).unwrap();
        table.update("c1", |e| e.id = 7);
        table.update("c9", |e| e.id = 8);
        assert_eq!(table.get("c1").map(|e| e.id), Some(7));
    }
}
