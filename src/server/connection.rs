//! One connection's task: its `server.header_read_timeout` and its part in
//! a graceful shutdown, each costing a probe no more than a flag.
//!
//! hyper's own header-read timeout boxes a new timer for every request,
//! inserts it into tokio's timer wheel while the head is read and removes it
//! once the head is in: about a tenth of a kept-alive probe's CPU. Here a
//! connection has one timer, armed once and moved only when it runs out; a
//! request costs a flag and one clock read when its answer is ready. The
//! bound is the same: a whole request head within the timeout, counted from
//! the connection's start and again from each answer, never while a request
//! is being answered.
//!
//! Likewise for shutdown: hyper-util's graceful watcher polls a channel
//! every time the connection is polled; here the connection reads a flag,
//! and registers to be woken only once it first waits for its client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;
use tokio::time::{Instant, Sleep};

/// Tells every connection to finish its request in flight and close.
#[derive(Debug, Default)]
pub struct Shutdown {
    requested: AtomicBool,
    notify: Arc<Notify>,
}

impl Shutdown {
    pub fn request(&self) {
        self.requested.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    fn requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }
}

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

/// Guards a connection that starts now: `service` answers its requests,
/// `connection` is built to serve it, `drain` asks it to finish its request
/// in flight and close (hyper's `graceful_shutdown`).
pub fn guard<S, C>(
    timeout: Duration,
    shutdown: &Arc<Shutdown>,
    service: S,
    connection: impl FnOnce(Tracked<S>) -> C,
    drain: fn(Pin<&mut C>),
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
        // Made now, so it sees a shutdown requested from here on even
        // before it is first polled.
        stop: Arc::clone(&shutdown.notify).notified_owned(),
        shutdown: Arc::clone(shutdown),
        listening: false,
        drain,
        draining: false,
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
    /// late, and drained on shutdown. Resolves to `None` when cut off, else
    /// to the connection's own output.
    pub struct Guarded<C> {
        #[pin]
        connection: C,
        #[pin]
        timer: Sleep,
        activity: Arc<Activity>,
        timeout: Duration,
        // The timer has been polled, so it wakes this task when it runs out.
        armed: bool,
        #[pin]
        stop: OwnedNotified,
        shutdown: Arc<Shutdown>,
        // `stop` has been polled, so a shutdown wakes this task.
        listening: bool,
        drain: fn(Pin<&mut C>),
        draining: bool,
    }
}

impl<C: Future> Future for Guarded<C> {
    type Output = Option<C::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if !*this.draining && this.shutdown.requested() {
            *this.draining = true;
            (this.drain)(this.connection.as_mut());
        }
        if let Poll::Ready(output) = this.connection.poll(cx) {
            return Poll::Ready(Some(output));
        }
        // Only a connection that waits registers for the shutdown: most of
        // those with a new connection per probe are done in their first poll.
        if !*this.listening {
            *this.listening = true;
            if this.stop.poll(cx).is_ready() {
                // Requested since the flag was read: drain on the next poll.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
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
