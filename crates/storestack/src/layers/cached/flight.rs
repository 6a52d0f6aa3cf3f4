//! Single-flight: concurrent misses on one key share one inner read.
//!
//! The first miss becomes the *leader*: it registers a flight tagged with
//! the key's [`Tag`] taken before its inner read, reads, and hands the
//! result to every *follower* that joined meanwhile. A caller joins only a
//! flight whose tag covers its own start (the read began after every write
//! the caller must see); otherwise it leads a new one. If the leader is
//! cancelled, its followers see the flight end without a result and retry.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::generation::{Generations, Tag};
use crate::error::{Result, StoreError};
use crate::store::Record;

const SHARDS: usize = 32;

type Outcome = Option<std::result::Result<Option<Record>, SharedError>>;

/// What followers learn of a failed read: everything but the source chain,
/// which stays with the leader's caller.
#[derive(Clone)]
struct SharedError {
    kind: crate::ErrorKind,
    op: crate::Op,
    store: String,
    message: String,
}

impl SharedError {
    fn of(e: &StoreError) -> Self {
        SharedError {
            kind: e.kind(),
            op: e.op(),
            store: e.store().to_owned(),
            message: e.message().to_owned(),
        }
    }

    fn to_error(&self) -> StoreError {
        StoreError::new(self.kind, self.op)
            .with_store(self.store.clone())
            .with_message(self.message.clone())
    }
}

struct Flight {
    tag: Tag,
    tx: watch::Sender<Outcome>,
}

#[derive(Default)]
pub(super) struct Flights {
    shards: [Mutex<HashMap<String, Arc<Flight>>>; SHARDS],
}

pub(super) enum Role<'a> {
    Leader(Leader<'a>),
    Follower(Follower),
}

impl Flights {
    /// Joins the flight for `key` if one covers `start`, or starts one.
    pub(super) fn join(&self, gens: &Generations, hash: u64, key: &str, start: Tag) -> Role<'_> {
        let shard = &self.shards[(hash >> 59) as usize % SHARDS];
        let mut map = shard.lock();
        if let Some(f) = map.get(key) {
            if f.tag.covers(start) {
                return Role::Follower(Follower(f.tx.subscribe()));
            }
        }
        let flight = Arc::new(Flight {
            // Taken under the shard lock and before the leader reads.
            tag: gens.tag(hash),
            tx: watch::channel(None).0,
        });
        map.insert(key.to_owned(), flight.clone());
        Role::Leader(Leader {
            shard,
            key: key.to_owned(),
            flight,
        })
    }
}

/// The caller that reads for everyone. Dropping it without
/// [`complete`](Leader::complete) ends the flight without a result.
pub(super) struct Leader<'a> {
    shard: &'a Mutex<HashMap<String, Arc<Flight>>>,
    key: String,
    flight: Arc<Flight>,
}

impl Leader<'_> {
    /// The tag the read is stored with.
    pub(super) fn tag(&self) -> Tag {
        self.flight.tag
    }

    /// Hands `result` to the followers.
    pub(super) fn complete(self, result: &Result<Option<Record>>) {
        if self.flight.tx.receiver_count() > 0 {
            let shared = match result {
                Ok(r) => Ok(r.clone()),
                Err(e) => Err(SharedError::of(e)),
            };
            self.flight.tx.send_replace(Some(shared));
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut map = self.shard.lock();
        if map
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            map.remove(&self.key);
        }
    }
}

/// A caller waiting for a leader's read.
pub(super) struct Follower(watch::Receiver<Outcome>);

impl Follower {
    /// The leader's result, or `None` if the leader was cancelled.
    pub(super) async fn wait(mut self) -> Option<Result<Option<Record>>> {
        let outcome = self.0.wait_for(Option::is_some).await.ok()?;
        match outcome.as_ref()? {
            Ok(r) => Some(Ok(r.clone())),
            Err(e) => Some(Err(e.to_error())),
        }
    }
}
