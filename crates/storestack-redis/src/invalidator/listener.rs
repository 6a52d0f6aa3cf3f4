//! The task behind a [`RedisInvalidator`](super::RedisInvalidator): keeps
//! the channel subscribed and turns fred's messages and connection events
//! into [`Notice`]s.
//!
//! The state is one flag, "subscribed on a live connection". It falls
//! (with a `MaybeLost`) on any sign that the connection went away: a
//! connection error, a reconnection or cluster change (the new connection
//! is not subscribed), a lost fred event, a failed heartbeat `PING`. While
//! it is down, `SUBSCRIBE` is tried on every reconnection and every
//! `retry` interval; once it succeeds the flag rises, again with a
//! `MaybeLost`: a cache may have filled from Redis while nobody listened.

use std::future::pending;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fred::bytes_utils::Str;
use fred::clients::Client;
use fred::error::Error as FredError;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::config::{Options, Server};
use fred::types::{ClusterHash, ClusterStateChange, Message, Value};
use storestack::Notice;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::{Receiver, Sender};
use tokio::sync::oneshot;
use tokio::time::{interval, Interval, MissedTickBehavior};

/// fred's connection events, subscribed to before the connections they
/// should report.
pub(super) struct Events {
    errors: Receiver<(FredError, Option<Server>)>,
    reconnects: Receiver<Server>,
    changes: Receiver<Vec<ClusterStateChange>>,
}

impl Events {
    pub(super) fn of(client: &Client) -> Self {
        Events {
            errors: client.error_rx(),
            reconnects: client.reconnect_rx(),
            changes: client.cluster_change_rx(),
        }
    }
}

/// What woke the listener up.
enum Wake {
    Stop,
    Message(Result<Message, RecvError>),
    /// A reconnection, a cluster change, or a lost event.
    NewConnection,
    /// A connection error (or lost error events).
    ConnectionLost,
    Retry,
    Heartbeat,
}

pub(super) struct Listener {
    pub(super) client: Client,
    pub(super) channel: Str,
    pub(super) notices: Sender<Notice>,
    pub(super) subscribed: Arc<AtomicBool>,
    /// How often to try `SUBSCRIBE` again while not subscribed.
    pub(super) retry: Duration,
    /// How often to `PING` the subscribed connection; `None` for never.
    pub(super) heartbeat: Option<Duration>,
    /// In a cluster, where the subscription lives (for the `PING`).
    pub(super) ping_route: Option<ClusterHash>,
}

async fn tick(timer: &mut Option<Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => pending().await,
    }
}

/// A fred event stream's next event as a wake-up: an event or a lag
/// means `wake`; a closed stream (the client quit) means stop.
fn event<T>(result: Result<T, RecvError>, wake: Wake) -> Wake {
    match result {
        Ok(_) | Err(RecvError::Lagged(_)) => wake,
        Err(RecvError::Closed) => Wake::Stop,
    }
}

impl Listener {
    pub(super) async fn run(
        self,
        mut messages: Receiver<Message>,
        mut events: Events,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut retry = interval(self.retry);
        retry.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut heartbeat = self.heartbeat.map(|period| {
            let mut t = interval(period);
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            t
        });
        loop {
            let wake = tokio::select! {
                biased;
                _ = &mut stop => Wake::Stop,
                m = messages.recv() => Wake::Message(m),
                e = events.errors.recv() => event(e, Wake::ConnectionLost),
                r = events.reconnects.recv() => event(r, Wake::NewConnection),
                c = events.changes.recv() => event(c, Wake::NewConnection),
                _ = retry.tick() => Wake::Retry,
                _ = tick(&mut heartbeat) => Wake::Heartbeat,
            };
            match wake {
                Wake::Stop => break,
                Wake::Message(Ok(m)) => self.on_message(m),
                // Dropped messages.
                Wake::Message(Err(RecvError::Lagged(_))) => self.notify(Notice::MaybeLost),
                Wake::Message(Err(RecvError::Closed)) => break,
                Wake::ConnectionLost => self.lost("connection lost"),
                Wake::NewConnection => {
                    self.lost("reconnected");
                    self.try_subscribe().await;
                }
                Wake::Retry => {
                    if !self.is_subscribed() {
                        self.try_subscribe().await;
                    }
                }
                Wake::Heartbeat => {
                    if self.is_subscribed() {
                        self.ping().await;
                    }
                }
            }
        }
        // Ends the message and event streams; the notice sender drops with
        // `self`, so receivers see the end.
        let _ = self.client.quit().await;
    }

    fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    fn notify(&self, notice: Notice) {
        // No receiver is not an error: no cache is listening.
        let _ = self.notices.send(notice);
    }

    fn on_message(&self, message: Message) {
        if message.channel != self.channel {
            return;
        }
        // Anything but bytes cannot be one of ours: treat it as a loss.
        let notice = match message.value {
            Value::Bytes(b) => Notice::Message(b),
            Value::String(s) => Notice::Message(s.into_inner()),
            _ => Notice::MaybeLost,
        };
        self.notify(notice);
    }

    /// The subscription may be gone: tell the caches (once).
    fn lost(&self, why: &'static str) {
        if self.subscribed.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                channel = &*self.channel,
                why,
                "cache invalidation subscription lost; caches forget their entries"
            );
            self.notify(Notice::MaybeLost);
        }
    }

    async fn try_subscribe(&self) {
        let options = Options {
            fail_fast: true,
            ..Options::default()
        };
        match self
            .client
            .with_options(&options)
            .subscribe(self.channel.clone())
            .await
        {
            Ok(()) => {
                if !self.subscribed.swap(true, Ordering::AcqRel) {
                    tracing::info!(
                        channel = &*self.channel,
                        "cache invalidation subscription restored"
                    );
                }
                // Whatever was published before this point may be missed.
                self.notify(Notice::MaybeLost);
            }
            Err(e) => tracing::debug!(
                channel = &*self.channel,
                error = %e,
                "cache invalidation subscribe failed; will retry"
            ),
        }
    }

    async fn ping(&self) {
        let options = Options {
            fail_fast: true,
            cluster_hash: self.ping_route.clone(),
            ..Options::default()
        };
        let result: Result<Value, _> = self.client.with_options(&options).ping(None).await;
        if let Err(e) = result {
            tracing::debug!(channel = &*self.channel, error = %e, "heartbeat failed");
            // SUBSCRIBE again (on this connection if it still works, on
            // its replacement otherwise).
            self.lost("heartbeat failed");
        }
    }
}
