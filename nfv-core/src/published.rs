//! A value the control side replaces while workers keep running: rule
//! sets, tables built off the hot path. Workers hold a [`Snapshot`] and
//! check one atomic counter per batch; only when it moved do they take the
//! new value (an `Arc` clone, lock-free through `arc-swap`). A batch is
//! therefore decided wholly by one version, and nothing waits or drops
//! while a new version is built.
//!
//! A replaced version is freed on the publisher's thread, never on a
//! worker's: `publish` keeps it, and `reclaim` (each publish, and the
//! control task's periodic poll) frees the kept versions no snapshot holds
//! any more. The last worker to let go would otherwise free it on the data
//! path: megabytes of rule trees or session indexes, maybe an munmap.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

/// The current version of a `T`: one writer, many readers.
pub struct Published<T> {
    current: ArcSwap<T>,
    generation: AtomicU64,
    /// Replaced versions some snapshot may still hold; only the
    /// publisher's thread locks it.
    replaced: Mutex<Vec<Arc<T>>>,
}

impl<T> Published<T> {
    /// Publishes the first version.
    pub fn new(value: T) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwap::from_pointee(value),
            generation: AtomicU64::new(0),
            replaced: Mutex::new(Vec::new()),
        })
    }

    /// Replaces the value; readers pick it up at their next check. The
    /// replaced version is kept until no reader holds it (see
    /// [`Published::reclaim`]).
    pub fn publish(&self, value: T) {
        let old = self.current.swap(Arc::new(value));
        self.generation.fetch_add(1, Ordering::Release);
        self.replaced.lock().expect("publisher lock").push(old);
        self.reclaim();
    }

    /// Frees the replaced versions no snapshot holds any more; returns how
    /// many are still held. Call from the publisher's thread: a control
    /// task's `poll` does, so a version freed late is freed there.
    pub fn reclaim(&self) -> usize {
        let mut replaced = self.replaced.lock().expect("publisher lock");
        // No reader can take a new reference to a replaced version (the
        // current one is another), so a count of one is final.
        replaced.retain(|v| Arc::strong_count(v) > 1);
        replaced.len()
    }

    /// The current version.
    pub fn load(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// How many times the value was replaced.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

impl<T> std::fmt::Debug for Published<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published").field("generation", &self.generation()).finish_non_exhaustive()
    }
}

/// A worker's view of a [`Published`] value.
pub struct Snapshot<T> {
    shared: Arc<Published<T>>,
    current: Arc<T>,
    generation: u64,
}

impl<T> Snapshot<T> {
    /// The current version, followed from now on.
    pub fn new(shared: Arc<Published<T>>) -> Self {
        // Generation first: a publish in between is then seen as new at
        // the next refresh rather than missed.
        let generation = shared.generation();
        Self { current: shared.load(), shared, generation }
    }

    /// Takes the newest version if there is one; true when it changed.
    /// One atomic load when nothing changed.
    #[inline]
    pub fn refresh(&mut self) -> bool {
        let g = self.shared.generation();
        if g == self.generation {
            return false;
        }
        self.generation = g;
        self.current = self.shared.load();
        true
    }

    /// True when a newer version than the one in use was published (one
    /// atomic load): a reader that must compare the two keeps
    /// [`Snapshot::arc`] before its [`Snapshot::refresh`].
    #[inline]
    pub fn stale(&self) -> bool {
        self.shared.generation() != self.generation
    }

    /// The version in use, as an `Arc` (to keep it while replacing it).
    pub fn arc(&self) -> &Arc<T> {
        &self.current
    }

    /// Generation of the version in use.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl<T> Deref for Snapshot<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_sees_a_new_version_once_and_keeps_it_until_the_next() {
        let p = Published::new(1u32);
        let mut s = Snapshot::new(p.clone());
        assert!(!s.refresh());
        p.publish(2);
        assert_eq!(*s, 1, "not before a refresh");
        assert!(s.refresh());
        assert_eq!((*s, s.generation()), (2, 1));
        assert!(!s.refresh());
        p.publish(3);
        p.publish(4);
        assert!(s.refresh());
        assert_eq!(*s, 4, "the newest, not each one");
    }

    #[test]
    fn a_replaced_version_is_freed_by_the_publisher_once_no_snapshot_holds_it() {
        let p = Published::new(vec![1u8; 16]);
        let mut s = Snapshot::new(p.clone());
        p.publish(vec![2; 16]);
        assert_eq!(p.reclaim(), 1, "the snapshot still holds version 0");
        let held = Arc::downgrade(s.arc());
        assert!(s.refresh());
        assert!(held.upgrade().is_some(), "the worker's refresh did not free it");
        assert_eq!(p.reclaim(), 0);
        assert!(held.upgrade().is_none(), "freed by the publisher");
    }

    #[test]
    fn readers_on_other_threads_only_ever_see_whole_versions() {
        let p = Published::new(vec![0u64; 64]);
        let reader = {
            // Taken before any publish: however late the thread starts, it
            // sees at least one new version.
            let mut s = Snapshot::new(p.clone());
            std::thread::spawn(move || {
                let mut seen = 0;
                while s[0] < 500 {
                    if s.refresh() {
                        assert!(s.iter().all(|&v| v == s[0]), "torn version");
                        seen += 1;
                    }
                    std::hint::spin_loop();
                }
                seen
            })
        };
        for v in 1..=500u64 {
            p.publish(vec![v; 64]);
        }
        assert!(reader.join().unwrap() >= 1);
    }
}
