//! Cross-instance invalidation: the [`Invalidator`] trait, its in-process
//! implementation [`LocalInvalidator`], and the message format.
//!
//! Every [`Cached`](super::Cached) instance configured with an invalidator
//! publishes a message after each write that may have changed the inner
//! store, and listens (in a background task) to the messages of the others.
//!
//! # Messages
//!
//! A message names a key by a 64-bit keyed hash (SipHash-1-3 under
//! [`CacheConfig::invalidation_secret`](super::CacheConfig::invalidation_secret)),
//! never by the key itself: keys are session IDs. The receiver needs no
//! hash → key index, because the hash is also what picks the key's
//! generation slot: bumping the slot makes the entry unservable (along with
//! the few entries sharing the slot, which cost one extra read each).
//!
//! Layout (18 bytes, big endian): version `1`, kind (`1` key, `2` all),
//! the sender's random 64-bit instance id (so an instance skips its own
//! messages), and for `key` the hash. Anything else received is treated as
//! "messages may have been lost".
//!
//! With the default (public) secret, a reader of the channel learns a hash
//! of a session ID it cannot invert (IDs are random and long), and only
//! someone who can already read the store itself (the same Redis) can
//! subscribe. Where the channel crosses a trust boundary that the store
//! does not, set a secret shared by the instances.

use std::fmt;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::{broadcast, mpsc};

use crate::error::Result;

/// What a [`Subscriber`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// A message published by some instance (possibly this one).
    Message(Bytes),
    /// Messages may have been lost (a reconnect, a lagging receiver): the
    /// cache must forget everything.
    MaybeLost,
}

/// A subscription to an invalidation channel.
#[async_trait]
pub trait Subscriber: Send + 'static {
    /// The next notice; `None` when the subscription has ended for good
    /// (the cache then forgets everything and stops caching, since it can
    /// no longer hear the others' writes).
    async fn recv(&mut self) -> Option<Notice>;
}

/// A pub/sub channel carrying cache invalidations between instances.
///
/// It fits Redis pub/sub: one channel name per cache (configured by the
/// implementation), messages as bytes, `publish` as `PUBLISH`. An
/// implementation keeps its own connection and server-side subscription
/// (opened in its own async constructor) and hands out receivers from
/// [`subscribe`](Invalidator::subscribe), which is synchronous so a cache
/// can be built without an executor at hand. Whenever it (re)establishes
/// the server-side subscription after a disconnect it must deliver
/// [`Notice::MaybeLost`] to every receiver: messages published while it was
/// away are gone.
///
/// ```
/// use storestack::layers::cached::{Invalidator, LocalInvalidator};
///
/// let inv: Box<dyn Invalidator> = Box::new(LocalInvalidator::new());
/// let _subscription = inv.subscribe().unwrap();
/// ```
#[async_trait]
pub trait Invalidator: Send + Sync + fmt::Debug + 'static {
    /// Sends `message` to every subscriber, this process's included. An
    /// error is logged and counted by the cache, never returned to its
    /// caller.
    async fn publish(&self, message: Bytes) -> Result<()>;

    /// A receiver of every message published from now on.
    fn subscribe(&self) -> Result<Box<dyn Subscriber>>;
}

// Both traits are used as trait objects.
fn _object_safe(_: &dyn Invalidator, _: Box<dyn Subscriber>) {}

#[async_trait]
impl Subscriber for mpsc::Receiver<Notice> {
    async fn recv(&mut self) -> Option<Notice> {
        mpsc::Receiver::recv(self).await
    }
}

/// An in-process [`Invalidator`] on a tokio broadcast channel: for
/// several caches in one process, and for tests. Clones share the channel.
#[derive(Clone)]
pub struct LocalInvalidator {
    tx: broadcast::Sender<Bytes>,
}

impl fmt::Debug for LocalInvalidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalInvalidator")
            .field("subscribers", &self.tx.receiver_count())
            .finish()
    }
}

impl Default for LocalInvalidator {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalInvalidator {
    /// A channel buffering up to 1024 messages per subscriber.
    pub fn new() -> Self {
        Self::with_capacity(1024)
    }

    /// A channel buffering up to `capacity` messages per subscriber; a
    /// subscriber that falls further behind gets [`Notice::MaybeLost`].
    pub fn with_capacity(capacity: usize) -> Self {
        LocalInvalidator {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }
}

#[async_trait]
impl Invalidator for LocalInvalidator {
    async fn publish(&self, message: Bytes) -> Result<()> {
        // No subscriber is not an error: nobody needs telling.
        let _ = self.tx.send(message);
        Ok(())
    }

    fn subscribe(&self) -> Result<Box<dyn Subscriber>> {
        Ok(Box::new(LocalSubscriber(self.tx.subscribe())))
    }
}

struct LocalSubscriber(broadcast::Receiver<Bytes>);

#[async_trait]
impl Subscriber for LocalSubscriber {
    async fn recv(&mut self) -> Option<Notice> {
        match self.0.recv().await {
            Ok(m) => Some(Notice::Message(m)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Notice::MaybeLost),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

const VERSION: u8 = 1;
const KIND_KEY: u8 = 1;
const KIND_ALL: u8 = 2;

/// A decoded invalidation message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Message {
    Key { origin: u64, hash: u64 },
    All { origin: u64 },
}

impl Message {
    pub(super) fn origin(self) -> u64 {
        match self {
            Message::Key { origin, .. } | Message::All { origin } => origin,
        }
    }

    pub(super) fn encode(self) -> Bytes {
        let mut b = BytesMut::with_capacity(18);
        b.put_u8(VERSION);
        match self {
            Message::Key { origin, hash } => {
                b.put_u8(KIND_KEY);
                b.put_u64(origin);
                b.put_u64(hash);
            }
            Message::All { origin } => {
                b.put_u8(KIND_ALL);
                b.put_u64(origin);
            }
        }
        b.freeze()
    }

    pub(super) fn decode(b: &[u8]) -> Option<Message> {
        let u64_at = |i: usize| Some(u64::from_be_bytes(b.get(i..i + 8)?.try_into().ok()?));
        match b {
            [VERSION, KIND_KEY, ..] if b.len() == 18 => Some(Message::Key {
                origin: u64_at(2)?,
                hash: u64_at(10)?,
            }),
            [VERSION, KIND_ALL, ..] if b.len() == 10 => Some(Message::All { origin: u64_at(2)? }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        for m in [
            Message::Key {
                origin: 7,
                hash: u64::MAX,
            },
            Message::All { origin: 1 << 40 },
        ] {
            assert_eq!(Message::decode(&m.encode()), Some(m));
        }
        assert_eq!(Message::Key { origin: 1, hash: 2 }.encode().len(), 18);
        for bad in [
            &b""[..],
            b"\x01",
            b"\x02\x01aaaaaaaabbbbbbbb",
            b"\x01\x01short",
            b"\x01\x03aaaaaaaa",
        ] {
            assert_eq!(Message::decode(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn local_invalidator_delivers_and_reports_lag() {
        let inv = LocalInvalidator::with_capacity(2);
        let mut sub = inv.subscribe().unwrap();
        inv.publish(Bytes::from_static(b"a")).await.unwrap();
        assert_eq!(
            sub.recv().await,
            Some(Notice::Message(Bytes::from_static(b"a")))
        );
        for m in [&b"1"[..], b"2", b"3"] {
            inv.publish(Bytes::copy_from_slice(m)).await.unwrap();
        }
        assert_eq!(sub.recv().await, Some(Notice::MaybeLost));
        drop(inv);
        assert_eq!(
            sub.recv().await,
            Some(Notice::Message(Bytes::from_static(b"2")))
        );
        assert_eq!(
            sub.recv().await,
            Some(Notice::Message(Bytes::from_static(b"3")))
        );
        assert_eq!(sub.recv().await, None);
    }
}
