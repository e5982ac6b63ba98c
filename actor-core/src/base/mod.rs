//! Floor 0: what every other floor uses and that uses nothing of the runtime: errors, the
//! bounded mailbox, platform calls, hashing and lock recovery.

pub mod error;
pub(crate) mod mailbox;
pub(crate) mod platform;
pub(crate) mod secret;
pub(crate) mod trace;
pub(crate) mod wake_gate;

use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Hashes the keys of the runtime's hot lookup tables (call ids, namespaces, function names):
/// faster than the default SipHash on such short keys, and still randomly seeded (peers choose
/// some of the keys).
pub(crate) type FastHash = foldhash::fast::RandomState;

/// Locks `mutex`, recovering the data if a thread panicked while holding it.
///
/// Every lock of the runtime guards plain bookkeeping (tables, slots, lists) whose every update
/// is a single step that leaves it consistent, so a panic elsewhere cannot leave it half
/// written: the data is still right, and skipping the update instead (as `if let Ok(..)` did)
/// would silently lose it, e.g. a nursery's recorded error.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A panic's message (its `&str` or `String` payload), for the error that reports it.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".into())
}

/// Things kept track of without keeping them alive (an actor's connections, its nurseries):
/// each is listed while something else holds it, and dropped from the list once it is gone.
pub(crate) struct WeakList<T: ?Sized>(Mutex<Vec<Weak<T>>>);

impl<T: ?Sized> Default for WeakList<T> {
    fn default() -> Self {
        Self(Mutex::new(Vec::new()))
    }
}

impl<T: ?Sized> WeakList<T> {
    /// Lists `item` (and forgets the ones gone meanwhile).
    pub(crate) fn add(&self, item: Weak<T>) {
        let mut items = lock(&self.0);
        items.retain(|i| i.strong_count() > 0);
        items.push(item);
    }

    /// The listed items still alive.
    pub(crate) fn live(&self) -> Vec<Arc<T>> {
        lock(&self.0).iter().filter_map(Weak::upgrade).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::{WeakList, lock};

    #[test]
    fn a_poisoned_lock_is_recovered_with_its_data() {
        let shared = Arc::new(Mutex::new(vec![1]));
        let poisoner = shared.clone();
        let joined = std::thread::spawn(move || {
            let mut held = poisoner.lock().unwrap_or_else(|e| e.into_inner());
            held.push(2);
            panic!("poison the lock");
        })
        .join();
        assert!(joined.is_err());
        assert!(shared.is_poisoned());
        lock(&shared).push(3);
        assert_eq!(*lock(&shared), [1, 2, 3]);
    }

    #[test]
    fn a_weak_list_lists_only_what_is_alive() {
        let list = WeakList::default();
        let kept = Arc::new(1);
        let dropped = Arc::new(2);
        list.add(Arc::downgrade(&kept));
        list.add(Arc::downgrade(&dropped));
        drop(dropped);
        assert_eq!(list.live().iter().map(|i| **i).collect::<Vec<_>>(), [1]);
    }
}
