//! [`MongoStore`]: the `Store` impl.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use mongodb::bson::raw::RawBsonRef;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, DateTime, RawDocumentBuf};
use mongodb::{Client, Collection};
use storestack::limits::{self, Limits};
use storestack::{
    Condition, Op, Record, Result, ScanCursor, ScanPage, Store, StoreError, Versioned,
};

use crate::config::MongoConfig;
use crate::document::{
    decode_expiry, decode_record, encode, live_at, live_key, EXPIRES_FIELD, VALUE_FIELD,
};
use crate::error::{corrupt, from_driver, is_duplicate_key, STORE};
use crate::scan::id_range;

/// The most keys one scan page returns, whatever the limit asked.
const MAX_SCAN_PAGE: usize = 10_000;

/// A [`Store`] on a MongoDB collection, one document per key. See the
/// [crate docs](crate) for the document layout and the guarantees.
///
/// Cheap to clone: clones share the client and its connection pool.
#[derive(Clone)]
pub struct MongoStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) collection: Collection<RawDocumentBuf>,
    pub(crate) config: MongoConfig,
    pub(crate) limits: Limits,
}

impl fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl MongoStore {
    /// The driver client (shared by clones of this store).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The collection holding this store's documents.
    pub fn collection(&self) -> &Collection<RawDocumentBuf> {
        &self.inner.collection
    }

    /// The configuration the store was connected with.
    pub fn config(&self) -> &MongoConfig {
        &self.inner.config
    }

    /// Runs `fut` within the operation timeout.
    pub(crate) async fn timed<T>(&self, op: Op, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let limit = self.inner.config.operation_timeout;
        tokio::time::timeout(limit, fut)
            .await
            .unwrap_or_else(|_| Err(timed_out(op, limit)))
    }

    fn now(&self) -> SystemTime {
        self.inner.config.clock.now()
    }
}

pub(crate) fn timed_out(op: Op, limit: Duration) -> StoreError {
    StoreError::timeout(op)
        .with_store(STORE)
        .with_message(format!("no answer within {} ms", limit.as_millis()))
}

#[async_trait]
impl Store for MongoStore {
    fn name(&self) -> &str {
        STORE
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.read(Op::Get, key).await
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.inner.limits.check_write(Op::Set, key, &record)?;
        if record.is_expired_at(self.now()) {
            let delete = self.collection().delete_one(doc! { "_id": key });
            return self
                .timed(Op::Set, async {
                    delete.await.map_err(|e| from_driver(Op::Set, e))?;
                    Ok(())
                })
                .await;
        }
        let body = encode(None, &record);
        self.timed(Op::Set, async {
            let replace = || {
                self.collection()
                    .replace_one(doc! { "_id": key }, &body)
                    .upsert(true)
            };
            match replace().await {
                Ok(_) => Ok(()),
                // Two first writes of a key raced and both tried to insert.
                // Servers before 4.2 leave it to the client; once is
                // enough, the document now exists.
                Err(e) if is_duplicate_key(&e) => replace()
                    .await
                    .map(drop)
                    .map_err(|e| from_driver(Op::Set, e)),
                Err(e) => Err(from_driver(Op::Set, e)),
            }
        })
        .await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.inner.limits.check_write(Op::Create, key, &record)?;
        let now = self.now();
        let coll = self.collection();
        if record.is_expired_at(now) {
            // Stores nothing; succeeds unless a live record is there.
            let find = coll
                .find_one(live_key(key, now))
                .projection(doc! { "_id": 1 });
            let live = self
                .timed(Op::Create, async {
                    find.await.map_err(|e| from_driver(Op::Create, e))
                })
                .await?;
            return Ok(live.is_none());
        }
        let doc = encode(Some(key), &record);
        self.timed(Op::Create, async {
            match coll.insert_one(&doc).await {
                Ok(_) => return Ok(true),
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(from_driver(Op::Create, e)),
            }
            // The key exists. It must not block us if it is expired (the
            // TTL monitor lags): replace it only if it still is, in one
            // atomic, filtered upsert. A live document makes the filter
            // miss, the upsert collide on `_id`, and the answer `false`; a
            // document deleted meanwhile makes the upsert insert.
            let mut expired = doc! { "_id": key };
            expired.insert(
                EXPIRES_FIELD,
                doc! { "$lte": DateTime::from_system_time(now) },
            );
            let body = encode(None, &record);
            match coll.replace_one(expired, &body).upsert(true).await {
                Ok(r) => Ok(r.matched_count > 0 || r.upserted_id.is_some()),
                Err(e) if is_duplicate_key(&e) => Ok(false),
                Err(e) => Err(from_driver(Op::Create, e)),
            }
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        limits::check_key(Op::Delete, key)?;
        self.remove(Op::Delete, key).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        limits::check_key(Op::Touch, key)?;
        limits::check_expiry(Op::Touch, expires_at)?;
        let now = self.now();
        if storestack::store::is_expired(expires_at, now) {
            return self.remove(Op::Touch, key).await;
        }
        let expiry = match expires_at {
            Some(at) => DateTime::from_system_time(at).into(),
            None => mongodb::bson::Bson::Null,
        };
        let update = self.collection().update_one(
            live_key(key, now),
            doc! { "$set": { EXPIRES_FIELD: expiry } },
        );
        self.timed(Op::Touch, async {
            let r = update.await.map_err(|e| from_driver(Op::Touch, e))?;
            Ok(r.matched_count > 0)
        })
        .await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        let limit = limit.clamp(1, MAX_SCAN_PAGE);
        let mut filter = live_at(self.now());
        filter.insert("_id", id_range(prefix, cursor.token()));
        // One more than the page, to know whether another page follows.
        let find = self
            .collection()
            .find(filter)
            .sort(doc! { "_id": 1 })
            .projection(doc! { "_id": 1 })
            .limit(limit as i64 + 1)
            .batch_size(limit as u32 + 1);
        self.timed(Op::Scan, async {
            let err = |e| from_driver(Op::Scan, e);
            let mut docs = find.await.map_err(err)?;
            let mut keys = Vec::with_capacity(limit + 1);
            while docs.advance().await.map_err(err)? {
                match docs.current().get("_id") {
                    Ok(Some(RawBsonRef::String(id))) => keys.push(id.to_owned()),
                    _ => return Err(corrupt(Op::Scan, "scanned _id is not a string")),
                }
            }
            let next = (keys.len() > limit).then(|| {
                keys.truncate(limit);
                ScanCursor::from_token(keys[limit - 1].clone())
            });
            Ok(ScanPage { keys, next })
        })
        .await
    }

    async fn len(&self) -> Result<u64> {
        let count = self.collection().count_documents(live_at(self.now()));
        self.timed(Op::Len, async {
            count.await.map_err(|e| from_driver(Op::Len, e))
        })
        .await
    }

    async fn clear(&self) -> Result<()> {
        let delete = self.collection().delete_many(doc! {});
        self.timed(Op::Clear, async {
            delete.await.map_err(|e| from_driver(Op::Clear, e))?;
            Ok(())
        })
        .await
    }

    /// `get`'s one `find`; the version is the value read.
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let found = self.read(Op::GetVersioned, key).await?;
        Ok(found.map(Versioned::stored))
    }

    /// One filtered write: `replace_one` (or, for an expired record,
    /// `delete_one`) on `{_id, live, value: <the version's bytes>}`, never
    /// an upsert.
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        let op = Op::SetIf;
        self.inner.limits.check_write(op, key, &record)?;
        let now = self.now();
        let mut filter = live_key(key, now);
        if let Condition::Matches(version) = &condition {
            let bytes = Binary {
                subtype: BinarySubtype::Generic,
                bytes: version.stored().to_vec(),
            };
            filter.insert(VALUE_FIELD, bytes);
        }
        let coll = self.collection();
        if record.is_expired_at(now) {
            let delete = coll.delete_one(filter);
            return self
                .timed(op, async {
                    let r = delete.await.map_err(|e| from_driver(op, e))?;
                    Ok(r.deleted_count > 0)
                })
                .await;
        }
        let body = encode(None, &record);
        self.timed(op, async {
            let r = coll
                .replace_one(filter, &body)
                .await
                .map_err(|e| from_driver(op, e))?;
            Ok(r.matched_count > 0)
        })
        .await
    }
}

impl MongoStore {
    /// The live record at `key`: one `find`.
    async fn read(&self, op: Op, key: &str) -> Result<Option<Record>> {
        limits::check_key(op, key)?;
        let found = self
            .timed(op, async {
                let find = self.collection().find_one(doc! { "_id": key });
                find.await.map_err(|e| from_driver(op, e))
            })
            .await?;
        let Some(doc) = found else { return Ok(None) };
        let record = decode_record(op, doc)?;
        Ok(Some(record).filter(|r| !r.is_expired_at(self.now())))
    }

    /// Deletes the document of `key`, expired or not, and says whether it
    /// was live: one `findAndModify`, so an expired document is reclaimed
    /// now rather than at the TTL monitor's next pass.
    async fn remove(&self, op: Op, key: &str) -> Result<bool> {
        let delete = self
            .collection()
            .find_one_and_delete(doc! { "_id": key })
            .projection(doc! { "_id": 0, EXPIRES_FIELD: 1 });
        let removed = self
            .timed(op, async { delete.await.map_err(|e| from_driver(op, e)) })
            .await?;
        match removed {
            Some(doc) => Ok(!storestack::store::is_expired(
                decode_expiry(op, &doc)?,
                self.now(),
            )),
            None => Ok(false),
        }
    }
}
