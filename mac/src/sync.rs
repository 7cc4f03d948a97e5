//! Spin locks of the data path that hold off preemption while held.
//!
//! Lanes, workers, stack and bandwidth threads of different priorities
//! share the locks of SRSes, shapers, rings and stack instances. With plain
//! spin locks a high-priority thread could spin forever on a lock whose
//! holder, a lower-priority thread preempted on the same CPU, never runs
//! again. These wrappers call the kernel's `preempt_disable` before taking
//! the lock and `preempt_enable` after releasing it (Linux's `spin_lock`),
//! so a holder is never preempted and link `priority` can really change the
//! priority of lane threads. On the host no hooks are installed and the
//! wrappers are plain spin locks.

use core::fmt;
use core::ops::{Deref, DerefMut};

use spin::Once;

/// The kernel's preemption switches.
#[derive(Clone, Copy)]
pub struct PreemptHooks {
    /// Holds off preemption on this CPU (nests).
    pub disable: fn(),
    /// Undoes one `disable`; the outermost one lets a pending preemption
    /// happen.
    pub enable: fn(),
}

static HOOKS: Once<PreemptHooks> = Once::new();

/// Installs the kernel's hooks (once, before any lane starts).
pub fn set_preempt_hooks(h: PreemptHooks) {
    HOOKS.call_once(|| h);
}

/// Preemption held off until dropped.
pub struct PreemptGuard(());

impl PreemptGuard {
    /// Holds off preemption on this CPU.
    #[inline]
    pub fn new() -> PreemptGuard {
        if let Some(h) = HOOKS.get() {
            (h.disable)();
        }
        PreemptGuard(())
    }
}

impl Default for PreemptGuard {
    fn default() -> Self {
        PreemptGuard::new()
    }
}

impl Drop for PreemptGuard {
    #[inline]
    fn drop(&mut self) {
        if let Some(h) = HOOKS.get() {
            (h.enable)();
        }
    }
}

/// A spin mutex that holds off preemption while locked.
#[derive(Default)]
pub struct Mutex<T: ?Sized> {
    inner: spin::Mutex<T>,
}

/// The guard of a [`Mutex`]. Fields drop in order: the lock is released
/// before preemption is allowed again.
pub struct MutexGuard<'a, T: ?Sized> {
    guard: spin::MutexGuard<'a, T>,
    _preempt: PreemptGuard,
}

impl<T> Mutex<T> {
    /// A new unlocked mutex.
    pub const fn new(v: T) -> Mutex<T> {
        Mutex { inner: spin::Mutex::new(v) }
    }

    /// The value, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Spins until the lock is taken.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        let p = PreemptGuard::new();
        MutexGuard { guard: self.inner.lock(), _preempt: p }
    }

    /// Takes the lock if it is free.
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let p = PreemptGuard::new();
        self.inner.try_lock().map(|guard| MutexGuard { guard, _preempt: p })
    }

    /// The value through an exclusive reference (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

/// A spin reader-writer lock that holds off preemption while held.
#[derive(Default)]
pub struct RwLock<T: ?Sized> {
    inner: spin::RwLock<T>,
}

/// A read guard of a [`RwLock`].
pub struct RwLockReadGuard<'a, T: ?Sized> {
    guard: spin::RwLockReadGuard<'a, T>,
    _preempt: PreemptGuard,
}

/// A write guard of a [`RwLock`].
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    guard: spin::RwLockWriteGuard<'a, T>,
    _preempt: PreemptGuard,
}

impl<T> RwLock<T> {
    /// A new unlocked lock.
    pub const fn new(v: T) -> RwLock<T> {
        RwLock { inner: spin::RwLock::new(v) }
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access.
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        let p = PreemptGuard::new();
        RwLockReadGuard { guard: self.inner.read(), _preempt: p }
    }

    /// Exclusive access.
    #[inline]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        let p = PreemptGuard::new();
        RwLockWriteGuard { guard: self.inner.write(), _preempt: p }
    }

    /// The value through an exclusive reference (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_behave_as_spin_locks_without_hooks() {
        let m = Mutex::new(1);
        *m.lock() += 1;
        assert!(m.try_lock().is_some());
        let g = m.lock();
        assert!(m.try_lock().is_none());
        drop(g);
        assert_eq!(m.into_inner(), 2);
        let l = RwLock::new(5);
        {
            let a = l.read();
            let b = l.read();
            assert_eq!(*a + *b, 10);
        }
        *l.write() = 7;
        assert_eq!(*l.read(), 7);
    }

    std::thread_local! {
        static DEPTH: core::cell::Cell<i32> = const { core::cell::Cell::new(0) };
    }

    #[test]
    fn a_held_lock_holds_off_preemption_and_releasing_it_restores_it() {
        set_preempt_hooks(PreemptHooks {
            disable: || DEPTH.with(|d| d.set(d.get() + 1)),
            enable: || DEPTH.with(|d| d.set(d.get() - 1)),
        });
        let depth = || DEPTH.with(|d| d.get());
        let m = Mutex::new(0);
        let l = RwLock::new(0);
        {
            let _a = m.lock();
            assert_eq!(depth(), 1);
            let _b = l.read();
            assert_eq!(depth(), 2);
            // A failed try_lock leaves the count as it was.
            assert!(m.try_lock().is_none());
            assert_eq!(depth(), 2);
        }
        assert_eq!(depth(), 0);
        *l.write() += 1;
        assert_eq!(depth(), 0);
    }
}
