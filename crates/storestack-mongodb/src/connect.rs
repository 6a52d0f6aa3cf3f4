//! Connecting: driver options, the client, the TTL index.

use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{doc, RawDocumentBuf};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, IndexModel};
use storestack::limits::Limits;
use storestack::{ErrorKind, Op, Result, StoreError};

use crate::config::{
    MongoConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_SERVER_SELECTION_TIMEOUT, MAX_VALUE_LEN,
};
use crate::document::EXPIRES_FIELD;
use crate::error::{from_driver, STORE};
use crate::store::{timed_out, Inner, MongoStore};

/// The name of the TTL index on [`EXPIRES_FIELD`].
pub const TTL_INDEX_NAME: &str = "storestack_expires_at_ttl";
/// Server error codes of an index that exists with other options or
/// another name.
const INDEX_CONFLICT_CODES: [i32; 2] = [85, 86];

impl MongoConfig {
    /// The driver options this configuration gives: the URI's options with
    /// the pool sizes and timeouts of this configuration applied. Useful to
    /// build a raw [`Client`] that behaves like the store's (benchmarks).
    pub async fn client_options(&self) -> Result<ClientOptions> {
        let parse = ClientOptions::parse(&self.uri);
        let mut opts = match tokio::time::timeout(self.operation_timeout, parse).await {
            Ok(Ok(opts)) => opts,
            // The driver's message may quote parts of the URI, credentials
            // included: keep only the kind.
            Ok(Err(e)) => {
                let (kind, message) = match *e.kind {
                    mongodb::error::ErrorKind::InvalidArgument { .. } => {
                        (ErrorKind::InvalidInput, "invalid connection string")
                    }
                    _ => (
                        ErrorKind::Unavailable,
                        "cannot resolve the connection string",
                    ),
                };
                return Err(StoreError::new(kind, Op::Connect)
                    .with_store(STORE)
                    .with_message(message));
            }
            Err(_) => return Err(timed_out(Op::Connect, self.operation_timeout)),
        };
        opts.min_pool_size = self.min_pool_size.or(opts.min_pool_size);
        opts.max_pool_size = self.max_pool_size.or(opts.max_pool_size);
        opts.connect_timeout = self
            .connect_timeout
            .or(opts.connect_timeout)
            .or(Some(DEFAULT_CONNECT_TIMEOUT));
        opts.server_selection_timeout = self
            .server_selection_timeout
            .or(opts.server_selection_timeout)
            .or(Some(DEFAULT_SERVER_SELECTION_TIMEOUT));
        opts.app_name.get_or_insert_with(|| "storestack".to_owned());
        Ok(opts)
    }
}

impl MongoStore {
    /// Connects and creates the TTL index on [`EXPIRES_FIELD`] if it is
    /// missing (idempotent). Fails with `Unavailable` or `Timeout` if the
    /// server cannot be reached within the configured timeouts, and with
    /// `InvalidInput` for a bad configuration or a conflicting index.
    pub async fn connect(config: MongoConfig) -> Result<Self> {
        let invalid = |message: &'static str| {
            StoreError::invalid_input(Op::Connect)
                .with_store(STORE)
                .with_message(message)
        };
        if config.max_value_len > MAX_VALUE_LEN {
            return Err(invalid("max_value_len is over the 16 MiB document limit"));
        }
        if config.database.is_empty() || config.collection.is_empty() {
            return Err(invalid("database and collection names must not be empty"));
        }
        let opts = config.client_options().await?;
        let client = Client::with_options(opts).map_err(|e| from_driver(Op::Connect, e))?;
        let collection = client
            .database(&config.database)
            .collection::<RawDocumentBuf>(&config.collection);
        let store = MongoStore {
            inner: Arc::new(Inner {
                client,
                collection,
                limits: Limits::default().max_value_len(config.max_value_len),
                config,
            }),
        };
        store.timed(Op::Connect, store.ensure_ttl_index()).await?;
        Ok(store)
    }

    async fn ensure_ttl_index(&self) -> Result<()> {
        let options = IndexOptions::builder()
            .name(TTL_INDEX_NAME.to_owned())
            .expire_after(Duration::ZERO)
            .build();
        let model = IndexModel::builder()
            .keys(doc! { EXPIRES_FIELD: 1 })
            .options(options)
            .build();
        let err = match self.collection().create_index(model).await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let conflict = matches!(&*err.kind, mongodb::error::ErrorKind::Command(c)
            if INDEX_CONFLICT_CODES.contains(&c.code));
        if !conflict {
            return Err(from_driver(Op::Connect, err));
        }
        // An index on the field exists under another name: fine if it is
        // the same TTL index.
        let indexes = self.collection().list_indexes().await;
        let mut cursor = indexes.map_err(|e| from_driver(Op::Connect, e))?;
        while cursor
            .advance()
            .await
            .map_err(|e| from_driver(Op::Connect, e))?
        {
            let index = cursor
                .deserialize_current()
                .map_err(|e| from_driver(Op::Connect, e))?;
            let ttl = index.options.as_ref().and_then(|o| o.expire_after);
            if index.keys == doc! { EXPIRES_FIELD: 1 } && ttl == Some(Duration::ZERO) {
                return Ok(());
            }
        }
        Err(StoreError::invalid_input(Op::Connect)
            .with_store(STORE)
            .with_message(format!(
                "the collection has an index on {EXPIRES_FIELD} that is not a TTL index \
                 with expireAfterSeconds 0"
            ))
            .with_source(err))
    }
}
