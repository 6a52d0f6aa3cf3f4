//! The conformance suite over MemoryStore behind the resilience decorators:
//! healthy, and with injected transient faults that the retries absorb.
//! Either way the stack must keep every promise of the `Store` contract.

use std::time::Duration;

use storestack::layers::fault::{FaultConfig, OpSet};
use storestack::{BreakerConfig, ErrorKind, MemoryConfig, MemoryStore, Op, RetryConfig, StoreExt};
use storestack_testkit::{conformance_suite, Fixture};

fn memory(clock: storestack::clock::MockClock) -> MemoryStore {
    MemoryStore::with_config(MemoryConfig::default().clock(clock))
}

fn retries() -> RetryConfig {
    RetryConfig::default()
        .max_attempts(12)
        .backoff(Duration::from_micros(100), Duration::from_millis(1))
}

async fn healthy() -> Option<Fixture> {
    Some(Fixture::with_mock_clock(|clock| {
        memory(clock)
            .fault_injection(FaultConfig::default().seed(1))
            .timeout(Duration::from_secs(5))
            .retry(retries())
            .circuit_breaker(BreakerConfig::default())
    }))
}

/// One operation in five fails before reaching the store, and one `create`
/// or `set` in five is applied but its reply lost: Retry must hide both,
/// `create` included (its read-back tells its own write from another's).
/// No reply of a `set_if` is lost here: the suite's read-modify-write
/// counter cannot be exactly-once across a lost reply (an applied write
/// that another writer replaced before Retry's read-back is answered
/// `false`, and the counter increments again; see Retry's docs). Retry's
/// own tests cover `set_if` after lost replies.
async fn flaky() -> Option<Fixture> {
    Some(Fixture::with_mock_clock(|clock| {
        let faults = FaultConfig::default()
            .seed(0x5eed)
            .errors(0.2, ErrorKind::Unavailable);
        let lost_replies = FaultConfig::default()
            .seed(0x1057)
            .ops(OpSet::of(&[Op::Set, Op::Create]))
            .errors(0.0, ErrorKind::Timeout)
            .reply_loss_rate(0.2);
        memory(clock)
            .fault_injection(lost_replies)
            .fault_injection(faults)
            .timeout(Duration::from_secs(5))
            .retry(retries())
            .circuit_breaker(BreakerConfig::default())
    }))
}

conformance_suite!(resilience_healthy, healthy());
conformance_suite!(resilience_flaky, flaky());
