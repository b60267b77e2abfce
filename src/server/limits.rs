//! Connection limits: at most `web.max_connections` connections are served
//! at once; past that, new connections wait their turn and overload slows
//! vitals down instead of stopping it.
//!
//! The policy, and why (the README's "Overload" section says the same):
//!
//! - **Accept backpressure, fair between client addresses.** A connection
//!   past the limit waits, unread, until a slot frees; no TLS or HTTP work
//!   is done for it until then. Freed slots go round-robin to the client
//!   addresses that have connections waiting, first come first served
//!   within one address: a flood from some hosts delays a scraper on
//!   another host by one free slot, not by the whole flood. At most
//!   `WAITING_PER_SLOT × max_connections` wait in the process (an fd and a
//!   small task each); past that the accept loop stops accepting and the
//!   kernel's listen backlog holds the rest.
//! - **Nothing making progress is ever cut.** A connection with a request
//!   in flight (being answered or written) is never evicted, and neither is
//!   one whose peer has sent a byte within `EVICT_MIN_IDLE`, whatever its
//!   phase: a TLS handshake or a request head that is moving goes on. Each
//!   phase still has its own timeout (`header_read_timeout`,
//!   `request_timeout`).
//! - **Quiet means quiet.** While connections wait, a served connection
//!   whose peer has sent nothing for `EVICT_MIN_IDLE` and that has no
//!   request in flight is closed to make room, whatever its phase:
//!   half-open (never sent a byte), stalled in a TLS record or in a request
//!   head, or keep-alive between requests. (Protecting every started
//!   handshake let 256 peers that send two bytes of a TLS record and then
//!   nothing hold every slot until `header_read_timeout`.) The one quiet
//!   peer kept is one that owes the reply to vitals' own handshake flight
//!   before its first request: it sent a whole hello, vitals answered, and
//!   a client on a loaded machine can take seconds to reply.
//! - **Busy connections take turns.** While connections wait, one that has
//!   held its slot for `FAIR_SHARE` and made `TURN_REQUESTS` requests gets
//!   `Connection: close` on its next response: the client reads a complete
//!   response, then reconnects and queues like everyone else. So a flood of
//!   keep-alive clients cannot keep a scraper out, and the cost is one
//!   reconnect (one TLS handshake) per turn, not one per request.
//!
//! Memory stays bounded: at most `max_connections` connections are served
//! (each with a bounded read buffer, `MAX_BUF_SIZE`), and a waiting
//! connection is a socket and a small task.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};

/// While connections wait, a served connection that received nothing for
/// this long, with no request in flight, is closed to make room. A client
/// whose next request crosses the close sees the connection reset without
/// an answer (HTTP's keep-alive race, which Go and curl answer by retrying
/// the request): this is long enough that a busy client on a loaded machine
/// is not taken for an idle one, and TCP retransmits (200 ms, then 400 ms)
/// of a request dropped on the way in arrive before it.
pub const EVICT_MIN_IDLE: Duration = Duration::from_secs(2);
/// While connections wait, a connection that has held its slot this long,
/// and made `TURN_REQUESTS` requests, is closed after its current response.
pub const FAIR_SHARE: Duration = Duration::from_millis(250);
/// Requests a connection makes before its turn can end, so that a reconnect
/// (a TLS handshake) is spread over several requests even when the
/// machine is slow.
pub const TURN_REQUESTS: u64 = 4;
/// How often the waiting queue is looked at, for the two rules above.
pub const REBALANCE_PERIOD: Duration = Duration::from_millis(50);
/// Connections waiting in the process per slot; past that they wait in the
/// kernel's listen backlog.
pub const WAITING_PER_SLOT: usize = 32;
/// hyper's read buffer limit per connection: a request head larger than
/// this gets 431 (hyper's minimum is 8 KiB).
pub const MAX_BUF_SIZE: usize = 16 * 1024;
/// At most this many header fields in a request.
pub const MAX_HEADERS: usize = 64;
/// File descriptors kept free of connections (log, config files, sources).
const FD_RESERVE: u64 = 128;

/// The connections being served and those waiting for a slot.
pub struct Connections {
    inner: Mutex<Inner>,
    waiting: AtomicUsize,
    /// Signalled when a waiting connection got its slot or gave up.
    room: Notify,
    epoch: Instant,
}

struct Inner {
    next_id: u64,
    open: BTreeMap<u64, Arc<ConnState>>,
    /// The current `max_connections`.
    max: usize,
    /// Slots taken: `open` plus those handed to a waiter not yet running.
    /// Above `max` after a lowering reload until enough connections close.
    taken: usize,
    /// Waiting connections by client address, oldest first.
    queues: BTreeMap<IpAddr, VecDeque<oneshot::Sender<()>>>,
    /// The address the last freed slot went to.
    last_served: Option<IpAddr>,
}

impl Inner {
    /// Hands free slots to waiting connections: round-robin over the
    /// addresses, oldest first within one.
    fn hand_over(&mut self) {
        while self.taken < self.max {
            let next = self
                .last_served
                .and_then(|ip| {
                    self.queues
                        .range((Bound::Excluded(ip), Bound::Unbounded))
                        .next()
                })
                .or_else(|| self.queues.iter().next())
                .map(|(ip, _)| *ip);
            let Some(ip) = next else {
                return;
            };
            let queue = self.queues.get_mut(&ip);
            let waiter = queue.and_then(VecDeque::pop_front);
            if self.queues.get(&ip).is_some_and(VecDeque::is_empty) {
                self.queues.remove(&ip);
            }
            self.last_served = Some(ip);
            // A waiter whose connection is gone cannot take it.
            if waiter.is_some_and(|w| w.send(()).is_ok()) {
                self.taken += 1;
            }
        }
    }
}

/// One connection's state, shared by its task, its requests and the tracker.
pub struct ConnState {
    /// Milliseconds since the tracker's epoch when the slot was taken.
    admitted_ms: u64,
    busy: AtomicUsize,
    /// Requests started.
    requests: AtomicU64,
    /// When the connection last showed life (ms since epoch): admitted, a
    /// byte received, a request started or finished.
    last_active_ms: AtomicU64,
    /// When the current busy spell began (ms since epoch), 0 when idle.
    busy_since_ms: AtomicU64,
    /// When vitals last wrote bytes to the peer (ms since epoch), 0 never.
    last_sent_ms: AtomicU64,
    /// Since when vitals has been waiting to read from the peer (a read
    /// found nothing; ms since epoch), 0 while it is not: a connection
    /// whose bytes vitals has not got round to processing (a starved
    /// handshake task) is not a quiet peer.
    reading_since_ms: AtomicU64,
    /// The TLS handshake has not finished.
    handshaking: AtomicBool,
    /// Some byte has been received.
    heard: AtomicBool,
    /// Asked to close now.
    evicted: AtomicBool,
    /// Asked to close after its next response.
    retiring: AtomicBool,
    close: Notify,
    epoch: Instant,
}

fn ms_since(epoch: Instant) -> u64 {
    // +1 so that 0 can mean "not busy".
    epoch.elapsed().as_millis() as u64 + 1
}

impl ConnState {
    fn now_ms(&self) -> u64 {
        ms_since(self.epoch)
    }

    /// Marks a request as started; the guard marks it finished on drop.
    pub fn begin(self: &Arc<Self>) -> BusyGuard {
        let now = self.now_ms();
        self.requests.fetch_add(1, Ordering::Relaxed);
        if self.busy.fetch_add(1, Ordering::AcqRel) == 0 {
            self.busy_since_ms.store(now, Ordering::Release);
        }
        self.last_active_ms.store(now, Ordering::Release);
        BusyGuard(self.clone())
    }

    /// Bytes arrived.
    pub fn hear(&self) {
        self.last_active_ms.store(self.now_ms(), Ordering::Release);
        self.reading_since_ms.store(0, Ordering::Release);
        if !self.heard.load(Ordering::Relaxed) {
            self.heard.store(true, Ordering::Release);
        }
    }

    /// The TLS handshake started (`true`) or ended (`false`).
    pub fn handshaking(&self, on: bool) {
        self.handshaking.store(on, Ordering::Release);
    }

    /// Resolves when the tracker asks this connection to close now.
    pub async fn evicted(&self) {
        self.close.notified().await
    }

    /// Whether the next response should say `Connection: close`.
    pub fn retiring(&self) -> bool {
        self.retiring.load(Ordering::Acquire)
    }

    /// How long the current request has been running, if one is.
    pub fn busy_for(&self) -> Option<Duration> {
        let since = self.busy_since_ms.load(Ordering::Acquire);
        (since != 0).then(|| Duration::from_millis(self.now_ms().saturating_sub(since)))
    }

    /// No request in flight and nothing received for `EVICT_MIN_IDLE`.
    pub fn quiet(&self) -> bool {
        self.quiet_at(self.now_ms())
    }

    fn quiet_at(&self, now: u64) -> bool {
        let quiet_ms = now.saturating_sub(self.last_active_ms.load(Ordering::Acquire));
        self.busy.load(Ordering::Acquire) == 0 && quiet_ms >= EVICT_MIN_IDLE.as_millis() as u64
    }

    /// May be closed now to make room: quiet, in whatever phase it stalled
    /// (half-open, a partial TLS record, a partial request head, between
    /// requests). A peer that sent a byte within `EVICT_MIN_IDLE` is making
    /// progress and stays; so does one that owes vitals the reply to
    /// vitals' own handshake flight before its first request (it sent a
    /// whole hello, vitals answered it, and a client on a loaded machine can
    /// take more than `EVICT_MIN_IDLE` to reply: cutting it throws away the
    /// handshake already paid for). `header_read_timeout` bounds that one.
    fn evictable_at(&self, now: u64) -> bool {
        let sent = self.last_sent_ms.load(Ordering::Acquire);
        let owes_reply = self.requests.load(Ordering::Acquire) == 0
            && sent != 0
            && sent >= self.last_active_ms.load(Ordering::Acquire);
        let reading = self.reading_since_ms.load(Ordering::Acquire);
        let waited =
            reading != 0 && now.saturating_sub(reading) >= EVICT_MIN_IDLE.as_millis() as u64;
        !owes_reply && waited && self.quiet_at(now)
    }

    /// A read found nothing: vitals waits for the peer from now on.
    fn read_pending(&self) {
        if self.reading_since_ms.load(Ordering::Relaxed) == 0 {
            self.reading_since_ms
                .store(self.now_ms(), Ordering::Release);
        }
    }

    /// Bytes were written to the peer.
    pub fn sent(&self) {
        self.last_sent_ms.store(self.now_ms(), Ordering::Release);
    }

    /// Evicted, but bytes arrived before the eviction was acted on: serve
    /// what came, then close after the response.
    pub fn spare(&self) {
        self.retiring.store(true, Ordering::Release);
        self.evicted.store(false, Ordering::Release);
    }

    /// Some byte has been received.
    pub fn has_heard(&self) -> bool {
        self.heard.load(Ordering::Acquire)
    }

    fn leaving(&self) -> bool {
        self.evicted.load(Ordering::Acquire) || self.retiring.load(Ordering::Acquire)
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.close.notify_one();
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

/// A socket that tells its connection's state when bytes arrive, so a
/// started TLS handshake or request head is never taken for quiet.
pub struct Heard<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S> Heard<S> {
    pub fn new(inner: S, state: Arc<ConnState>) -> Self {
        Heard { inner, state }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Heard<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.state.hear();
        } else if poll.is_pending() {
            this.state.read_pending();
        }
        poll
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Heard<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = std::pin::Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(poll, std::task::Poll::Ready(Ok(n)) if n > 0) {
            this.state.sent();
        }
        poll
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = std::pin::Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, std::task::Poll::Ready(Ok(n)) if n > 0) {
            this.state.sent();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
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
        inner.taken -= 1;
        inner.hand_over();
    }
}

/// A connection that has a slot or a place in the queue.
pub struct Arrival {
    tracker: Arc<Connections>,
    /// `None`: the slot was free at once.
    wait: Option<oneshot::Receiver<()>>,
    /// Holds a slot not yet turned into a `Slot`.
    holds: bool,
}

impl Arrival {
    /// The slot: at once if one was free, else when the queue comes to this
    /// connection.
    pub async fn slot(mut self) -> Option<Slot> {
        if let Some(wait) = self.wait.as_mut() {
            wait.await.ok()?;
            self.holds = true;
        }
        self.holds = false;
        Some(self.tracker.register())
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        let granted = match self.wait.as_mut() {
            // Handed a slot after all, between the send and here.
            Some(wait) if !self.holds => wait.try_recv().is_ok(),
            _ => self.holds,
        };
        if granted {
            let mut inner = self.tracker.lock();
            inner.taken -= 1;
            inner.hand_over();
        }
        if self.wait.is_some() {
            self.tracker.waiting.fetch_sub(1, Ordering::AcqRel);
            self.tracker.room.notify_one();
        }
    }
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            inner: Mutex::new(Inner {
                next_id: 0,
                open: BTreeMap::new(),
                max: 0,
                taken: 0,
                queues: BTreeMap::new(),
                last_served: None,
            }),
            waiting: AtomicUsize::new(0),
            room: Notify::new(),
            epoch: Instant::now(),
        }
    }
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many connections are served.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// How many connections wait for a slot.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Resolves once a waiting connection got its slot (or at once, if one
    /// did since the last call).
    pub async fn room(&self) {
        self.room.notified().await
    }

    /// A new connection from `peer` arrives: it takes a free slot, or joins
    /// the queue (counted in `waiting` from this moment). `max` is the
    /// current `max_connections`.
    pub fn arrive(self: &Arc<Self>, peer: IpAddr, max: usize) -> Arrival {
        let mut inner = self.lock();
        let max = max.max(1);
        if inner.max != max {
            inner.max = max;
            inner.hand_over();
        }
        if inner.taken < inner.max && inner.queues.is_empty() {
            inner.taken += 1;
            return Arrival {
                tracker: self.clone(),
                wait: None,
                holds: true,
            };
        }
        let (tx, rx) = oneshot::channel();
        inner.queues.entry(peer).or_default().push_back(tx);
        drop(inner);
        self.waiting.fetch_add(1, Ordering::AcqRel);
        self.rebalance();
        Arrival {
            tracker: self.clone(),
            wait: Some(rx),
            holds: false,
        }
    }

    /// `arrive` and wait for the slot.
    pub async fn admit(self: &Arc<Self>, peer: IpAddr, max: usize) -> Option<Slot> {
        self.arrive(peer, max).slot().await
    }

    fn register(self: &Arc<Self>) -> Slot {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        let now = ms_since(self.epoch);
        let state = Arc::new(ConnState {
            admitted_ms: now,
            busy: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(now),
            busy_since_ms: AtomicU64::new(0),
            last_sent_ms: AtomicU64::new(0),
            reading_since_ms: AtomicU64::new(0),
            handshaking: AtomicBool::new(false),
            heard: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            retiring: AtomicBool::new(false),
            close: Notify::new(),
            epoch: self.epoch,
        });
        inner.open.insert(id, state.clone());
        Slot {
            tracker: self.clone(),
            id,
            state,
        }
    }

    /// While connections wait, asks as many served ones to leave: the
    /// quiet ones now (longest quiet first), then those that held their
    /// slot for `FAIR_SHARE` after their current response (oldest first).
    pub fn rebalance(&self) {
        let waiting = self.waiting();
        if waiting == 0 {
            return;
        }
        let inner = self.lock();
        let now = ms_since(self.epoch);
        let mut leaving = 0;
        for c in inner.open.values() {
            if !c.evicted.load(Ordering::Acquire) && c.retiring() && c.evictable_at(now) {
                // Told to close after a response that never came.
                c.evict();
            }
            leaving += usize::from(c.leaving());
        }
        let mut need = waiting.saturating_sub(leaving);
        if need == 0 {
            return;
        }
        let mut quiet: Vec<&Arc<ConnState>> = inner
            .open
            .values()
            .filter(|c| !c.leaving() && c.evictable_at(now))
            .collect();
        quiet.sort_by_key(|c| c.last_active_ms.load(Ordering::Acquire));
        for c in quiet.into_iter().take(need) {
            c.evict();
            need -= 1;
        }
        let share = FAIR_SHARE.as_millis() as u64;
        // BTreeMap order is admission order.
        for c in inner.open.values() {
            if need == 0 {
                break;
            }
            if !c.leaving()
                && now.saturating_sub(c.admitted_ms) >= share
                && c.requests.load(Ordering::Relaxed) >= TURN_REQUESTS
            {
                c.retiring.store(true, Ordering::Release);
                need -= 1;
            }
        }
    }

    /// Runs `rebalance` every `REBALANCE_PERIOD` (it does nothing while no
    /// connection waits), until dropped.
    pub async fn keep_balanced(&self) {
        let mut tick = tokio::time::interval(REBALANCE_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.rebalance();
        }
    }
}

/// How many connections may wait in the process for `max` slots: at most
/// `WAITING_PER_SLOT` per slot, and never more than the file descriptors
/// left once the slots and a reserve are counted.
pub fn waiting_cap(max: usize, fd_limit: Option<u64>) -> usize {
    let per_slot = max.saturating_mul(WAITING_PER_SLOT);
    match fd_limit {
        None => per_slot,
        Some(fds) => {
            let spare = fds.saturating_sub(max as u64 + FD_RESERVE);
            per_slot.min(usize::try_from(spare).unwrap_or(usize::MAX))
        }
    }
}

/// The soft limit on open files (`None`: unlimited).
pub fn fd_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Raises the soft limit on open files to the hard limit, as Go does for
/// every program since 1.19: returns (before, after), `None` meaning
/// unlimited.
pub fn raise_fd_limit() -> std::io::Result<(Option<u64>, Option<u64>)> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return Ok((limit.current, limit.current));
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )?;
    Ok((limit.current, getrlimit(Resource::Nofile).current))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A tracker whose clock started a minute ago, so states can be
    /// backdated.
    fn tracker() -> Arc<Connections> {
        Arc::new(Connections {
            epoch: Instant::now()
                .checked_sub(Duration::from_secs(60))
                .unwrap_or_else(Instant::now),
            ..Connections::default()
        })
    }

    fn backdate(s: &ConnState, ms: u64) {
        // Pretend the connection was admitted and last active `ms` ago.
        let then = s.now_ms().saturating_sub(ms);
        s.last_active_ms.store(then, Ordering::Release);
        // And vitals has been waiting to read from it as long.
        s.reading_since_ms.store(then, Ordering::Release);
    }

    #[tokio::test]
    async fn below_the_limit_admits_and_frees_on_drop() {
        let c = tracker();
        let a = c.admit(LO, 2).await.unwrap();
        let b = c.admit(LO, 2).await.unwrap();
        assert_eq!(c.open(), 2);
        assert_eq!(c.waiting(), 0);
        drop(a);
        drop(b);
        assert_eq!(c.open(), 0);
    }

    #[tokio::test]
    async fn at_the_limit_a_newcomer_waits_and_only_the_quiet_one_is_evicted() {
        let c = tracker();
        let quiet = c.admit(LO, 2).await.unwrap();
        let talking = c.admit(LO, 2).await.unwrap();
        // Spoke just now, in its first request head: making progress.
        backdate(&quiet.state, 10_000);
        talking.state.hear();
        let c2 = c.clone();
        let newcomer = tokio::spawn(async move { c2.admit(LO, 2).await.map(|s| s.id) });
        tokio::time::timeout(Duration::from_secs(1), quiet.state.evicted())
            .await
            .expect("the quiet connection is asked to close");
        assert!(!talking.state.evicted.load(Ordering::Acquire));
        assert_eq!(c.waiting(), 1);
        drop(quiet);
        assert_eq!(newcomer.await.unwrap(), Some(2));
        assert_eq!(c.waiting(), 0);
        drop(talking);
    }

    #[tokio::test]
    async fn busy_and_progressing_handshakes_stay_a_stalled_handshake_goes() {
        let c = tracker();
        let busy = c.admit(LO, 2).await.unwrap();
        let handshake = c.admit(LO, 2).await.unwrap();
        let guard = busy.state.begin();
        handshake.state.handshaking(true);
        backdate(&busy.state, 10_000);
        // The handshake's last byte came just now: it is making progress.
        handshake.state.hear();
        let c2 = c.clone();
        let newcomer = tokio::spawn(async move { c2.admit(LO, 2).await.is_some() });
        tokio::time::sleep(REBALANCE_PERIOD * 4).await;
        c.rebalance();
        assert!(!busy.state.evicted.load(Ordering::Acquire));
        assert!(!handshake.state.evicted.load(Ordering::Acquire));
        assert!(!newcomer.is_finished());
        // Its hello answered by vitals' flight, the peer quiet since: it
        // owes the reply, which a loaded client may take long to send.
        backdate(&handshake.state, EVICT_MIN_IDLE.as_millis() as u64);
        handshake.state.sent();
        c.rebalance();
        assert!(!handshake.state.evicted.load(Ordering::Acquire));
        // A peer silent since bytes vitals did not answer (two bytes of a
        // record, then nothing): quiet is quiet, it makes room.
        handshake.state.last_sent_ms.store(0, Ordering::Release);
        c.rebalance();
        assert!(handshake.state.evicted.load(Ordering::Acquire));
        assert!(!busy.state.evicted.load(Ordering::Acquire));
        drop(handshake);
        assert!(newcomer.await.unwrap());
        drop((guard, busy));
    }

    #[tokio::test]
    async fn a_connection_past_its_fair_share_is_retired_after_its_response() {
        let c = tracker();
        let old = c.admit(LO, 1).await.unwrap();
        let guard = old.state.begin();
        let c2 = c.clone();
        let newcomer = tokio::spawn(async move { c2.admit(LO, 1).await.is_some() });
        while c.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(FAIR_SHARE).await;
        c.rebalance();
        // Long enough, but one request only: its turn goes on.
        assert!(!old.state.retiring());
        drop(guard);
        for _ in 2..TURN_REQUESTS {
            drop(old.state.begin());
        }
        let guard = old.state.begin();
        c.rebalance();
        assert!(old.state.retiring());
        // Busy: told to close after its response, not now.
        assert!(!old.state.evicted.load(Ordering::Acquire));
        drop((guard, old));
        assert!(newcomer.await.unwrap());
    }

    #[tokio::test]
    async fn freed_slots_go_round_robin_over_addresses_and_in_order_within_one() {
        let c = tracker();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let first = c.admit(LO, 1).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (n, ip) in [(0, LO), (1, LO), (2, LO), (3, other)] {
            let (c2, tx) = (c.clone(), tx.clone());
            tokio::spawn(async move {
                let slot = c2.admit(ip, 1).await.unwrap();
                tx.send(n).unwrap();
                drop(slot);
            });
            while c.waiting() < n + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        let mut order = Vec::new();
        for _ in 0..4 {
            order.push(rx.recv().await.unwrap());
        }
        // The other address's only connection comes second, not last.
        assert_eq!(order, vec![0, 3, 1, 2]);
        assert_eq!(c.waiting(), 0);
        assert_eq!(c.lock().taken, 0);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_its_slot_to_the_next() {
        let c = tracker();
        let first = c.admit(LO, 1).await.unwrap();
        let gone = c.arrive(LO, 1);
        let next = c.arrive(LO, 1);
        assert_eq!(c.waiting(), 2);
        drop(gone);
        assert_eq!(c.waiting(), 1);
        drop(first);
        let slot = tokio::time::timeout(Duration::from_secs(1), next.slot())
            .await
            .expect("the slot went to the waiter still there")
            .unwrap();
        assert_eq!(c.lock().taken, 1);
        drop(slot);
        assert_eq!(c.lock().taken, 0);
    }

    #[tokio::test]
    async fn lowering_the_limit_takes_effect_as_connections_close() {
        let c = tracker();
        let a = c.admit(LO, 2).await.unwrap();
        let b = c.admit(LO, 2).await.unwrap();
        // Reload to 1: both stay; when one closes, its slot goes away.
        let c2 = c.clone();
        let newcomer = tokio::spawn(async move { c2.admit(LO, 1).await.is_some() });
        while c.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        drop(a);
        tokio::task::yield_now().await;
        assert_eq!(c.waiting(), 1, "the freed slot was the one removed");
        drop(b);
        assert!(newcomer.await.unwrap());
        assert_eq!(c.lock().taken, 0);
    }

    #[test]
    fn the_waiting_queue_is_bounded_by_slots_and_file_descriptors() {
        assert_eq!(waiting_cap(256, None), 256 * WAITING_PER_SLOT);
        assert_eq!(waiting_cap(256, Some(1 << 20)), 256 * WAITING_PER_SLOT);
        assert_eq!(waiting_cap(256, Some(1024)), 1024 - 256 - 128);
        assert_eq!(waiting_cap(256, Some(100)), 0);
    }
}
