use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_session::storage::SessionStore as _;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::http::StatusCode;
use actix_web::test as web_test;
use actix_web::{web, App, HttpResponse};
use storestack::clock::{Clock, MockClock};
use storestack::{
    async_trait, ErrorKind, FaultConfig, MemoryConfig, MemoryStore, ScanCursor, ScanPage, StoreExt,
};

use super::*;

fn state(views: u32) -> StringMap {
    let mut state = StringMap::new();
    state.insert("user".into(), "\"ada\"".into());
    state.insert("views".into(), views.to_string());
    state
}

const HOUR: time::Duration = time::Duration::HOUR;

fn key(s: &str) -> SessionKey {
    s.to_owned().try_into().unwrap()
}

#[tokio::test]
async fn save_load_update_delete() {
    let store = SessionStore::new(MemoryStore::new());
    let k = store.save(state(1), &HOUR).await.unwrap();
    assert_eq!(k.as_ref().len(), 64);
    assert_eq!(store.load(&k).await.unwrap(), Some(state(1)));

    let same = store.update(k, state(2), &HOUR).await.unwrap();
    assert_eq!(store.load(&same).await.unwrap(), Some(state(2)));

    store.delete(&same).await.unwrap();
    assert_eq!(store.load(&same).await.unwrap(), None);
    store.delete(&same).await.expect("deleting twice is fine");
}

/// The logout race of issue #22: a slow request loaded the session, the
/// user logged out (delete), the slow request saves: the session stays
/// deleted, under every interleaving of the two.
#[tokio::test]
async fn an_update_never_recreates_a_deleted_session() {
    let store = SessionStore::new(MemoryStore::new());
    for _ in 0..200 {
        let k = store.save(state(1), &HOUR).await.unwrap();
        let _loaded = store.load(&k).await.unwrap(); // the slow request
        store.delete(&k).await.unwrap(); // the logout
        let same = store.update(k, state(2), &HOUR).await.unwrap();
        assert_eq!(store.load(&same).await.unwrap(), None, "logout undone");
    }
}

#[tokio::test]
async fn ttl_is_an_absolute_expiry() {
    let clock = MockClock::new();
    let mem = MemoryStore::with_config(MemoryConfig::default().clock(clock.clone()));
    let store = SessionStore::new(mem.clone()).clock(clock.clone());
    let ttl = time::Duration::minutes(5);
    let k = store.save(state(1), &ttl).await.unwrap();
    let stored = mem.get(k.as_ref()).await.unwrap().unwrap();
    assert_eq!(
        stored.expires_at,
        Some(clock.now() + Duration::from_secs(300))
    );

    clock.advance(Duration::from_secs(200));
    store.update_ttl(&k, &ttl).await.unwrap();
    clock.advance(Duration::from_secs(200));
    assert!(store.load(&k).await.unwrap().is_some(), "extended");
    clock.advance(Duration::from_secs(101));
    assert!(store.load(&k).await.unwrap().is_none(), "expired");
}

#[tokio::test]
async fn tampered_or_foreign_bytes_are_no_session() {
    let mem = MemoryStore::new();
    let store = SessionStore::new(mem.clone());
    let k = store.save(state(1), &HOUR).await.unwrap();
    mem.set(k.as_ref(), Record::never_expiring(&b"\xc1garbage"[..]))
        .await
        .unwrap();
    assert_eq!(store.load(&k).await.unwrap(), None);
    // A tower-sessions record (JSON values, not strings) is not an actix
    // session either.
    mem.set(k.as_ref(), Record::never_expiring(&b"\x81\xa1n\x01"[..]))
        .await
        .unwrap();
    assert_eq!(store.load(&k).await.unwrap(), None);
}

#[tokio::test]
async fn outage_is_an_error_but_corruption_is_not() {
    let backend = MemoryStore::new().fault_injection(FaultConfig::default());
    let faults = backend.handle();
    let store = SessionStore::new(backend);
    let k = store.save(state(1), &HOUR).await.unwrap();

    faults.set_down(true);
    let err = store.load(&k).await.unwrap_err();
    assert!(matches!(err, LoadError::Other(_)));
    let cause = err.source_store_error().expect("the store error inside");
    assert_eq!(cause.kind(), ErrorKind::Unavailable);
    assert!(matches!(
        store.save(state(1), &HOUR).await,
        Err(SaveError::Other(_))
    ));
    assert!(matches!(
        store.update(key("x"), state(1), &HOUR).await,
        Err(UpdateError::Other(_))
    ));
    assert!(store.update_ttl(&k, &HOUR).await.is_err());
    assert!(store.delete(&k).await.is_err());

    faults.set_down(false);
    faults.set_error_kind(ErrorKind::Corrupt);
    faults.set_error_rate(1.0);
    assert_eq!(store.load(&k).await.unwrap(), None);
}

trait SourceStoreError {
    fn source_store_error(&self) -> Option<&StoreError>;
}

impl SourceStoreError for LoadError {
    fn source_store_error(&self) -> Option<&StoreError> {
        let LoadError::Other(e) = self else {
            return None;
        };
        e.downcast_ref()
    }
}

/// A memory store whose first `collisions` creates report an existing key.
struct Colliding {
    inner: MemoryStore,
    collisions: usize,
    creates: AtomicUsize,
}

#[async_trait]
impl Store for Colliding {
    fn name(&self) -> &str {
        "colliding"
    }
    async fn get(&self, key: &str) -> storestack::Result<Option<Record>> {
        self.inner.get(key).await
    }
    async fn get_versioned(&self, key: &str) -> storestack::Result<Option<storestack::Versioned>> {
        self.inner.get_versioned(key).await
    }
    async fn set(&self, key: &str, record: Record) -> storestack::Result<()> {
        self.inner.set(key, record).await
    }
    async fn set_if(
        &self,
        key: &str,
        record: Record,
        condition: storestack::Condition,
    ) -> storestack::Result<bool> {
        self.inner.set_if(key, record, condition).await
    }
    async fn create(&self, key: &str, record: Record) -> storestack::Result<bool> {
        if self.creates.fetch_add(1, Ordering::SeqCst) < self.collisions {
            return Ok(false);
        }
        self.inner.create(key, record).await
    }
    async fn delete(&self, key: &str) -> storestack::Result<bool> {
        self.inner.delete(key).await
    }
    async fn touch(&self, key: &str, at: Option<SystemTime>) -> storestack::Result<bool> {
        self.inner.touch(key, at).await
    }
    async fn scan(&self, p: &str, c: ScanCursor, n: usize) -> storestack::Result<ScanPage> {
        self.inner.scan(p, c, n).await
    }
    async fn len(&self) -> storestack::Result<u64> {
        self.inner.len().await
    }
    async fn clear(&self) -> storestack::Result<()> {
        self.inner.clear().await
    }
}

#[tokio::test]
async fn a_collision_draws_a_fresh_key_and_never_overwrites() {
    let colliding = |collisions| Colliding {
        inner: MemoryStore::new(),
        collisions,
        creates: AtomicUsize::new(0),
    };
    let store = SessionStore::new(colliding(2));
    let k = store.save(state(7), &HOUR).await.unwrap();
    assert_eq!(store.get_ref().creates.load(Ordering::SeqCst), 3);
    assert_eq!(store.load(&k).await.unwrap(), Some(state(7)));

    let hopeless = SessionStore::new(colliding(usize::MAX));
    let err = hopeless.save(state(1), &HOUR).await.unwrap_err();
    assert!(err.to_string().contains("persisting"), "{err}");
    assert_eq!(hopeless.get_ref().inner.len().await.unwrap(), 0);
}

#[test]
fn debug_shows_store_name_only() {
    let store = SessionStore::new(MemoryStore::new());
    assert_eq!(format!("{store:?}"), "SessionStore { store: \"memory\" }");
}

async fn count(session: Session) -> actix_web::Result<String> {
    let views = session.get::<u64>("views")?.unwrap_or(0) + 1;
    session.insert("views", views)?;
    Ok(format!("views: {views}"))
}

/// Through actix-web: the counter keeps its cookie through an outage of
/// the store, answers 200 with the degraded header, and finds the real
/// session again when the store returns.
#[actix_web::test]
async fn the_middleware_rides_out_an_outage() {
    let backend = MemoryStore::new().fault_injection(FaultConfig::default());
    let faults = backend.handle();
    let store = SessionStore::new(backend.layer(DegradeLayer::default()).shared());
    let app = web_test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(store, Key::generate()))
            .wrap(Degradation::new())
            .route("/", web::get().to(count))
            .route("/plain", web::get().to(HttpResponse::Ok)),
    )
    .await;
    let get = |cookie: Option<actix_web::cookie::Cookie<'static>>| {
        let req = web_test::TestRequest::get().uri("/");
        match cookie {
            Some(c) => req.cookie(c).to_request(),
            None => req.to_request(),
        }
    };

    let res = web_test::call_service(&app, get(None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key(HEADER));
    let cookie = res
        .response()
        .cookies()
        .next()
        .expect("a cookie")
        .into_owned();
    let res = web_test::call_service(&app, get(Some(cookie.clone()))).await;
    assert_eq!(web_test::read_body(res).await, "views: 2");

    faults.set_down(true);
    for expected in 1..=2 {
        let res = web_test::call_service(&app, get(Some(cookie.clone()))).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers().get(HEADER).unwrap(), "true");
        assert_eq!(web_test::read_body(res).await, format!("views: {expected}"));
    }
    // A visitor without a cookie is served too.
    let res = web_test::call_service(&app, get(None)).await;
    assert_eq!(res.headers().get(HEADER).unwrap(), "true");
    assert_eq!(web_test::read_body(res).await, "views: 1");

    faults.set_down(false);
    let res = web_test::call_service(&app, get(Some(cookie))).await;
    assert!(!res.headers().contains_key(HEADER));
    assert_eq!(
        web_test::read_body(res).await,
        "views: 3",
        "the real session"
    );
}

/// Without the middleware, a `Degraded` store degrades nothing.
#[actix_web::test]
async fn without_the_middleware_an_outage_is_an_error() {
    let backend = MemoryStore::new().fault_injection(FaultConfig::default());
    let faults = backend.handle();
    let store = SessionStore::new(backend.layer(DegradeLayer::default()));
    let app = web_test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(store, Key::generate()))
            .route("/", web::get().to(count)),
    )
    .await;
    faults.set_down(true);
    let req = web_test::TestRequest::get().uri("/").to_request();
    let err = web_test::try_call_service(&app, req).await.unwrap_err();
    let status = err.as_response_error().status_code();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}
