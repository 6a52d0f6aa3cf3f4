//! The conformance suite over MemoryStore, bare and behind Namespaced.

use storestack::{MemoryConfig, MemoryStore, Store, StoreExt};
use storestack_testkit::{conformance_suite, Fixture};

fn memory(clock: storestack::clock::MockClock) -> MemoryStore {
    MemoryStore::with_config(MemoryConfig::default().clock(clock))
}

async fn bare() -> Option<Fixture> {
    Some(Fixture::with_mock_clock(memory))
}

async fn namespaced() -> Option<Fixture> {
    let fixture = Fixture::with_mock_clock(|clock| {
        let shared = memory(clock);
        // A neighbour in the same backend must stay invisible to the suite.
        let neighbour = shared.clone().namespaced("other:");
        futures_lite_block_on(neighbour.set("k", storestack::Record::never_expiring("n")))
            .expect("neighbour write");
        shared.namespaced("app:")
    });
    Some(fixture.max_key_len(storestack::limits::MAX_KEY_LEN - "app:".len()))
}

/// MemoryStore completes synchronously, so its futures need no runtime.
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("memory store future was pending"),
    }
}

conformance_suite!(memory_bare, bare());
conformance_suite!(memory_namespaced, namespaced());

#[test]
fn every_case_is_listed() {
    assert_eq!(storestack_testkit::all_cases().len(), 37);
}
