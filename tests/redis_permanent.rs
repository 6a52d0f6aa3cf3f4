//! A broken Redis deployment, provoked for real on `redis-server`
//! processes the test starts: a wrong or missing password, an ACL user
//! without rights, a disabled command. Each fails with a permanent kind (`PermissionDenied`,
//! `Misconfigured`), never with a transient one: Retry does not retry it,
//! the breaker does not open on it, and a Fallback does not serve the
//! secondary's data in its place (storestack::error, "Permanent failures
//! fail loudly").

use std::time::Duration;

use storestack::{
    BreakerConfig, BreakerState, ErrorKind, MemoryStore, Op, Record, RetryConfig, Store, StoreExt,
};
use storestack_redis::{RedisConfig, RedisStore};
use storestack_tests::redis::{free_port, redis_cli, RedisServer};
use storestack_tests::{error_chain, PASSWORD, WRONG_PASSWORD as WRONG};

fn config(port: u16) -> RedisConfig {
    RedisConfig::new(format!("redis://127.0.0.1:{port}"))
        .key_prefix("perm:")
        .command_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
}

#[tokio::test]
async fn a_wrong_or_missing_password_is_permission_denied() {
    let Some(server) = RedisServer::start_or_skip(free_port(), &["--requirepass", PASSWORD]) else {
        return;
    };
    let err = RedisStore::connect(config(server.port).password(WRONG))
        .await
        .expect_err("a wrong password must not connect");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");
    assert_eq!(err.op(), Op::Connect);
    assert!(!err.is_transient() && err.needs_operator());
    assert!(
        !error_chain(&err).contains(WRONG),
        "the password leaked into the error: {err:?}"
    );

    // No password at all: refused as soon as a command is sent.
    match RedisStore::connect(config(server.port)).await {
        Err(err) => assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}"),
        Ok(store) => {
            let err = store.get("k").await.expect_err("NOAUTH");
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");
        }
    }

    // The right one works.
    let store = RedisStore::connect(config(server.port).password(PASSWORD))
        .await
        .expect("the right password connects");
    store.set("k", Record::never_expiring("v")).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().unwrap().value, "v");
}

/// How many commands on `key` the server refused for lack of a permission,
/// from its ACL log (identical refusals share an entry and count up).
fn acl_denials(port: u16, key: &str) -> u64 {
    let out = redis_cli(&["-p", &port.to_string(), "ACL", "LOG"]).expect("ACL LOG");
    // Flat field/value lines; every entry starts with its count.
    let lines: Vec<&str> = out.lines().collect();
    let mut total = 0;
    let mut count = 0;
    for pair in lines.chunks(2) {
        match pair {
            ["count", n] => count = n.parse::<u64>().expect("a count"),
            ["object", object] if *object == key => total += count,
            _ => {}
        }
    }
    total
}

/// An ACL user that may not touch the store's keys, behind the whole
/// resilience stack: every call fails with `PermissionDenied`, reaches the
/// server exactly once (no retry), leaves the breaker closed and never
/// answers from the Fallback's secondary.
#[tokio::test]
async fn an_acl_refusal_fails_loudly_through_retry_breaker_and_fallback() {
    let Some(server) = RedisServer::start_or_skip(free_port(), &[]) else {
        return;
    };
    let port = server.port.to_string();
    redis_cli(&[
        "-p",
        &port,
        "ACL",
        "SETUSER",
        "limited",
        "on",
        ">limited-pw",
        "~elsewhere:*",
        "+@all",
    ])
    .expect("ACL SETUSER");
    let redis = RedisStore::connect(
        config(server.port)
            .username("limited")
            .password("limited-pw"),
    )
    .await
    .expect("the user may connect");

    let secondary = MemoryStore::new();
    secondary
        .set("k", Record::never_expiring("from the secondary"))
        .await
        .unwrap();
    let breaker = redis
        .retry(
            RetryConfig::default()
                .max_attempts(5)
                .backoff(Duration::from_millis(1), Duration::from_millis(2)),
        )
        .circuit_breaker(BreakerConfig::default().consecutive_failures(3));
    let handle = breaker.handle();
    let stack = breaker.with_fallback(secondary.clone());

    const CALLS: u64 = 10;
    for _ in 0..CALLS {
        let err = stack.get("k").await.expect_err("NOPERM");
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");
        assert!(!err.is_exhausted(), "not retried: {err:?}");
    }
    let err = stack
        .set("k2", Record::never_expiring("v"))
        .await
        .expect_err("NOPERM");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");

    // (The Fallback's background repair reads its journal on redis too:
    // count the refusals of the keys the test used.)
    assert_eq!(
        acl_denials(server.port, "perm:k"),
        CALLS,
        "each get reached redis exactly once"
    );
    assert_eq!(acl_denials(server.port, "perm:k2"), 1, "the set too");
    assert_eq!(handle.state(), BreakerState::Closed, "no breaker trip");
    assert!(
        secondary.get("k2").await.unwrap().is_none(),
        "the refused write did not go to the secondary alone"
    );
}

/// A command the server does not have (disabled with `rename-command`):
/// `Misconfigured`. (A password for a server that has none is no error:
/// fred authenticates as `default`, and a user without a password accepts
/// any.)
#[tokio::test]
async fn a_command_the_server_does_not_know_is_misconfigured() {
    let Some(server) =
        RedisServer::start_or_skip(free_port(), &["--rename-command", "EVALSHA", "\"\""])
    else {
        return;
    };
    let store = RedisStore::connect(config(server.port)).await.unwrap();
    store.set("k", Record::never_expiring("v")).await.unwrap();
    let err = store.get("k").await.expect_err("EVALSHA is disabled");
    assert_eq!(err.kind(), ErrorKind::Misconfigured, "{err:?}");
    assert!(err.needs_operator());
}

/// The documented limit: a password changed on the server while the store
/// runs is met by fred's reconnect loop, and the calls made meanwhile see
/// an unreachable server, not the refusal; a store connected afresh
/// reports `PermissionDenied`.
#[tokio::test]
async fn a_password_rotated_under_a_running_store_shows_as_unreachable() {
    let Some(server) = RedisServer::start_or_skip(free_port(), &["--requirepass", PASSWORD]) else {
        return;
    };
    let store = RedisStore::connect(
        config(server.port)
            .password(PASSWORD)
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(100)),
    )
    .await
    .unwrap();
    store.set("k", Record::never_expiring("v")).await.unwrap();
    let port = server.port.to_string();
    let admin = ["-p", port.as_str(), "--no-auth-warning", "-a", PASSWORD];
    let cli = |args: &[&str]| redis_cli(&[&admin[..], args].concat()).expect("redis-cli");
    cli(&["CONFIG", "SET", "requirepass", "rotated-password"]);
    let admin = [
        "-p",
        port.as_str(),
        "--no-auth-warning",
        "-a",
        "rotated-password",
    ];
    redis_cli(
        &[
            &admin[..],
            &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"],
        ]
        .concat(),
    )
    .expect("CLIENT KILL");
    let err = store
        .get("k")
        .await
        .expect_err("the old password is refused");
    assert!(err.is_transient(), "{err:?}");
    let err = RedisStore::connect(config(server.port).password(PASSWORD))
        .await
        .expect_err("a fresh store meets the refusal");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");
}
