//! # storestack-testkit
//!
//! The [`Store`](storestack::Store) contract, written once as executable
//! cases, and run against every backend and every stack.
//!
//! A test crate describes how to make a fresh, empty store (a
//! [`Fixture`]), then expands [`conformance_suite!`] into one `#[tokio::test]`
//! per case:
//!
//! ```
//! use storestack::{MemoryConfig, MemoryStore};
//! use storestack_testkit::{conformance_suite, Fixture};
//!
//! async fn memory() -> Option<Fixture> {
//!     Some(Fixture::with_mock_clock(|clock| {
//!         MemoryStore::with_config(MemoryConfig::default().clock(clock))
//!     }))
//! }
//!
//! conformance_suite!(memory_conformance, memory());
//! ```
//!
//! A factory returns `None` to skip (a server that is not running on a
//! developer's machine); use [`server_missing`] for that, which fails
//! instead when `CI=true`.
//!
//! [`model`] holds a history checker for workloads run through outages
//! (stale reads, lost writes, resurrected deletes), shared by the fallback
//! model tests, the migration tests and the chaos suite.
//!
//! Time: a fixture either controls the store's clock ([`TimeControl::Mock`],
//! expiry cases run instantly) or lives in real time
//! ([`TimeControl::Real`], expiry cases sleep a few hundred milliseconds:
//! servers expire keys by their own clocks).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod cases;
mod fixture;
pub mod model;

pub use fixture::{server_missing, Fixture, TimeControl};

/// Runs the case list through a callback macro, so the list is written
/// once.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_cases {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback! { $($args)* ;
            get_missing_is_none,
            set_then_get_round_trips,
            set_overwrites,
            set_never_expiring,
            expired_record_is_never_returned,
            set_with_past_expiry_removes,
            touch_extends,
            touch_shortens,
            touch_to_never_persists,
            touch_missing_is_false,
            touch_keeps_value,
            create_inserts_when_absent,
            create_on_existing_key_keeps_value,
            create_over_expired_record_inserts,
            delete_existing_and_missing,
            scan_pages_cover_every_key_once,
            scan_filters_by_prefix,
            scan_skips_expired,
            len_ignores_expired,
            clear_removes_everything,
            empty_value,
            one_mib_value,
            unicode_keys,
            longest_key_is_accepted,
            invalid_keys_are_refused,
            oversized_value_is_too_large,
            concurrent_writers_on_distinct_keys,
            concurrent_writers_on_one_key,
            concurrent_creates_on_one_key_admit_one,
            get_versioned_reads_like_get,
            set_if_matches_only_the_version_read,
            set_if_never_creates,
            set_if_treats_expired_as_absent,
            set_if_exists_replaces_value_and_expiry,
            touch_keeps_version_and_past_set_if_removes,
            concurrent_set_ifs_admit_one_per_round,
            set_if_loops_lose_no_update,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($factory:expr ; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(fixture) = $factory.await else { return };
                $crate::cases::$case(fixture).await;
            }
        )*
    };
}

/// Expands to a module `$module` holding one `#[tokio::test]` per case of
/// the conformance suite. `$factory` is an expression evaluating to a
/// future of `Option<Fixture>`; it is evaluated once per case, and each
/// case must get a fresh, empty store. The calling crate needs `tokio`
/// with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! conformance_suite {
    ($module:ident, $factory:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::__with_cases!(__conformance_tests!($factory));
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __case_list {
    ( ; $($case:ident),* $(,)?) => {
        &[$((stringify!($case), |f| ::std::boxed::Box::pin($crate::cases::$case(f)))),*]
    };
}

/// A case: its name and its body.
pub type Case = (
    &'static str,
    fn(Fixture) -> futures::future::BoxFuture<'static, ()>,
);

/// Every case of the suite, for runners that are not `#[test]`s (the chaos
/// suite, a user's own harness).
pub fn all_cases() -> &'static [Case] {
    __with_cases!(__case_list!())
}
