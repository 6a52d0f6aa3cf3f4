//! A broken MongoDB deployment, provoked for real on a `secantusd-rs`
//! process the test starts with `--auth`: a wrong password and missing
//! credentials fail with `PermissionDenied`, a permanent kind that Retry,
//! CircuitBreaker and Fallback do not treat as an outage
//! (storestack::error, "Permanent failures fail loudly"). The stand-in
//! authenticates but does not authorize (every user may do everything),
//! so `Unauthorized` is met only without credentials.

use std::time::Duration;

use storestack::{ErrorKind, Op, Record, Store};
use storestack_mongodb::mongodb::bson::doc;
use storestack_mongodb::mongodb::Client;
use storestack_mongodb::{MongoConfig, MongoStore};
use storestack_tests::mongo::{self, Secantus};
use storestack_tests::{error_chain, PASSWORD, WRONG_PASSWORD as WRONG};

fn config(server: &Secantus, credentials: Option<(&str, &str)>) -> MongoConfig {
    // secantusd-rs advertises no mechanisms in its handshake: name the one
    // it speaks.
    let (auth, options) = credentials.map_or((String::new(), ""), |(user, pw)| {
        (
            format!("{user}:{pw}@"),
            "&authSource=admin&authMechanism=SCRAM-SHA-256",
        )
    });
    MongoConfig::new(format!(
        "mongodb://{auth}127.0.0.1:{}/?directConnection=true{options}",
        server.port()
    ))
    .database(mongo::DATABASE)
    .collection("permanent")
    .server_selection_timeout(Duration::from_secs(2))
    .operation_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn a_wrong_or_missing_password_is_permission_denied() {
    let Some(mut server) = Secantus::start_or_skip() else {
        return;
    };
    // Provision the user, then lock the server down: the user survives a
    // clean restart (not a SIGKILL: secantusd-rs loses it then).
    let admin = Client::with_uri_str(server.url()).await.unwrap();
    admin
        .database("admin")
        .run_command(doc! {
            "createUser": "app",
            "pwd": PASSWORD,
            "roles": [{ "role": "readWrite", "db": mongo::DATABASE }],
        })
        .await
        .expect("createUser");
    drop(admin);
    server
        .restart_with(&["--auth"])
        .expect("restart with --auth");

    let err = MongoStore::connect(config(&server, Some(("app", WRONG))))
        .await
        .expect_err("a wrong password must not connect");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");
    assert_eq!(err.op(), Op::Connect);
    assert!(!err.is_transient() && err.needs_operator());
    assert!(
        !error_chain(&err).contains(WRONG),
        "the password leaked into the error: {err:?}"
    );

    let err = MongoStore::connect(config(&server, None))
        .await
        .expect_err("no credentials: the server refuses the first command");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");

    let store = MongoStore::connect(config(&server, Some(("app", PASSWORD))))
        .await
        .expect("the right password connects");
    store.set("k", Record::never_expiring("v")).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().unwrap().value, "v");
}
