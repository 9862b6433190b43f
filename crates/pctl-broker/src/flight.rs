//! Single flight: one attempt at a time, every waiter gets its answer
//! (failures included), and the attempt runs in its own task, so a request
//! that goes away (an SDK that timed out and dropped its HTTP request, a
//! client killed mid-unlock) never cancels it: the next request joins the
//! same attempt instead of starting another `op` or STS call.
//!
//! Unlocking ([`crate::unlock`]) and issuance ([`crate::issue`]) both use
//! it. What an attempt builds it stores itself (in the vault or a cache),
//! inside the task, so the result is kept even when nobody waits for it;
//! a lock that lands meanwhile still wins there (the vault refuses an
//! install from an older epoch, issuance checks the epoch after STS).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use pctl_protocol::ErrorKind;
use tokio::sync::watch;

use crate::failure::Failure;

/// An attempt's answer.
pub type Outcome<T> = Result<T, Failure>;

/// How a caller got its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// From `ready`: no attempt ran for it.
    Ready,
    /// It started the attempt.
    Started,
    /// It joined an attempt already under way.
    Joined,
}

type Answer<T> = watch::Receiver<Option<Outcome<T>>>;

struct State<T> {
    /// The attempt under way: its number and where its answer appears.
    running: Option<(u64, Answer<T>)>,
    /// Attempts started so far.
    started: u64,
}

/// One attempt at a time; see the module documentation.
pub struct Flight<T> {
    state: Arc<Mutex<State<T>>>,
}

impl<T> Default for Flight<T> {
    fn default() -> Self {
        Flight {
            state: Arc::new(Mutex::new(State {
                running: None,
                started: 0,
            })),
        }
    }
}

fn lock<T>(m: &Mutex<State<T>>) -> MutexGuard<'_, State<T>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T: Clone + Send + Sync + 'static> Flight<T> {
    /// Joins the attempt under way; when none is, answers with `ready()`
    /// if that has an answer, else starts `attempt()` in a task of its own
    /// and waits for it. `ready` runs under the flight's lock, so no
    /// attempt can end between its check and the start of another.
    ///
    /// Dropping the returned future stops only the waiting.
    pub async fn run<F>(
        &self,
        ready: impl FnOnce() -> Option<Outcome<T>>,
        attempt: impl FnOnce() -> F,
    ) -> (Outcome<T>, Via)
    where
        F: Future<Output = Outcome<T>> + Send + 'static,
    {
        let (mut answer, via) = {
            let mut st = lock(&self.state);
            match &st.running {
                Some((_, rx)) => (rx.clone(), Via::Joined),
                None => {
                    if let Some(r) = ready() {
                        return (r, Via::Ready);
                    }
                    let (tx, rx) = watch::channel(None);
                    st.started += 1;
                    let done = Done {
                        state: self.state.clone(),
                        id: st.started,
                        tx,
                        outcome: None,
                    };
                    st.running = Some((done.id, rx.clone()));
                    let fut = attempt();
                    tokio::spawn(async move {
                        let mut done = done;
                        done.outcome = Some(fut.await);
                    });
                    (rx, Via::Started)
                }
            }
        };
        let r = match answer.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        };
        let r = r.unwrap_or_else(|| {
            Err(Failure(
                ErrorKind::Unavailable,
                "the daemon stopped the attempt before it answered: retry".into(),
            ))
        });
        (r, via)
    }

    /// Whether an attempt is under way.
    pub fn running(&self) -> bool {
        lock(&self.state).running.is_some()
    }

    /// Attempts started so far.
    pub fn started(&self) -> u64 {
        lock(&self.state).started
    }
}

/// Ends an attempt: publishes its answer and frees the flight for the
/// next one, together under the flight's lock (also when the attempt
/// panicked: its waiters then get a failure instead of waiting forever).
struct Done<T> {
    state: Arc<Mutex<State<T>>>,
    id: u64,
    tx: watch::Sender<Option<Outcome<T>>>,
    outcome: Option<Outcome<T>>,
}

impl<T> Drop for Done<T> {
    fn drop(&mut self) {
        let mut st = lock(&self.state);
        if let Some(r) = self.outcome.take() {
            self.tx.send_replace(Some(r));
        }
        if st.running.as_ref().is_some_and(|(id, _)| *id == self.id) {
            st.running = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// An attempt that takes `secs` and counts its runs and completions.
    fn slow(
        runs: &Arc<AtomicU64>,
        done: &Arc<AtomicU64>,
        secs: u64,
        answer: Outcome<u64>,
    ) -> impl Future<Output = Outcome<u64>> + Send + 'static {
        let (runs, done) = (runs.clone(), done.clone());
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(secs)).await;
            done.fetch_add(1, Ordering::SeqCst);
            answer
        }
    }

    fn counters() -> (Arc<AtomicU64>, Arc<AtomicU64>) {
        (Arc::default(), Arc::default())
    }

    /// Issue 15 §6: the request that started an attempt goes away (an SDK
    /// timing out after 2 s); the attempt runs to its end and a later
    /// request gets its answer without a second run.
    #[tokio::test(start_paused = true)]
    async fn a_dropped_waiter_does_not_cancel_the_attempt() {
        let f = Flight::<u64>::default();
        let (runs, done) = counters();
        let first = tokio::time::timeout(
            Duration::from_secs(2),
            f.run(|| None, || slow(&runs, &done, 3, Ok(7))),
        )
        .await;
        assert!(first.is_err(), "the first waiter timed out");
        assert!(f.running(), "the attempt outlives its waiter");
        let (r, via) = f.run(|| None, || slow(&runs, &done, 3, Ok(8))).await;
        assert_eq!((r, via), (Ok(7), Via::Joined));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(done.load(Ordering::SeqCst), 1);
        assert!(!f.running());
    }

    /// Nobody waits at all: the attempt still completes.
    #[tokio::test(start_paused = true)]
    async fn an_attempt_nobody_waits_for_completes() {
        let f = Flight::<u64>::default();
        let (runs, done) = counters();
        let waiter = f.run(|| None, || slow(&runs, &done, 1, Ok(1)));
        // Polled once (which starts the attempt), then dropped.
        assert!(futures_poll_once(waiter).await);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(done.load(Ordering::SeqCst), 1);
        assert!(!f.running());
    }

    /// Polls a future once; true when it was still pending (and is dropped).
    async fn futures_poll_once<F: Future>(fut: F) -> bool {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx).is_pending())).await
    }

    /// Callers that come while an attempt runs join it; the first is told
    /// it started it, the others that they joined.
    #[tokio::test(start_paused = true)]
    async fn joiners_get_the_result() {
        let f = Arc::new(Flight::<u64>::default());
        let (runs, done) = counters();
        let mut waiters = Vec::new();
        for i in 0..5 {
            let (f, runs, done) = (f.clone(), runs.clone(), done.clone());
            waiters.push(tokio::spawn(async move {
                f.run(|| None, || slow(&runs, &done, 1, Ok(i))).await
            }));
            tokio::task::yield_now().await;
        }
        let mut vias = Vec::new();
        for w in waiters {
            let (r, via) = w.await.unwrap();
            assert_eq!(r, Ok(0));
            vias.push(via);
        }
        assert_eq!(vias[0], Via::Started);
        assert!(vias[1..].iter().all(|v| *v == Via::Joined), "{vias:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    /// A failure is every waiter's answer; the next caller after it tries
    /// again.
    #[tokio::test(start_paused = true)]
    async fn failures_are_shared_then_retried() {
        let f = Arc::new(Flight::<u64>::default());
        let (runs, done) = counters();
        let no = Failure(ErrorKind::Op, "the prompt was dismissed".into());
        let mut waiters = Vec::new();
        for _ in 0..10 {
            let (f, runs, done, no) = (f.clone(), runs.clone(), done.clone(), no.clone());
            waiters.push(tokio::spawn(async move {
                f.run(|| None, || slow(&runs, &done, 5, Err(no))).await.0
            }));
        }
        for w in waiters {
            assert_eq!(w.await.unwrap(), Err(no.clone()));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let (r, via) = f.run(|| None, || slow(&runs, &done, 1, Ok(2))).await;
        assert_eq!((r, via), (Ok(2), Via::Started));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    /// `ready` answers when nothing runs, and is not asked while something
    /// does (joining wins, so a caller never starts a second attempt).
    #[tokio::test(start_paused = true)]
    async fn ready_answers_only_when_idle() {
        let f = Arc::new(Flight::<u64>::default());
        let (runs, done) = counters();
        assert_eq!(
            f.run(|| Some(Ok(3)), || slow(&runs, &done, 1, Ok(4))).await,
            (Ok(3), Via::Ready)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        let first = {
            let (f, runs, done) = (f.clone(), runs.clone(), done.clone());
            tokio::spawn(async move { f.run(|| None, || slow(&runs, &done, 1, Ok(5))).await })
        };
        tokio::task::yield_now().await;
        let (r, via) = f
            .run(
                || panic!("not asked while an attempt runs"),
                || slow(&runs, &done, 1, Ok(6)),
            )
            .await;
        assert_eq!((r, via), (Ok(5), Via::Joined));
        assert_eq!(first.await.unwrap(), (Ok(5), Via::Started));
        assert_eq!(f.started(), 1);
    }

    fn explode() -> Outcome<u64> {
        panic!("a bug in an attempt")
    }

    /// An attempt that panics answers its waiters with a failure and frees
    /// the flight.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_attempt_answers_and_frees_the_flight() {
        let f = Flight::<u64>::default();
        let (r, _) = f
            .run(
                || None,
                || async {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    explode()
                },
            )
            .await;
        assert_eq!(r.unwrap_err().0, ErrorKind::Unavailable);
        assert!(!f.running());
        let (runs, done) = counters();
        assert_eq!(
            f.run(|| None, || slow(&runs, &done, 1, Ok(1))).await,
            (Ok(1), Via::Started)
        );
    }
}
