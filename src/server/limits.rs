//! Connection limits: at most `web.max_connections` connections are served
//! at once, and idle ones cannot starve a real scrape.
//!
//! A connection is *busy* from the moment its request reaches the handler
//! until the response body has been handed to the socket; otherwise it is
//! idle: still in the TLS handshake, still sending its request head (a
//! slowloris), or a keep-alive connection between requests. When a new
//! connection arrives and every slot is taken, the connection that has been
//! idle the longest is asked to close (a keep-alive one closes at once, one
//! that has sent nothing closes after `EVICT_GRACE`) and the new one is
//! served. Only when every slot is busy with a real request does a new
//! connection wait — up to `ADMIT_WAIT` — and is then closed unanswered.
//!
//! Memory stays bounded: at most `2 × max_connections` connections exist
//! (the served ones plus those being evicted), each with a bounded read
//! buffer (`MAX_BUF_SIZE`), and the accept loop handles one waiting
//! connection at a time, leaving the rest in the kernel's backlog.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long an evicted connection may take to finish a response already
/// handed to it before it is dropped.
pub const EVICT_GRACE: Duration = Duration::from_millis(250);
/// How long a new connection waits for a slot when every slot is busy.
pub const ADMIT_WAIT: Duration = Duration::from_secs(1);
/// hyper's read buffer limit per connection: a request head larger than
/// this gets 431 (hyper's minimum is 8 KiB).
pub const MAX_BUF_SIZE: usize = 16 * 1024;
/// At most this many header fields in a request.
pub const MAX_HEADERS: usize = 64;

/// The connections being served.
pub struct Connections {
    inner: Mutex<Inner>,
    freed: Notify,
    epoch: Instant,
}

struct Inner {
    next_id: u64,
    open: BTreeMap<u64, Arc<ConnState>>,
}

/// One connection's state, shared by its task, its requests and the tracker.
pub struct ConnState {
    busy: AtomicUsize,
    /// Milliseconds since the tracker's epoch: when the connection was
    /// opened, or its last request started or finished.
    last_active_ms: AtomicU64,
    /// When the current busy spell began (ms since epoch), 0 when idle.
    busy_since_ms: AtomicU64,
    /// Asked to close to make room.
    evicted: AtomicBool,
    close: Notify,
    epoch: Instant,
}

impl ConnState {
    fn now_ms(&self) -> u64 {
        // +1 so that 0 can mean "not busy".
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Marks a request as started; the guard marks it finished on drop.
    pub fn begin(self: &Arc<Self>) -> BusyGuard {
        let now = self.now_ms();
        if self.busy.fetch_add(1, Ordering::AcqRel) == 0 {
            self.busy_since_ms.store(now, Ordering::Release);
        }
        self.last_active_ms.store(now, Ordering::Release);
        BusyGuard(self.clone())
    }

    /// Resolves when the tracker asks this connection to close.
    pub async fn evicted(&self) {
        self.close.notified().await
    }

    /// How long the current request has been running, if one is.
    pub fn busy_for(&self) -> Option<Duration> {
        let since = self.busy_since_ms.load(Ordering::Acquire);
        (since != 0).then(|| Duration::from_millis(self.now_ms().saturating_sub(since)))
    }
}

/// Held from the start of a request until its response body is dropped.
pub struct BusyGuard(Arc<ConnState>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let s = &self.0;
        s.last_active_ms.store(s.now_ms(), Ordering::Release);
        if s.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            s.busy_since_ms.store(0, Ordering::Release);
        }
    }
}

/// A response body that keeps its connection busy until hyper drops it
/// (written, or the connection gone). Forwards the size so responses keep
/// their Content-Length.
pub struct TrackedBody {
    inner: http_body_util::Full<bytes::Bytes>,
    _busy: BusyGuard,
}

impl TrackedBody {
    pub fn new(inner: http_body_util::Full<bytes::Bytes>, busy: BusyGuard) -> Self {
        TrackedBody { inner, _busy: busy }
    }
}

impl hyper::body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's place; frees it on drop.
pub struct Slot {
    tracker: Arc<Connections>,
    id: u64,
    pub state: Arc<ConnState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.tracker.lock();
        inner.open.remove(&self.id);
        drop(inner);
        self.tracker.freed.notify_one();
    }
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            inner: Mutex::new(Inner {
                next_id: 0,
                open: BTreeMap::new(),
            }),
            freed: Notify::new(),
            epoch: Instant::now(),
        }
    }
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many connections are open (served or being evicted).
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// A slot for a new connection, evicting the longest-idle connection
    /// when all `max` are taken; `None` when every slot stayed busy for
    /// `ADMIT_WAIT`.
    pub async fn admit(self: &Arc<Self>, max: usize) -> Option<Slot> {
        let max = max.max(1);
        let deadline = tokio::time::Instant::now() + ADMIT_WAIT;
        loop {
            if let Some(slot) = self.try_admit(max) {
                return Some(slot);
            }
            if tokio::time::timeout_at(deadline, self.freed.notified())
                .await
                .is_err()
            {
                // One last look: a slot may have freed as the time ran out.
                return self.try_admit(max);
            }
        }
    }

    fn try_admit(self: &Arc<Self>, max: usize) -> Option<Slot> {
        let mut inner = self.lock();
        // The hard cap counts connections still on their way out too.
        if inner.open.len() >= 2 * max {
            return None;
        }
        let leaving = inner
            .open
            .values()
            .filter(|c| c.evicted.load(Ordering::Acquire))
            .count();
        let mut served = inner.open.len() - leaving;
        if served >= max {
            let victim = inner
                .open
                .values()
                .filter(|c| {
                    !c.evicted.load(Ordering::Acquire) && c.busy.load(Ordering::Acquire) == 0
                })
                .min_by_key(|c| c.last_active_ms.load(Ordering::Acquire))
                .cloned();
            if let Some(victim) = victim {
                victim.evicted.store(true, Ordering::Release);
                victim.close.notify_one();
                served -= 1;
            }
        }
        if served >= max {
            return None;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let state = Arc::new(ConnState {
            busy: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(self.epoch.elapsed().as_millis() as u64 + 1),
            busy_since_ms: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            close: Notify::new(),
            epoch: self.epoch,
        });
        inner.open.insert(id, state.clone());
        Some(Slot {
            tracker: self.clone(),
            id,
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn below_the_limit_admits_and_frees_on_drop() {
        let c = Arc::new(Connections::default());
        let a = c.admit(2).await.unwrap();
        let b = c.admit(2).await.unwrap();
        assert_eq!(c.open(), 2);
        drop(a);
        drop(b);
        assert_eq!(c.open(), 0);
    }

    #[tokio::test]
    async fn at_the_limit_the_longest_idle_is_evicted() {
        let c = Arc::new(Connections::default());
        let oldest = c.admit(2).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let newer = c.admit(2).await.unwrap();
        let third = c.admit(2).await.unwrap();
        assert!(oldest.state.evicted.load(Ordering::Acquire));
        assert!(!newer.state.evicted.load(Ordering::Acquire));
        // The evicted one was told.
        tokio::time::timeout(Duration::from_secs(1), oldest.state.evicted())
            .await
            .expect("eviction notice");
        drop((oldest, newer, third));
    }

    #[tokio::test]
    async fn busy_connections_are_never_evicted() {
        let c = Arc::new(Connections::default());
        let a = c.admit(1).await.unwrap();
        let guard = a.state.begin();
        assert!(a.state.busy_for().is_some());
        // Every slot busy: the newcomer waits ADMIT_WAIT, then gets nothing.
        assert!(c.admit(1).await.is_none());
        assert!(!a.state.evicted.load(Ordering::Acquire));
        drop(guard);
        assert!(a.state.busy_for().is_none());
        // Idle again: now it can be evicted for a newcomer.
        let b = c.admit(1).await.unwrap();
        assert!(a.state.evicted.load(Ordering::Acquire));
        drop((a, b));
    }

    #[tokio::test]
    async fn a_slot_freed_while_waiting_is_taken() {
        let c = Arc::new(Connections::default());
        let a = c.admit(1).await.unwrap();
        let guard = a.state.begin();
        let c2 = c.clone();
        let waiter = tokio::spawn(async move { c2.admit(1).await.is_some() });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(guard);
        drop(a);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn evicted_connections_count_toward_a_hard_cap() {
        let c = Arc::new(Connections::default());
        // Four idle connections at max 2: two served, two leaving; the
        // leaving ones never go away here, so the fifth finds the cap.
        let mut slots = Vec::new();
        for _ in 0..4 {
            slots.push(c.admit(2).await.unwrap());
        }
        assert_eq!(c.open(), 4);
        let leaving = slots
            .iter()
            .filter(|s| s.state.evicted.load(Ordering::Acquire))
            .count();
        assert_eq!(leaving, 2);
        assert!(c.try_admit(2).is_none());
        // Refusing evicted nobody more.
        let leaving = slots
            .iter()
            .filter(|s| s.state.evicted.load(Ordering::Acquire))
            .count();
        assert_eq!(leaving, 2);
    }
}
