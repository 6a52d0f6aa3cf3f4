//! The conformance suite over Migration(memory, memory) in every phase: a
//! migration changes no semantics of the store it presents.

use storestack::clock::MockClock;
use storestack::layers::migration::{Migration, MigrationHandle, Phase};
use storestack::{MemoryConfig, MemoryStore};
use storestack_testkit::{conformance_suite, Fixture};

fn memory(clock: &MockClock) -> MemoryStore {
    MemoryStore::with_config(MemoryConfig::default().clock(clock.clone()))
}

fn in_phase(phase: Phase) -> Option<Fixture> {
    Some(Fixture::with_mock_clock(|clock| {
        Migration::new(memory(&clock), memory(&clock))
            .with_handle(MigrationHandle::new(phase))
            .clock(clock)
    }))
}

/// A migration that went all the way and came back: writes of keys not
/// written to both stores remove them from new.
fn there_and_back(to: Phase) -> Option<Fixture> {
    Some(Fixture::with_mock_clock(|clock| {
        let handle = MigrationHandle::new(Phase::ReadNew);
        handle.set(to).expect("switch back");
        Migration::new(memory(&clock), memory(&clock))
            .with_handle(handle)
            .clock(clock)
    }))
}

conformance_suite!(old_only, async { in_phase(Phase::OldOnly) });
conformance_suite!(write_both_0, async { in_phase(Phase::write_both(0)) });
conformance_suite!(write_both_50, async { in_phase(Phase::write_both(50)) });
conformance_suite!(write_both_100, async { in_phase(Phase::write_both(100)) });
conformance_suite!(read_new, async { in_phase(Phase::ReadNew) });
conformance_suite!(new_only, async { in_phase(Phase::NewOnly) });
conformance_suite!(back_to_write_both_30, async {
    there_and_back(Phase::write_both(30))
});
conformance_suite!(back_to_old_only, async { there_and_back(Phase::OldOnly) });
