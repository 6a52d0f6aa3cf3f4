//! One worker of the session-like workload: its own keys (so one key's
//! operations are sequential), each operation sent to any instance of the
//! fleet, a seeded mix of
//! reads (50 %), writes (20 %), creates (12 %), touches (10 %) and deletes
//! (8 %), each reported to the key's model.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::Rng;
use storestack::clock::{Clock, MockClock};
use storestack::{Record, Store};

use crate::history::{Anomalies, KeyModel, Val, Window};
use crate::{new_mode, old_mode, ttl, Mig, Tally, KEYS_PER_WORKER, OPS_PER_WORKER};

pub(crate) async fn worker(
    fleet: Vec<Mig>,
    clock: MockClock,
    ops: Arc<AtomicUsize>,
    mut keys: Vec<KeyModel>,
    mut rng: StdRng,
    w: usize,
) -> (Vec<KeyModel>, Anomalies, Tally) {
    let mut an = Anomalies::default();
    let mut tally = Tally::default();
    for seq in 0..OPS_PER_WORKER {
        let model = &mut keys[rng.gen_range(0..KEYS_PER_WORKER)];
        // No sticky sessions: any instance serves any request.
        let m = match fleet.len() {
            1 => &fleet[0],
            n => &fleet[rng.gen_range(0..n)],
        };
        let key = model.key.clone();
        let before = clock.now();
        let roll = rng.gen_range(0..100);
        let fresh = |rng: &mut StdRng| -> Val { (format!("w{w}-{seq}").into(), ttl(&clock, rng)) };
        let ok = match roll {
            0..50 => {
                let res = m.get(&key).await;
                tally.reads += 1;
                let w = Window {
                    before,
                    after: clock.now(),
                };
                if let Ok(read) = &res {
                    let read = read.as_ref().map(|r| (r.value.clone(), r.expires_at));
                    model.on_get(read, w, &mut an);
                }
                res.is_ok()
            }
            50..70 => {
                let v = fresh(&mut rng);
                let res = m
                    .set(
                        &key,
                        Record {
                            value: v.0.clone(),
                            expires_at: v.1,
                        },
                    )
                    .await;
                model.on_set(v, res.is_ok());
                res.is_ok()
            }
            70..82 => {
                let v = fresh(&mut rng);
                let res = m
                    .create(
                        &key,
                        Record {
                            value: v.0.clone(),
                            expires_at: v.1,
                        },
                    )
                    .await;
                let w = Window {
                    before,
                    after: clock.now(),
                };
                model.on_create(v, res.as_ref().ok().copied(), w, &mut an);
                res.is_ok()
            }
            82..92 => {
                let at = ttl(&clock, &mut rng);
                let res = m.touch(&key, at).await;
                let w = Window {
                    before,
                    after: clock.now(),
                };
                model.on_touch(at, res.as_ref().ok().copied(), w, &mut an);
                res.is_ok()
            }
            _ => {
                let res = m.delete(&key).await;
                model.on_delete(res.is_ok());
                res.is_ok()
            }
        };
        let phase = m.handle().phase();
        let (o, n) = (old_mode(m), new_mode(m));
        model.log.push(format!(
            "#{seq} roll {roll} ok {ok} phase {phase} old {o:?} new {n:?} t {:?}",
            before
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        ));
        tally.ops += 1;
        tally.errors += u64::from(!ok);
        ops.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
    }
    (keys, an, tally)
}
