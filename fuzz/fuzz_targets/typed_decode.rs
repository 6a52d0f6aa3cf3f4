//! The typed decoders (JSON and MessagePack) on a session-like struct,
//! directly and through a store: bad bytes are `Corrupt`, never a panic.
#![no_main]

use std::collections::HashMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use storestack::typed::{Codec, Json, MessagePack};
use storestack::{ErrorKind, MemoryStore, Record, Store, StoreExt};

#[derive(Debug, Serialize, Deserialize)]
struct Session {
    id: String,
    user: Option<User>,
    csrf_token: String,
    flash: Vec<Flash>,
    cart: Vec<Item>,
    created_at: u64,
    expires_in: i32,
    prefs: HashMap<String, String>,
    ab: Option<Variant>,
    score: f64,
    state: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct User {
    id: u32,
    email: String,
    roles: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Flash {
    level: Level,
    message: String,
}

#[derive(Debug, Serialize, Deserialize)]
enum Level {
    Info,
    Warning,
}

#[derive(Debug, Serialize, Deserialize)]
enum Variant {
    A,
    B { weight: u8 },
}

#[derive(Debug, Serialize, Deserialize)]
struct Item {
    sku: String,
    qty: u16,
    price_cents: i64,
}

fn poll_once<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match std::pin::pin!(f).as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("memory store future was pending"),
    }
}

fuzz_target!(|data: &[u8]| {
    // Directly.
    if let Ok(s) = Json::decode::<Session>(data) {
        let again = Json::encode(&s).unwrap();
        Json::decode::<Session>(&again).unwrap();
    }
    if let Ok(s) = MessagePack::decode::<Session>(data) {
        let again = MessagePack::encode(&s).unwrap();
        MessagePack::decode::<Session>(&again).unwrap();
    }
    // Through a store.
    let store = MemoryStore::new();
    poll_once(store.set("k", Record::never_expiring(data.to_vec()))).unwrap();
    for result in [
        poll_once(store.clone().typed::<Session>().get("k")).map(|_| ()),
        poll_once(store.typed_with::<Session, MessagePack>().get("k")).map(|_| ()),
    ] {
        if let Err(e) = result {
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        }
    }
});
