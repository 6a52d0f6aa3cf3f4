//! The task behind a [`RedisInvalidator`](super::RedisInvalidator): keeps
//! the channel subscribed, turns fred's messages and connection events
//! into [`Notice`]s, and watches the publishing connection.
//!
//! The state is one flag, "subscribed on a live connection". It falls
//! (with a `MaybeLost`) on any sign that the connection went away: a
//! connection error, a reconnection or cluster change (the new connection
//! is not subscribed), a lost fred event, a failed heartbeat `PING`. While
//! it is down, `SUBSCRIBE` is tried on every reconnection and every
//! `retry` interval; once the server has processed one the flag rises,
//! again with a `MaybeLost`: a cache may have filled from Redis while
//! nobody listened. A `SUBSCRIBE` or `PING` runs beside the event loop,
//! so a command that hangs on a dying connection never delays a notice.

use std::future::{pending, Future};
use std::pin::Pin;
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
use tokio::sync::{oneshot, Notify};
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

/// Whether the publishing connection is known to be broken. fred notices
/// a broken connection at once but keeps accepting commands until its
/// first reconnection attempt, and such a command waits for the whole
/// command timeout; with this, a publish fails at once instead, and one
/// already waiting is woken.
#[derive(Debug, Default)]
pub(super) struct PublisherState {
    pub(super) down: AtomicBool,
    pub(super) lost: Notify,
}

/// The publishing client's events (`None` once a stream has ended).
pub(super) struct PublisherWatch {
    errors: Option<Receiver<(FredError, Option<Server>)>>,
    reconnects: Option<Receiver<Server>>,
    state: Arc<PublisherState>,
}

impl PublisherWatch {
    pub(super) fn of(client: &Client, state: Arc<PublisherState>) -> Self {
        PublisherWatch {
            errors: Some(client.error_rx()),
            reconnects: Some(client.reconnect_rx()),
            state,
        }
    }
}

/// A `SUBSCRIBE` or a `PING` under way.
type Attempt = Pin<Box<dyn Future<Output = (Step, Result<(), FredError>)> + Send>>;

enum Step {
    Subscribe,
    Ping,
}

/// What woke the listener up.
enum Wake {
    Stop,
    Message(Result<Message, RecvError>),
    /// A reconnection, a cluster change, or a lost event.
    NewConnection,
    /// A connection error (or lost error events).
    ConnectionLost,
    Done(Step, Result<(), FredError>),
    Retry,
    Heartbeat,
    /// The publisher's connection broke (`true`) or is back (`false`).
    Publisher(bool),
    /// A publisher event stream ended (the publisher quit).
    Nothing,
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
    /// In a cluster, where the subscription lives.
    pub(super) route: Option<ClusterHash>,
}

async fn tick(timer: &mut Option<Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => pending().await,
    }
}

/// The next event of a stream that may have ended.
async fn next<T: Clone>(rx: &mut Option<Receiver<T>>) -> Result<T, RecvError> {
    match rx {
        Some(r) => r.recv().await,
        None => pending().await,
    }
}

/// A subscriber event as a wake-up: an event or a lag means `wake`; a
/// closed stream (the client quit) means stop.
fn event<T>(result: Result<T, RecvError>, wake: Wake) -> Wake {
    match result {
        Ok(_) | Err(RecvError::Lagged(_)) => wake,
        Err(RecvError::Closed) => Wake::Stop,
    }
}

/// A publisher event as a wake-up: `Ok` means `wake`; a lag means the
/// state is unknown (let fred's own checks decide); the end of a stream
/// retires it.
fn publisher_event<T>(
    result: Result<T, RecvError>,
    rx: &mut Option<Receiver<T>>,
    wake: Wake,
) -> Wake {
    match result {
        Ok(_) => wake,
        Err(RecvError::Lagged(_)) => Wake::Publisher(false),
        Err(RecvError::Closed) => {
            *rx = None;
            Wake::Nothing
        }
    }
}

fn timer(period: Duration) -> Interval {
    let mut t = interval(period);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

impl Listener {
    pub(super) async fn run(
        self,
        mut messages: Receiver<Message>,
        mut events: Events,
        mut publisher: PublisherWatch,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut retry = timer(self.retry);
        let mut heartbeat = self.heartbeat.map(timer);
        let mut attempt: Option<Attempt> = None;
        loop {
            let wake = tokio::select! {
                biased;
                _ = &mut stop => Wake::Stop,
                m = messages.recv() => Wake::Message(m),
                e = events.errors.recv() => event(e, Wake::ConnectionLost),
                r = events.reconnects.recv() => event(r, Wake::NewConnection),
                c = events.changes.recv() => event(c, Wake::NewConnection),
                e = next(&mut publisher.errors) => {
                    publisher_event(e, &mut publisher.errors, Wake::Publisher(true))
                }
                r = next(&mut publisher.reconnects) => {
                    publisher_event(r, &mut publisher.reconnects, Wake::Publisher(false))
                }
                (step, result) = async { attempt.as_mut().expect("guarded").await },
                    if attempt.is_some() => Wake::Done(step, result),
                _ = retry.tick() => Wake::Retry,
                _ = tick(&mut heartbeat) => Wake::Heartbeat,
            };
            match wake {
                Wake::Stop => break,
                Wake::Message(Ok(m)) => self.on_message(m),
                // Dropped messages.
                Wake::Message(Err(RecvError::Lagged(_))) => self.notify(Notice::MaybeLost),
                Wake::Message(Err(RecvError::Closed)) => break,
                Wake::ConnectionLost => {
                    self.lost("connection lost");
                    attempt = None;
                }
                Wake::NewConnection => {
                    self.lost("reconnected");
                    attempt = Some(self.attempt(Step::Subscribe));
                }
                Wake::Retry => {
                    if attempt.is_none() && !self.is_subscribed() {
                        attempt = Some(self.attempt(Step::Subscribe));
                    }
                }
                Wake::Heartbeat => {
                    if attempt.is_none() && self.is_subscribed() {
                        attempt = Some(self.attempt(Step::Ping));
                    }
                }
                Wake::Done(step, result) => {
                    attempt = None;
                    self.done(step, result);
                }
                Wake::Publisher(down) => {
                    publisher.state.down.store(down, Ordering::Release);
                    if down {
                        publisher.state.lost.notify_waiters();
                    }
                }
                Wake::Nothing => {}
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

    fn attempt(&self, step: Step) -> Attempt {
        let client = self.client.clone();
        let channel = self.channel.clone();
        let route = self.route.clone();
        Box::pin(async move {
            let result = match step {
                Step::Subscribe => subscribe(&client, &channel, route.as_ref()).await,
                Step::Ping => ping(&client, route.as_ref()).await,
            };
            (step, result)
        })
    }

    fn done(&self, step: Step, result: Result<(), FredError>) {
        match (step, result) {
            (Step::Subscribe, Ok(())) => {
                if !self.subscribed.swap(true, Ordering::AcqRel) {
                    tracing::info!(
                        channel = &*self.channel,
                        "cache invalidation subscription restored"
                    );
                }
                // Whatever was published before this point may be missed.
                self.notify(Notice::MaybeLost);
            }
            (Step::Subscribe, Err(e)) => tracing::debug!(
                channel = &*self.channel,
                error = %e,
                "cache invalidation subscribe failed; will retry"
            ),
            (Step::Ping, Ok(())) => {}
            (Step::Ping, Err(e)) => {
                tracing::debug!(channel = &*self.channel, error = %e, "heartbeat failed");
                // Subscribe again: on this connection if it still works,
                // on its replacement otherwise.
                self.lost("heartbeat failed");
            }
        }
    }
}

fn options(route: Option<&ClusterHash>) -> Options {
    Options {
        // Never queue while disconnected, never replay after a reconnect.
        fail_fast: true,
        cluster_hash: route.cloned(),
        ..Options::default()
    }
}

/// `PING` on the connection that holds the subscription.
async fn ping(client: &Client, route: Option<&ClusterHash>) -> Result<(), FredError> {
    let _pong: Value = client.with_options(&options(route)).ping(None).await?;
    Ok(())
}

/// Subscribes `client` to `channel`; returns once the server has
/// processed the `SUBSCRIBE`, so that every message published after that
/// is delivered. (fred resolves `subscribe` as soon as the command is
/// written; the reply to a `PING` sent after it on the same connection
/// proves the server got that far.)
pub(super) async fn subscribe(
    client: &Client,
    channel: &Str,
    route: Option<&ClusterHash>,
) -> Result<(), FredError> {
    // fred routes SUBSCRIBE itself (in a cluster, to `route`).
    client
        .with_options(&options(None))
        .subscribe(channel.clone())
        .await?;
    ping(client, route).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use fred::types::{Builder, MessageKind};

    fn listener() -> (Listener, Receiver<Notice>) {
        let (notices, rx) = tokio::sync::broadcast::channel(8);
        let listener = Listener {
            client: Builder::default_centralized().build().unwrap(),
            channel: Str::from("inv"),
            notices,
            subscribed: Arc::new(AtomicBool::new(true)),
            retry: Duration::from_millis(10),
            heartbeat: None,
            route: None,
        };
        (listener, rx)
    }

    fn message(channel: &'static str, value: Value) -> Message {
        Message {
            channel: Str::from(channel),
            value,
            kind: MessageKind::Message,
            server: Server::new("127.0.0.1", 6379),
        }
    }

    #[test]
    fn messages_become_notices_and_strangers_losses() {
        let (l, mut rx) = listener();
        l.on_message(message("inv", Value::Bytes("\x01ab".into())));
        l.on_message(message("inv", Value::String("text".into())));
        l.on_message(message("other", Value::Bytes("x".into())));
        l.on_message(message("inv", Value::Integer(7)));
        assert_eq!(rx.try_recv().unwrap(), Notice::Message("\x01ab".into()));
        assert_eq!(rx.try_recv().unwrap(), Notice::Message("text".into()));
        assert_eq!(rx.try_recv().unwrap(), Notice::MaybeLost);
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_loss_is_told_once_and_a_subscription_always() {
        let (l, mut rx) = listener();
        l.lost("test");
        l.lost("test");
        assert_eq!(rx.try_recv().unwrap(), Notice::MaybeLost);
        assert!(rx.try_recv().is_err());
        assert!(!l.is_subscribed());
        let refused = FredError::new(fred::error::ErrorKind::IO, "refused");
        l.done(Step::Subscribe, Err(refused));
        assert!(rx.try_recv().is_err());
        assert!(!l.is_subscribed());
        l.done(Step::Subscribe, Ok(()));
        l.done(Step::Subscribe, Ok(()));
        assert!(l.is_subscribed());
        assert_eq!(rx.try_recv().unwrap(), Notice::MaybeLost);
        assert_eq!(rx.try_recv().unwrap(), Notice::MaybeLost);
        let timeout = FredError::new(fred::error::ErrorKind::Timeout, "slow");
        l.done(Step::Ping, Err(timeout));
        assert!(!l.is_subscribed());
        assert_eq!(rx.try_recv().unwrap(), Notice::MaybeLost);
    }
}
