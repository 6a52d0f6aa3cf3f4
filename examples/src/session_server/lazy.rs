//! [`Reconnecting`]: a store that connects in the background, so the
//! server starts (and serves, degraded) while a store is unreachable.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use storestack::{
    async_trait, Condition, Op, Record, Result, ScanCursor, ScanPage, Store, StoreError, Versioned,
};

/// A store connected by a background task: until it is, every call fails
/// at once with `Unavailable` (a transient error, so breakers, the
/// fallback and degradation treat it as the outage it is).
#[derive(Clone)]
pub(crate) struct Reconnecting<S> {
    name: &'static str,
    store: Arc<OnceLock<S>>,
}

impl<S: Store> Reconnecting<S> {
    /// Calls `connect` now, and again every `every` in the background while
    /// it fails with a transient error; any other error is returned.
    pub(crate) async fn connect<F, Fut>(
        name: &'static str,
        every: Duration,
        connect: F,
    ) -> Result<Self>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<S>> + Send,
    {
        let store = Arc::new(OnceLock::new());
        match connect().await {
            Ok(s) => {
                let _ = store.set(s);
            }
            Err(err) if err.is_transient() => {
                tracing::warn!(store = name, error = %err, "store unreachable at start: connecting in the background");
                let slot = Arc::clone(&store);
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        match connect().await {
                            Ok(s) => {
                                tracing::info!(store = name, "store connected");
                                let _ = slot.set(s);
                                return;
                            }
                            Err(err) if err.is_transient() => {
                                tracing::debug!(store = name, error = %err, "store still unreachable");
                            }
                            Err(err) => {
                                tracing::error!(store = name, error = %err, "store cannot be connected");
                                return;
                            }
                        }
                    }
                });
            }
            Err(err) => return Err(err),
        }
        Ok(Reconnecting { name, store })
    }

    fn get_store(&self, op: Op) -> Result<&S> {
        self.store.get().ok_or_else(|| {
            StoreError::unavailable(op)
                .with_store(self.name)
                .with_message("not connected yet")
        })
    }
}

#[async_trait]
impl<S: Store> Store for Reconnecting<S> {
    fn name(&self) -> &str {
        self.name
    }
    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.get_store(Op::Get)?.get(key).await
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.get_store(Op::GetVersioned)?.get_versioned(key).await
    }
    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.get_store(Op::Set)?.set(key, record).await
    }
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.get_store(Op::SetIf)?
            .set_if(key, record, condition)
            .await
    }
    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.get_store(Op::Create)?.create(key, record).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.get_store(Op::Delete)?.delete(key).await
    }
    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.get_store(Op::Touch)?.touch(key, expires_at).await
    }
    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.get_store(Op::Scan)?.scan(prefix, cursor, limit).await
    }
    async fn len(&self) -> Result<u64> {
        self.get_store(Op::Len)?.len().await
    }
    async fn clear(&self) -> Result<()> {
        self.get_store(Op::Clear)?.clear().await
    }
}
