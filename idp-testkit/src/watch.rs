//! Watch streams: newline-delimited JSON events (`{"type":"ADDED","object":{…}}`) over a
//! chunked response, resumable from a resourceVersion, with optional BOOKMARK events, a
//! timeout, and `410 Gone` when the requested version left the retained window.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::api::{Filters, Target, present};
use crate::shared::Shared;
use crate::status::ApiError;
use crate::store::{Event, EventType};

/// The error type of streamed bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a watch request asked for.
#[derive(Debug, Clone)]
pub(crate) struct WatchParams {
    pub(crate) target: Target,
    pub(crate) filters: Filters,
    /// `None` or `Some(0)`: start with the current state as ADDED events.
    pub(crate) resource_version: Option<u64>,
    pub(crate) bookmarks: bool,
    pub(crate) timeout: Duration,
    pub(crate) drop_after: Option<usize>,
    /// How objects are rendered in events.
    pub(crate) render: Render,
}

/// Event payload format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Render {
    /// The object itself.
    Object,
    /// A one-row Table (`kubectl get -w`), with the `includeObject` parameter.
    Table(Option<String>),
}

impl WatchParams {
    /// The event payload for an object: the object, or a one-row Table.
    fn render(&self, obj: &Value) -> Value {
        let shown = present(&self.target.rt, obj);
        match &self.render {
            Render::Object => shown,
            Render::Table(include) => {
                let rv = crate::meta::str_at(&shown, "/metadata/resourceVersion").to_owned();
                crate::table::table(
                    &self.target.rt,
                    std::slice::from_ref(&shown),
                    &rv,
                    None,
                    include.as_deref(),
                )
            }
        }
    }
}

struct State {
    shared: Arc<Shared>,
    p: WatchParams,
    last_rv: u64,
    queue: VecDeque<Bytes>,
    rx: tokio::sync::watch::Receiver<u64>,
    deadline: Instant,
    next_bookmark: Instant,
    sent: usize,
    finish: bool,
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

/// The event stream for a watch request.
pub(crate) fn stream(
    shared: Arc<Shared>,
    p: WatchParams,
) -> impl Stream<Item = Result<Frame<Bytes>, BoxError>> + Send {
    let mut rx = shared.subscribe();
    rx.borrow_and_update();
    let mut queue = VecDeque::new();
    let start = p.resource_version.filter(|rv| *rv > 0);
    let last_rv = match start {
        Some(rv) => rv,
        None => shared.read(|s| {
            for (_, obj) in s.list(
                &p.target.rt.group,
                &p.target.rt.plural,
                p.target.namespace.as_deref(),
            ) {
                if p.filters.matches(obj) {
                    queue.push_back(line("ADDED", &p.render(obj)));
                }
            }
            s.rv()
        }),
    };
    let now = Instant::now();
    let state = State {
        deadline: now + p.timeout,
        next_bookmark: now + shared.options.bookmark_interval,
        shared,
        p,
        last_rv,
        queue,
        rx,
        sent: 0,
        finish: false,
    };
    futures::stream::unfold(state, step)
}

async fn step(mut st: State) -> Option<(Result<Frame<Bytes>, BoxError>, State)> {
    loop {
        if let Some(b) = st.queue.pop_front() {
            if st.p.drop_after.is_some_and(|n| st.sent >= n) {
                st.queue.clear();
                st.finish = true;
                let err: BoxError = "injected fault: watch connection dropped".into();
                return Some((Err(err), st));
            }
            st.sent += 1;
            return Some((Ok(Frame::data(b)), st));
        }
        if st.finish {
            return None;
        }
        st.rx.borrow_and_update();
        let t = &st.p.target;
        let fetched = st.shared.read(|s| {
            s.events_since(
                st.last_rv,
                &t.rt.group,
                &t.rt.plural,
                t.namespace.as_deref(),
            )
            .map(|evs| (evs, s.rv()))
        });
        match fetched {
            Err(oldest) => {
                let status = ApiError::gone(format!(
                    "too old resource version: {} ({oldest})",
                    st.last_rv
                ))
                .to_status();
                st.queue.push_back(line("ERROR", &status));
                st.finish = true;
                continue;
            }
            Ok((events, head)) => {
                for e in events {
                    if let Some(kind) = visible_as(&st.p.filters, &e) {
                        st.queue.push_back(line(kind, &st.p.render(&e.object)));
                    }
                }
                st.last_rv = st.last_rv.max(head);
            }
        }
        if !st.queue.is_empty() {
            continue;
        }
        let bookmark_at = st.next_bookmark;
        let bookmarks = st.p.bookmarks;
        let woke = tokio::select! {
            changed = st.rx.changed() => if changed.is_err() { Wake::Closed } else { Wake::Changed },
            () = tokio::time::sleep_until(st.deadline) => Wake::Closed,
            () = tokio::time::sleep_until(bookmark_at), if bookmarks => Wake::Bookmark,
        };
        match woke {
            Wake::Closed => return None,
            Wake::Changed => {}
            Wake::Bookmark => {
                st.next_bookmark = Instant::now() + st.shared.options.bookmark_interval;
                let t = &st.p.target;
                let bookmark = json!({
                    "kind": t.rt.kind,
                    "apiVersion": t.rt.api_version(),
                    "metadata": {"resourceVersion": st.last_rv.to_string()},
                });
                st.queue.push_back(line("BOOKMARK", &bookmark));
            }
        }
    }
}

/// How a change looks through a selector: an object that starts matching is ADDED, one
/// that stops matching is DELETED (what the real server does), others pass or vanish.
fn visible_as(filters: &Filters, e: &Event) -> Option<&'static str> {
    let now = filters.matches(&e.object);
    if e.kind != EventType::Modified {
        return now.then(|| e.kind.as_str());
    }
    let before = e.previous.as_ref().is_some_and(|p| filters.matches(p));
    match (before, now) {
        (true, true) => Some("MODIFIED"),
        (false, true) => Some("ADDED"),
        (true, false) => Some("DELETED"),
        (false, false) => None,
    }
}

enum Wake {
    Changed,
    Bookmark,
    Closed,
}

/// Parses `timeoutSeconds` (default: 30 minutes, like the server's upper bound).
pub(crate) fn timeout_from(q: Option<&str>) -> Duration {
    q.and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(Duration::from_secs(1800), Duration::from_secs)
}
