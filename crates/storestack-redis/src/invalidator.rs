//! [`RedisInvalidator`]: cross-instance cache invalidation over Redis
//! pub/sub, for the [`Cached`](storestack::Cached) decorator.

mod listener;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fred::bytes_utils::Str;
use fred::clients::{Client, WithOptions};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::config::Options;
use fred::types::{ClusterHash, RespVersion};
use storestack::{Invalidator, Notice, Op, Result, StoreError, Subscriber};
use tokio::sync::{broadcast, oneshot};

use crate::config::RedisConfig;
use crate::error::{self, STORE_NAME};
use listener::{Listener, PublisherState};

/// What the default channel adds to the key prefix:
/// `"storestack:invalidate"` with the default prefix.
pub const DEFAULT_CHANNEL_SUFFIX: &str = "invalidate";

/// Notices buffered per receiver; one that falls further behind gets
/// [`Notice::MaybeLost`] (and its cache forgets everything).
const BUFFER: usize = 4096;

/// An [`Invalidator`] on Redis pub/sub: caches in several processes over
/// one Redis tell each other which keys they wrote.
///
/// It holds two connections of its own, made from the same
/// [`RedisConfig`] as the store: one publishes (`PUBLISH`), the other is
/// subscribed (`SUBSCRIBE`) to the channel and reconnects and subscribes
/// again by itself. Clones share both.
///
/// # Guarantees
///
/// * A receiver from [`subscribe`](Invalidator::subscribe) gets every
///   message published on the channel while the subscription is up, this
///   process's own included, in order.
/// * Whenever messages may have been missed it gets
///   [`Notice::MaybeLost`], upon which a cache forgets everything: when
///   the subscribed connection is lost (or stops answering a heartbeat
///   `PING`), and again when the subscription is back (a cache may have
///   filled from Redis meanwhile), after every re-subscription, and when
///   the receiver lags more than 4096 notices behind.
/// * [`publish`](Invalidator::publish) never queues: from the moment its
///   connection is seen to break until it is back it fails at once with
///   `Unavailable` (a publish already waiting fails then too), and it
///   never takes longer than the
///   [command timeout](RedisConfig::command_timeout) (then `Timeout`:
///   a server that hangs sends no error). In a cluster, like every
///   fail-fast command of fred, it fails while any node is unreachable.
///   Errors carry [`Op::Set`]: a publish is part of a write.
///
/// A subscription lost without the socket saying so (a silent network
/// partition) is noticed by a `PING` every half
/// [`unresponsive_timeout`](RedisConfig::unresponsive_timeout); with that
/// setting off, only a connection error is noticed.
///
/// # Topologies
///
/// Standalone and Sentinel: one primary carries the channel; after a
/// failover both connections follow the new primary (and receivers get
/// `MaybeLost`). Cluster: classic pub/sub, which the cluster bus forwards
/// to every node, so the subscription lives on one node and publishes go
/// to any; every reconnection or cluster change re-subscribes (duplicate
/// deliveries while the topology changes are harmless). Sharded pub/sub
/// (`SSUBSCRIBE`) is not used.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), storestack::StoreError> {
/// use std::time::Duration;
/// use storestack::{CacheConfig, Record, Store, StoreExt};
/// use storestack_redis::{RedisConfig, RedisInvalidator, RedisStore};
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379").key_prefix("sess:");
/// // Channel "sess:invalidate": every process over this prefix meets there.
/// let invalidator = RedisInvalidator::connect(config.clone()).await?;
/// let store = RedisStore::connect(config).await?.cached(
///     CacheConfig::default()
///         .ttl(Duration::from_secs(30))
///         .invalidator(invalidator),
/// );
/// // Another process's write of "abc" ends this process's cached copy
/// // within the publish latency.
/// store.set("abc", Record::expiring_after("v", Duration::from_secs(3600))).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisInvalidator {
    inner: Arc<Inner>,
}

struct Inner {
    channel: Str,
    publisher: Client,
    /// `publisher` with fail-fast options on every command.
    publish: WithOptions<Client>,
    subscriber: Client,
    /// Set while the channel is subscribed on a live connection.
    subscribed: Arc<AtomicBool>,
    /// Whether `publisher`'s connection is known to be broken.
    publisher_state: Arc<PublisherState>,
    /// A receiver kept only to hand out new ones; it does not keep the
    /// channel open, so receivers see the end when the listener stops.
    notices: broadcast::Receiver<Notice>,
    /// Dropped with the last clone: stops the listener.
    _stop: oneshot::Sender<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let publisher = self.publisher.clone();
            rt.spawn(async move {
                let _ = publisher.quit().await;
            });
        }
    }
}

impl fmt::Debug for RedisInvalidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisInvalidator")
            .field("channel", &&*self.inner.channel)
            .field("subscribed", &self.is_subscribed())
            .finish()
    }
}

fn fail_fast() -> Options {
    Options {
        // Never queue while disconnected, never replay after a reconnect.
        fail_fast: true,
        ..Options::default()
    }
}

impl RedisInvalidator {
    /// Connects on the channel `key_prefix + "invalidate"` of `config`
    /// (`"storestack:invalidate"` by default), so stores sharing a prefix
    /// share a channel.
    ///
    /// Fails like [`RedisStore::connect`](crate::RedisStore::connect) when
    /// Redis cannot be reached (unless
    /// [`lazy_connect`](RedisConfig::lazy_connect) is set: then the
    /// subscription is made in the background and receivers get
    /// `MaybeLost` once it is up).
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let channel = format!("{}{DEFAULT_CHANNEL_SUFFIX}", config.key_prefix);
        Self::connect_on(config, channel).await
    }

    /// Connects on `channel`. Every cache that must see the others'
    /// writes uses the same channel (and the same
    /// [`invalidation_secret`](storestack::CacheConfig::invalidation_secret)).
    pub async fn connect_on(config: RedisConfig, channel: impl Into<String>) -> Result<Self> {
        let channel: String = channel.into();
        if channel.is_empty() {
            return Err(StoreError::invalid_input(Op::Connect)
                .with_store(STORE_NAME)
                .with_message("invalidation channel name is empty"));
        }
        let channel = Str::from(channel);
        let builder = crate::connect::builder(&config)?;
        let publisher = builder.build().map_err(|e| error::map(Op::Connect, e))?;

        let mut sub_builder = builder;
        sub_builder.with_config(|c| {
            // PING works on a subscribed RESP3 connection (the heartbeat).
            c.version = RespVersion::RESP3;
        });
        sub_builder.with_performance_config(|p| {
            p.broadcast_channel_capacity = BUFFER;
        });
        let subscriber = sub_builder
            .build()
            .map_err(|e| error::map(Op::Connect, e))?;

        let (tx, notices) = broadcast::channel(BUFFER);
        let subscribed = Arc::new(AtomicBool::new(false));
        let publisher_state = Arc::new(PublisherState::default());
        let watch = listener::PublisherWatch::of(&publisher, publisher_state.clone());
        let messages = subscriber.message_rx();
        let ping_route = subscriber.is_clustered().then(|| {
            // Where fred sends this client's SUBSCRIBE in a cluster.
            ClusterHash::Custom(fred::util::redis_keyslot(subscriber.id().as_bytes()))
        });
        let lazy = config.lazy_connect;
        let events = if lazy {
            let events = listener::Events::of(&subscriber);
            subscriber.connect();
            publisher.connect();
            events
        } else {
            let connected = async {
                crate::connect::init(&subscriber, &config).await?;
                crate::connect::init(&publisher, &config).await
            };
            if let Err(e) = connected.await {
                let _ = subscriber.quit().await;
                let _ = publisher.quit().await;
                return Err(e);
            }
            // Events from here on: the first connection is not news.
            let events = listener::Events::of(&subscriber);
            if let Err(e) = listener::subscribe(&subscriber, &channel, ping_route.as_ref()).await {
                let _ = subscriber.quit().await;
                let _ = publisher.quit().await;
                return Err(error::map(Op::Connect, e));
            }
            subscribed.store(true, Ordering::Release);
            events
        };

        let heartbeat = config
            .unresponsive_timeout
            .map(|t| (t / 2).max(Duration::from_millis(20)));
        let (stop_tx, stop_rx) = oneshot::channel();
        let listener = Listener {
            client: subscriber.clone(),
            channel: channel.clone(),
            notices: tx,
            subscribed: subscribed.clone(),
            retry: config
                .reconnect_min_delay
                .clamp(Duration::from_millis(10), Duration::from_secs(1)),
            heartbeat,
            route: ping_route,
        };
        tokio::spawn(listener.run(messages, events, watch, stop_rx));

        Ok(RedisInvalidator {
            inner: Arc::new(Inner {
                publish: publisher.with_options(&fail_fast()),
                publisher,
                subscriber,
                channel,
                subscribed,
                publisher_state,
                notices,
                _stop: stop_tx,
            }),
        })
    }

    /// The channel messages are published and received on.
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// Whether the channel is subscribed on a live connection right now
    /// (a health check: while it is not, caches hear nobody).
    pub fn is_subscribed(&self) -> bool {
        self.inner.subscribed.load(Ordering::Acquire) && self.inner.subscriber.is_connected()
    }
}

#[async_trait]
impl Invalidator for RedisInvalidator {
    async fn publish(&self, message: Bytes) -> Result<()> {
        let state = &self.inner.publisher_state;
        let lost = state.lost.notified();
        tokio::pin!(lost);
        // Registered before the check: a loss seen from here on wakes it.
        lost.as_mut().enable();
        let connection_down = || {
            StoreError::unavailable(Op::Set)
                .with_store(STORE_NAME)
                .with_message(
                    "cannot publish a cache invalidation: the connection to redis is down",
                )
        };
        if state.down.load(Ordering::Acquire) {
            return Err(connection_down());
        }
        let publish = self
            .inner
            .publish
            .publish::<i64, _, _>(self.inner.channel.clone(), message);
        tokio::select! {
            result = publish => match result {
                Ok(_receivers) => Ok(()),
                Err(e) => {
                    let err = error::map(Op::Set, e);
                    let message = format!("cannot publish a cache invalidation: {}", err.message());
                    Err(err.with_message(message))
                }
            },
            _ = lost => Err(connection_down()),
        }
    }

    fn subscribe(&self) -> Result<Box<dyn Subscriber>> {
        Ok(Box::new(RedisSubscriber(self.inner.notices.resubscribe())))
    }
}

/// A receiver of a [`RedisInvalidator`]'s notices.
struct RedisSubscriber(broadcast::Receiver<Notice>);

#[async_trait]
impl Subscriber for RedisSubscriber {
    async fn recv(&mut self) -> Option<Notice> {
        match self.0.recv().await {
            Ok(notice) => Some(notice),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Notice::MaybeLost),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storestack::ErrorKind;

    #[tokio::test]
    async fn bad_settings_are_refused_before_any_io() {
        let err = RedisInvalidator::connect_on(RedisConfig::default(), "")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = RedisInvalidator::connect(RedisConfig::default().pool_size(0))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn a_lagging_receiver_is_told_and_the_end_is_none() {
        let (tx, rx) = broadcast::channel(2);
        let mut sub = RedisSubscriber(rx);
        for m in [&b"1"[..], b"2", b"3"] {
            tx.send(Notice::Message(Bytes::copy_from_slice(m))).unwrap();
        }
        assert_eq!(sub.recv().await, Some(Notice::MaybeLost));
        assert_eq!(
            sub.recv().await,
            Some(Notice::Message(Bytes::from_static(b"2")))
        );
        drop(tx);
        assert_eq!(
            sub.recv().await,
            Some(Notice::Message(Bytes::from_static(b"3")))
        );
        assert_eq!(sub.recv().await, None);
    }
}
