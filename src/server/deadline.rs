//! `server.header_read_timeout`, kept by each connection's task rather than
//! by hyper.
//!
//! hyper's own header-read timeout boxes a new timer for every request,
//! inserts it into tokio's timer wheel while the head is read and removes it
//! once the head is in: about a tenth of a kept-alive probe's CPU. Here a
//! connection has one timer, armed once and moved only when it runs out; a
//! request costs a flag and one clock read when its answer is ready. The
//! bound is the same: a whole request head within the timeout, counted from
//! the connection's start and again from each answer, never while a request
//! is being answered.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

/// What a connection's requests tell its deadline. Both sides run in the
/// connection's task, so relaxed atomics suffice.
#[derive(Debug)]
struct Activity {
    started: Instant,
    /// A request is being answered: its head is in and no bound runs.
    busy: AtomicBool,
    /// When the latest answer was ready, in nanoseconds after `started`.
    answered: AtomicU64,
}

impl Activity {
    fn answered(&self) {
        let since = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.answered.store(since, Ordering::Relaxed);
        self.busy.store(false, Ordering::Relaxed);
    }

    /// By when the next request head must be in, looked at `now`.
    fn deadline(&self, now: Instant, timeout: Duration) -> Instant {
        if self.busy.load(Ordering::Relaxed) {
            return now + timeout;
        }
        let answered = Duration::from_nanos(self.answered.load(Ordering::Relaxed));
        self.started + answered + timeout
    }
}

/// Starts the bound for a connection that starts now: `service` answers its
/// requests, `connection` is built to serve it and closed once a request
/// head is late.
pub fn bounded<S, C>(
    timeout: Duration,
    service: S,
    connection: impl FnOnce(Tracked<S>) -> C,
) -> Guarded<C> {
    let started = Instant::now();
    let activity = Arc::new(Activity {
        started,
        busy: AtomicBool::new(false),
        answered: AtomicU64::new(0),
    });
    let tracked = Tracked {
        inner: service,
        activity: Arc::clone(&activity),
    };
    Guarded {
        connection: connection(tracked),
        timer: tokio::time::sleep_until(started + timeout),
        activity,
        timeout,
        armed: false,
    }
}

/// A connection's service, telling the deadline when a request is in and
/// when its answer is ready.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, R> hyper::service::Service<R> for Tracked<S>
where
    S: hyper::service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Answering<S::Future>;

    fn call(&self, request: R) -> Self::Future {
        self.activity.busy.store(true, Ordering::Relaxed);
        Answering {
            inner: self.inner.call(request),
            activity: Arc::clone(&self.activity),
        }
    }
}

pin_project! {
    /// One request's answer; the deadline restarts when it is ready.
    pub struct Answering<F> {
        #[pin]
        inner: F,
        activity: Arc<Activity>,
    }
}

impl<F: Future> Future for Answering<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let answer = ready!(this.inner.poll(cx));
        this.activity.answered();
        Poll::Ready(answer)
    }
}

pin_project! {
    /// A connection that is dropped, and so closed, when a request head is
    /// late. Resolves to `None` then, else to the connection's own output.
    pub struct Guarded<C> {
        #[pin]
        connection: C,
        #[pin]
        timer: Sleep,
        activity: Arc<Activity>,
        timeout: Duration,
        // The timer has been polled, so it wakes this task when it runs out.
        armed: bool,
    }
}

impl<C: Future> Future for Guarded<C> {
    type Output = Option<C::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(output) = this.connection.poll(cx) {
            return Poll::Ready(Some(output));
        }
        // The usual wake-up: the client sent something; the timer is ahead.
        if *this.armed && !this.timer.is_elapsed() {
            return Poll::Pending;
        }
        loop {
            if *this.armed {
                // The timer ran out: the head is late, or the timer was set
                // for an earlier deadline than the one that now holds.
                let now = Instant::now();
                let deadline = this.activity.deadline(now, *this.timeout);
                if deadline <= now {
                    return Poll::Ready(None);
                }
                this.timer.as_mut().reset(deadline);
            }
            *this.armed = true;
            // Outside the task's budget: a timer that returned Pending for
            // want of budget would never have registered to wake us.
            let timer = std::pin::pin!(tokio::task::unconstrained(this.timer.as_mut()));
            if timer.poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}
