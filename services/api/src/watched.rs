//! An owner's WebSocket connection, watched for silence.
//!
//! A broker splicing a client's session to a topic's owner (`forward_ws`), or fanning a
//! partitioned topic out over the owners of its partitions (`fanout/ws`), holds a connection
//! to each owner. An owner that dies with its host, or stalls (a paused VM), sends neither a
//! close frame nor a TCP reset: without a watch, that connection would wait forever, and so
//! would the client's session, answered by this broker's own pings all along, long after the
//! partitions were failed over to a live broker. So the connection is pinged a few times per
//! `silence`, and once nothing at all (a frame, a pong) came from the owner for `silence`, its
//! stream ends as a lost connection does: a fanned-out consumer's or reader's session is
//! reopened on the partition's new owner, a spliced one is ended for the client to reconnect,
//! as Pulsar's clients do when their keep-alive goes unanswered. It ends as well once the owner
//! is known to have lost its membership lease (`Watched::until`), which in a tier with the
//! default settings comes before the silence: a broker past its lease acknowledges nothing.

use futures::{Sink, Stream};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};
use tokio_tungstenite::tungstenite::Message;

/// Pings per `silence`: one lost or late pong does not end a live connection.
const PINGS_PER_SILENCE: u32 = 3;

pub(crate) struct Watched<S> {
    inner: S,
    silence: Duration,
    deadline: Pin<Box<Sleep>>,
    ping: Interval,
    ping_due: bool,
    silent: bool,
    /// Resolves once the owner is known to be gone (`until`).
    gone: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, silence: Duration) -> Self {
        let silence = silence.max(Duration::from_millis(PINGS_PER_SILENCE as u64));
        let every = silence / PINGS_PER_SILENCE;
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            inner,
            silence,
            deadline: Box::pin(tokio::time::sleep(silence)),
            ping,
            ping_due: false,
            silent: false,
            gone: None,
        }
    }

    /// The stream also ends once `gone` resolves, whatever the owner still sends.
    pub(crate) fn until(mut self, gone: impl Future<Output = ()> + Send + 'static) -> Self {
        self.gone = Some(Box::pin(gone));
        self
    }
}

impl<S, E> Stream for Watched<S>
where
    S: Stream<Item = Result<Message, E>> + Sink<Message, Error = E> + Unpin,
{
    type Item = Result<Message, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.silent || this.gone.as_mut().is_some_and(|g| g.as_mut().poll(cx).is_ready()) {
            this.silent = true;
            return Poll::Ready(None);
        }
        // What the owner sent first: frames read late (the reader was held up downstream) are
        // not taken for silence.
        if let Poll::Ready(item) = Pin::new(&mut this.inner).poll_next(cx) {
            if item.is_some() {
                let at = Instant::now() + this.silence;
                this.deadline.as_mut().reset(at);
            }
            return Poll::Ready(item);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.silent = true;
            return Poll::Ready(None);
        }
        while this.ping.poll_tick(cx).is_ready() {
            this.ping_due = true;
        }
        // The ping goes out when the sink has room; the owner's pong (or anything else it
        // sends) moves the deadline.
        if this.ping_due && matches!(Pin::new(&mut this.inner).poll_ready(cx), Poll::Ready(Ok(()))) {
            this.ping_due = false;
            if Pin::new(&mut this.inner).start_send(Message::Ping(Default::default())).is_ok() {
                let _ = Pin::new(&mut this.inner).poll_flush(cx);
            }
        }
        Poll::Pending
    }
}

impl<S> Sink<Message> for Watched<S>
where
    S: Sink<Message> + Unpin,
{
    type Error = S::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;
    use futures::{SinkExt, StreamExt};

    /// One end of an in-memory connection: what is sent goes to `sent`, what `feed` sends is read.
    struct End {
        sent: mpsc::UnboundedSender<Message>,
        read: mpsc::UnboundedReceiver<Result<Message, ()>>,
    }

    impl Stream for End {
        type Item = Result<Message, ()>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.read.poll_next_unpin(cx)
        }
    }

    impl Sink<Message> for End {
        type Error = ();
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), ()> {
            self.sent.unbounded_send(item).map_err(|_| ())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn end() -> (End, mpsc::UnboundedReceiver<Message>, mpsc::UnboundedSender<Result<Message, ()>>) {
        let (sent, pings) = mpsc::unbounded();
        let (feed, read) = mpsc::unbounded();
        (End { sent, read }, pings, feed)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_owner_is_pinged_then_its_stream_ends() {
        let (inner, mut pings, _feed) = end();
        let mut watched = Watched::new(inner, Duration::from_secs(15));
        let started = Instant::now();
        assert!(watched.next().await.is_none(), "the stream of a silent owner ends");
        assert_eq!(started.elapsed(), Duration::from_secs(15));
        let mut sent = 0;
        while let Ok(m) = pings.try_recv() {
            assert!(matches!(m, Message::Ping(_)), "{m:?}");
            sent += 1;
        }
        assert_eq!(sent, 2, "pinged every 5 s before the end at 15 s");
        assert!(watched.next().await.is_none(), "and stays ended");
    }

    #[tokio::test(start_paused = true)]
    async fn anything_the_owner_sends_keeps_the_connection() {
        let (inner, _pings, feed) = end();
        let mut watched = Watched::new(inner, Duration::from_secs(15));
        let answers = tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(10)).await;
                feed.unbounded_send(Ok(Message::Pong(Default::default()))).unwrap();
            }
            feed
        });
        for _ in 0..10 {
            assert!(matches!(watched.next().await, Some(Ok(Message::Pong(_)))));
        }
        let _feed = answers.await.unwrap();
        // 100 s in, every answer within 15 s of the one before: still open until 15 s of quiet.
        let quiet = Instant::now();
        assert!(watched.next().await.is_none());
        assert_eq!(quiet.elapsed(), Duration::from_secs(15));
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_ends_once_the_owner_is_known_gone_even_if_it_still_answers() {
        let (inner, _pings, feed) = end();
        let (lost, gone) = tokio::sync::oneshot::channel::<()>();
        let mut watched = Watched::new(inner, Duration::from_secs(15)).until(async move {
            let _ = gone.await;
        });
        feed.unbounded_send(Ok(Message::Pong(Default::default()))).unwrap();
        assert!(matches!(watched.next().await, Some(Ok(Message::Pong(_)))));
        lost.send(()).unwrap();
        feed.unbounded_send(Ok(Message::Pong(Default::default()))).unwrap();
        let started = Instant::now();
        assert!(watched.next().await.is_none(), "ended once the owner is known gone");
        assert_eq!(started.elapsed(), Duration::ZERO, "at once, not after the silence");
        assert!(watched.next().await.is_none(), "and stays ended");
    }

    #[tokio::test(start_paused = true)]
    async fn frames_go_through_both_ways() {
        let (inner, mut sent, feed) = end();
        let mut watched = Watched::new(inner, Duration::from_secs(15));
        watched.send(Message::Text("up".into())).await.unwrap();
        assert_eq!(sent.next().await, Some(Message::Text("up".into())));
        feed.unbounded_send(Ok(Message::Text("down".into()))).unwrap();
        assert_eq!(watched.next().await, Some(Ok(Message::Text("down".into()))));
        drop(feed);
        assert!(watched.next().await.is_none(), "the owner's end closing ends the stream");
    }
}
