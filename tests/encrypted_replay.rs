//! An attacker who can write the database copies a sealed session value
//! from one key to another directly in the backend (Redis `COPY`, a
//! MongoDB document inserted again under another `_id`): `Encrypted` binds
//! each value to its key as associated data, so the copy reads as
//! `Corrupt` (a fresh session for the tower-sessions adapter), never as
//! the victim's session.

use storestack::{ErrorKind, Key, Keyring, Record, Store, StoreExt};
use storestack_mongodb::mongodb::bson::{doc, Document};
use storestack_redis::fred::interfaces::KeysInterface;
use storestack_tests::{mongo, redis};

const VICTIM: &str = "sess-victim";
const ATTACKER: &str = "sess-attacker";

fn keyring() -> Keyring {
    Keyring::new(Key::generate("replay").expect("a key"))
}

#[tokio::test]
async fn a_value_copied_in_redis_is_corrupt() {
    let Some(backend) = redis::shared_store("replay", |c| c).await else {
        return;
    };
    let store = backend.clone().encrypted(keyring());
    store
        .set(VICTIM, Record::never_expiring("user=alice;admin=1"))
        .await
        .unwrap();
    let prefix = backend.key_prefix().to_owned();
    let copied: bool = backend
        .pool()
        .copy(
            format!("{prefix}{VICTIM}"),
            format!("{prefix}{ATTACKER}"),
            None,
            false,
        )
        .await
        .expect("COPY");
    assert!(copied);
    // The bytes are there, under the attacker's key...
    assert!(backend.get(ATTACKER).await.unwrap().is_some());
    // ...but they do not open there.
    let err = store.get(ATTACKER).await.expect_err("replayed");
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
    assert_eq!(
        store.get(VICTIM).await.unwrap().unwrap().value,
        "user=alice;admin=1"
    );
    store.clear().await.unwrap();
}

#[tokio::test]
async fn a_document_copied_in_mongodb_is_corrupt() {
    let Some(backend) = mongo::connect_or_skip(mongo::config("replay")).await else {
        return;
    };
    let store = backend.clone().encrypted(keyring());
    store
        .set(VICTIM, Record::never_expiring("user=alice;admin=1"))
        .await
        .unwrap();
    let raw = backend.collection().clone_with_type::<Document>();
    let mut doc = raw
        .find_one(doc! { "_id": VICTIM })
        .await
        .unwrap()
        .expect("the victim's document");
    doc.insert("_id", ATTACKER);
    raw.insert_one(doc).await.expect("insert the copy");
    assert!(backend.get(ATTACKER).await.unwrap().is_some());
    let err = store.get(ATTACKER).await.expect_err("replayed");
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
    assert_eq!(
        store.get(VICTIM).await.unwrap().unwrap().value,
        "user=alice;admin=1"
    );
    raw.drop().await.unwrap();
}
