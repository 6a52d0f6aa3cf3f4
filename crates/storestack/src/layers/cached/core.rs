//! The state shared by a [`Cached`](super::Cached) store and its clones:
//! the moka cache, the generations, the flights, and the listener of the
//! invalidation channel.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::entry::{Entry, Retain, Timing};
use super::flight::Flights;
use super::generation::{Generations, Tag};
use super::invalidation::{Invalidator, Message, Notice, Subscriber};
use super::metrics::CacheMetrics;
use super::CacheConfig;
use crate::clock::SharedClock;
use crate::store::Record;

type Listener = (Box<dyn Subscriber>, oneshot::Receiver<()>);

/// How often an instance that owes the others a "forget everything"
/// (a publish failed) tries again to publish it.
pub(super) const DEBT_RETRY: Duration = Duration::from_millis(100);

pub(super) struct Core {
    pub(super) cache: moka::sync::Cache<String, Arc<Entry>>,
    pub(super) gens: Generations,
    pub(super) flights: Flights,
    pub(super) timing: Timing,
    pub(super) clock: SharedClock,
    pub(super) metrics: CacheMetrics,
    invalidator: Option<Arc<dyn Invalidator>>,
    /// This instance's id in invalidation messages.
    origin: u64,
    /// False once the invalidation channel is gone: the cache is bypassed.
    coherent: AtomicBool,
    /// Publishes that failed so far: the others may hold what those
    /// writes replaced, so this instance owes them a "forget everything".
    failed_publishes: AtomicU64,
    /// `failed_publishes` as it was when the last "forget everything"
    /// that went through was sent: the debt is paid up to there.
    paid: AtomicU64,
    /// Whether a task retries the debt.
    retrying: AtomicBool,
    /// A subscription waiting for a runtime to listen on.
    pending: Mutex<Option<Listener>>,
    has_pending: AtomicBool,
    /// Dropped with the core, which stops the listener.
    _stop: oneshot::Sender<()>,
}

impl Core {
    pub(super) fn new(config: CacheConfig, label: &str) -> Arc<Core> {
        let mut builder = moka::sync::Cache::builder()
            .name("storestack-cache")
            .expire_after(Retain);
        builder = match (config.max_entries, config.max_bytes) {
            // Each entry weighs at least bytes / entries, so the byte bound
            // also caps the count at `max_entries`.
            (Some(n), Some(bytes)) => {
                let floor = bytes.div_ceil(n.max(1)).min(u32::MAX as u64) as u32;
                builder
                    .max_capacity(bytes)
                    .weigher(move |_, e: &Arc<Entry>| e.weight.max(floor))
            }
            (Some(n), None) => builder.max_capacity(n),
            (None, Some(bytes)) => builder
                .max_capacity(bytes)
                .weigher(|_, e: &Arc<Entry>| e.weight),
            (None, None) => builder,
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let mut coherent = true;
        let pending = match &config.invalidator {
            None => None,
            Some(inv) => match inv.subscribe() {
                Ok(sub) => Some((sub, stop_rx)),
                Err(e) => {
                    tracing::warn!(store = label, error = %e,
                        "cache cannot subscribe to invalidations; caching disabled");
                    coherent = false;
                    None
                }
            },
        };
        let core = Arc::new(Core {
            cache: builder.build(),
            gens: Generations::new(config.generation_slots, config.invalidation_secret),
            flights: Flights::default(),
            timing: Timing {
                ttl: config.ttl,
                negative_ttl: config.negative_ttl,
                serve_stale: config.serve_stale,
            },
            clock: config.clock,
            metrics: CacheMetrics::new(label),
            invalidator: config.invalidator,
            origin: rand::random(),
            coherent: AtomicBool::new(coherent),
            failed_publishes: AtomicU64::new(0),
            paid: AtomicU64::new(0),
            retrying: AtomicBool::new(false),
            has_pending: AtomicBool::new(pending.is_some()),
            pending: Mutex::new(pending),
            _stop: stop_tx,
        });
        core.start_listener();
        core
    }

    /// Whether to use the cache at all. Starts the listener on first use
    /// when the cache was built outside a runtime.
    #[inline]
    pub(super) fn caching(self: &Arc<Self>) -> bool {
        if self.has_pending.load(Ordering::Acquire) {
            self.start_listener();
        }
        self.coherent.load(Ordering::Acquire)
    }

    fn start_listener(self: &Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if let Some((sub, stop)) = self.pending.lock().take() {
            self.has_pending.store(false, Ordering::Release);
            rt.spawn(listen(Arc::downgrade(self), sub, stop));
        }
    }

    pub(super) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Forgets everything (a `clear`, lost messages).
    pub(super) fn forget_all(&self) {
        self.gens.bump_epoch();
        self.cache.invalidate_all();
    }

    /// Caches what a read at `tag` returned, unless a write or an
    /// invalidation has happened since (the entry could never be served).
    pub(super) fn fill_read(&self, key: &str, hash: u64, record: &Option<Record>, tag: Tag) {
        if self.gens.tag(hash) != tag {
            return;
        }
        match Entry::new(key, record.clone(), tag, self.now(), &self.timing) {
            Some(e) => self.cache.insert(key.to_owned(), e),
            // Gone (or expired) in the inner store: drop any stale copy so
            // it is not served on a later error.
            None => self.cache.invalidate(key),
        }
    }

    /// After a write: caches `record` if the write filled cleanly at `tag`,
    /// otherwise drops the key's entry.
    pub(super) fn fill_write(&self, key: &str, record: Option<Record>, tag: Option<Tag>) {
        let entry = match (record, tag) {
            (Some(r), Some(tag)) => Entry::new(key, Some(r), tag, self.now(), &self.timing),
            _ => None,
        };
        match entry {
            Some(e) => self.cache.insert(key.to_owned(), e),
            None => self.cache.invalidate(key),
        }
    }

    /// Tells the other instances; a failure is logged and counted, never
    /// returned, and leaves a debt: until a "forget everything" goes
    /// through (before the next message, or from a retry task every
    /// [`DEBT_RETRY`]), the others may serve what this write replaced.
    pub(super) async fn publish(self: &Arc<Self>, message: impl FnOnce(u64) -> Message) {
        let Some(inv) = &self.invalidator else { return };
        if self.owes() && !self.pay_debt(inv.as_ref()).await {
            // The channel still refuses; the pending "forget everything"
            // covers this write too.
            self.publish_failed();
            return;
        }
        if let Err(e) = inv.publish(message(self.origin).encode()).await {
            self.publish_failed();
            tracing::warn!(error = %e, "cache invalidation could not be published");
        }
    }

    fn publish_failed(self: &Arc<Self>) {
        self.failed_publishes.fetch_add(1, Ordering::AcqRel);
        self.metrics.publish_failures.increment(1);
        if !self.retrying.swap(true, Ordering::AcqRel) {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(pay_debt_later(Arc::downgrade(self)));
            } else {
                self.retrying.store(false, Ordering::Release);
            }
        }
    }

    /// Whether a failed publish is not yet covered by a "forget
    /// everything" that went through.
    pub(super) fn owes(&self) -> bool {
        self.paid.load(Ordering::Acquire) < self.failed_publishes.load(Ordering::Acquire)
    }

    /// Publishes "forget everything"; true if it went through. It covers
    /// every publish that had failed before it was sent, whose writes had
    /// all completed by then.
    pub(super) async fn pay_debt(&self, inv: &dyn Invalidator) -> bool {
        let covered = self.failed_publishes.load(Ordering::Acquire);
        match inv
            .publish(
                Message::All {
                    origin: self.origin,
                }
                .encode(),
            )
            .await
        {
            Ok(()) => {
                self.paid.fetch_max(covered, Ordering::AcqRel);
                tracing::info!("cache invalidation channel back: told the others to forget");
                true
            }
            Err(_) => false,
        }
    }

    fn on_notice(&self, notice: Notice) {
        let message = match notice {
            Notice::Message(bytes) => Message::decode(&bytes),
            Notice::MaybeLost => None,
        };
        match message {
            Some(m) if m.origin() == self.origin => {}
            Some(Message::Key { hash, .. }) => {
                self.gens.bump(hash);
                self.metrics.invalidated_key.increment(1);
            }
            Some(Message::All { .. }) | None => {
                self.forget_all();
                self.metrics.invalidated_all.increment(1);
            }
        }
    }
}

async fn listen(core: Weak<Core>, mut sub: Box<dyn Subscriber>, mut stop: oneshot::Receiver<()>) {
    loop {
        let notice = tokio::select! {
            _ = &mut stop => return,
            n = sub.recv() => n,
        };
        let Some(core) = core.upgrade() else { return };
        match notice {
            Some(n) => core.on_notice(n),
            None => {
                core.coherent.store(false, Ordering::Release);
                core.forget_all();
                tracing::warn!("cache invalidation channel closed; caching disabled");
                return;
            }
        }
    }
}

/// Retries the "forget everything" an instance owes every [`DEBT_RETRY`]
/// until one goes through (or the cache is dropped). A task of its own,
/// started by the first failed publish, so that the listener never needs
/// tokio's timer.
async fn pay_debt_later(core: Weak<Core>) {
    loop {
        tokio::time::sleep(DEBT_RETRY).await;
        let Some(core) = core.upgrade() else { return };
        if !core.owes() {
            core.retrying.store(false, Ordering::Release);
            // A publish that failed meanwhile found the flag set and
            // relies on this task: carry on unless another took over.
            if !core.owes() || core.retrying.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        }
        if let Some(inv) = &core.invalidator {
            core.pay_debt(inv.as_ref()).await;
        }
    }
}
