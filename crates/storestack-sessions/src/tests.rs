use std::time::SystemTime;

use time::OffsetDateTime;

use storestack::clock::MockClock;
use storestack::{async_trait, MemoryConfig, MemoryStore, Op, ScanCursor, ScanPage};
use tower_sessions_core::SessionStore as _;

use super::*;

fn session(expires_in: time::Duration) -> SessionRecord {
    let mut data = Data::new();
    data.insert("user".into(), "ada".into());
    data.insert("views".into(), 3.into());
    SessionRecord {
        id: Id::default(),
        data,
        expiry_date: OffsetDateTime::now_utc() + expires_in,
    }
}

#[tokio::test]
async fn save_load_round_trip_keeps_data_and_expiry() {
    let store = SessionStore::new(MemoryStore::new());
    let mut record = session(time::Duration::hours(1));
    store.create(&mut record).await.unwrap();
    let mut loaded = store.load(&record.id).await.unwrap().expect("session");
    assert!(loaded.data.remove(SNAPSHOT_KEY).is_some());
    assert_eq!(loaded.data, record.data);
    let drift = (loaded.expiry_date - record.expiry_date).abs();
    assert!(drift < time::Duration::milliseconds(1), "{drift}");
    store.delete(&record.id).await.unwrap();
    assert!(store.load(&record.id).await.unwrap().is_none());
}

#[tokio::test]
async fn create_never_overwrites_a_colliding_id() {
    let mem = MemoryStore::new();
    let store = SessionStore::new(mem.clone());
    let mut victim = session(time::Duration::hours(1));
    store.create(&mut victim).await.unwrap();

    let mut attacker = session(time::Duration::hours(1));
    attacker.data.insert("user".into(), "mallory".into());
    attacker.id = victim.id;
    store.create(&mut attacker).await.unwrap();

    assert_ne!(attacker.id, victim.id, "a fresh id was drawn");
    let kept = store.load(&victim.id).await.unwrap().unwrap();
    assert_eq!(kept.data["user"], "ada");
    let fresh = store.load(&attacker.id).await.unwrap().unwrap();
    assert_eq!(fresh.data["user"], "mallory");
}

#[tokio::test]
async fn expired_session_is_not_loaded() {
    let clock = MockClock::new();
    let mem = MemoryStore::with_config(MemoryConfig::default().clock(clock.clone()));
    let store = SessionStore::new(mem);
    let mut record = session(time::Duration::minutes(5));
    store.create(&mut record).await.unwrap();
    assert!(store.load(&record.id).await.unwrap().is_some());
    clock.advance(std::time::Duration::from_secs(301));
    assert!(store.load(&record.id).await.unwrap().is_none());
}

#[tokio::test]
async fn save_never_recreates_a_missing_session() {
    let store = SessionStore::new(MemoryStore::new());
    let record = session(time::Duration::hours(1));
    store.save(&record).await.unwrap();
    assert!(store.load(&record.id).await.unwrap().is_none());
}

#[tokio::test]
async fn tampered_value_is_a_fresh_session_not_an_error() {
    let mem = MemoryStore::new();
    let store = SessionStore::new(mem.clone());
    let mut record = session(time::Duration::hours(1));
    store.create(&mut record).await.unwrap();
    let key = record.id.to_string();
    mem.set(&key, Record::never_expiring(&b"\xc1garbage"[..]))
        .await
        .unwrap();
    assert!(store.load(&record.id).await.unwrap().is_none());
}

/// A store whose every call fails with `kind`.
struct Failing(ErrorKind);

#[async_trait]
impl Store for Failing {
    fn name(&self) -> &str {
        "failing"
    }
    async fn get(&self, _: &str) -> storestack::Result<Option<Record>> {
        Err(StoreError::new(self.0, Op::Get).with_store("failing"))
    }
    async fn set(&self, _: &str, _: Record) -> storestack::Result<()> {
        Err(StoreError::new(self.0, Op::Set).with_store("failing"))
    }
    async fn create(&self, _: &str, _: Record) -> storestack::Result<bool> {
        Err(StoreError::new(self.0, Op::Create).with_store("failing"))
    }
    async fn delete(&self, _: &str) -> storestack::Result<bool> {
        Err(StoreError::new(self.0, Op::Delete).with_store("failing"))
    }
    async fn touch(&self, _: &str, _: Option<SystemTime>) -> storestack::Result<bool> {
        Err(StoreError::new(self.0, Op::Touch).with_store("failing"))
    }
    async fn scan(&self, _: &str, _: ScanCursor, _: usize) -> storestack::Result<ScanPage> {
        Err(StoreError::new(self.0, Op::Scan).with_store("failing"))
    }
    async fn len(&self) -> storestack::Result<u64> {
        Err(StoreError::new(self.0, Op::Len).with_store("failing"))
    }
    async fn clear(&self) -> storestack::Result<()> {
        Err(StoreError::new(self.0, Op::Clear).with_store("failing"))
    }
    async fn get_versioned(&self, _: &str) -> storestack::Result<Option<storestack::Versioned>> {
        Err(StoreError::new(self.0, Op::GetVersioned).with_store("failing"))
    }
    async fn set_if(
        &self,
        _: &str,
        _: Record,
        _: storestack::Condition,
    ) -> storestack::Result<bool> {
        Err(StoreError::new(self.0, Op::SetIf).with_store("failing"))
    }
}

#[tokio::test]
async fn outage_is_an_error_but_corruption_is_not() {
    let id = Id::default();
    let down = SessionStore::new(Failing(ErrorKind::Unavailable));
    let err = down.load(&id).await.unwrap_err();
    assert!(err.to_string().contains("unavailable"), "{err}");
    assert!(down.save(&session(time::Duration::hours(1))).await.is_err());

    let corrupt = SessionStore::new(Failing(ErrorKind::Corrupt));
    assert!(corrupt.load(&id).await.unwrap().is_none());
}

#[test]
fn debug_shows_store_name_only() {
    let store = SessionStore::new(MemoryStore::new());
    assert_eq!(format!("{store:?}"), "SessionStore { store: \"memory\" }");
}
