//! The conformance suite over Fallback(Memory, Memory), healthy, in both
//! journal-check modes: the decorator changes no semantics.

use storestack::layers::fallback::JournalCheck;
use storestack::limits::MAX_KEY_LEN;
use storestack::{Fallback, FallbackConfig, MemoryConfig, MemoryStore};
use storestack_testkit::{conformance_suite, Fixture};

fn fixture(check: JournalCheck) -> Fixture {
    let fixture = Fixture::with_mock_clock(|clock| {
        let memory = || MemoryStore::with_config(MemoryConfig::default().clock(clock.clone()));
        let config = FallbackConfig::default()
            .journal_check(check)
            .clock(clock.clone());
        Fallback::with_config(memory(), memory(), config)
    });
    fixture.max_key_len(MAX_KEY_LEN - "__fallback:j:".len())
}

async fn per_read() -> Option<Fixture> {
    Some(fixture(JournalCheck::PerRead))
}

async fn poll() -> Option<Fixture> {
    Some(fixture(JournalCheck::Poll))
}

conformance_suite!(fallback_per_read, per_read());
conformance_suite!(fallback_poll, poll());
