//! [`RemoteStore`]: a [`StateStore`] served by `mxstate serve`.
//!
//! A small pool of connections, each pipelined (many requests in flight,
//! answers matched by request id). A connection that breaks fails its
//! requests at once with [`Error::Unavailable`]; the next request opens a
//! new one. While the service is down, connection attempts back off
//! (50 ms doubling to 2 s) and requests in between fail fast with the last
//! reason: errors, never hangs. A request is never resent by the client,
//! since it may have been applied: the caller decides.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{oneshot, Mutex};
use tokio::time::{timeout, Instant};

use mxstate_api::{
    AuthDifference, AuthEvents, ConflictedSubgraph, Error, EventId, GroupDelta, GroupId, GroupWrite, Result, RoomId,
    StateFilter, StateMap, StateStore,
};

use crate::adapter::{AdapterOp, AdapterReply};
use crate::addr::Addr;
use crate::auth::{ClientHello, Secret, ServerHello, Welcome, MAGIC, VERSION};
use crate::frame::{self, FrameError, DEFAULT_MAX_FRAME};
use crate::wire::{self, Op, Reply, Request, Response};

/// How a [`RemoteStore`] connects.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// The shared secret, for a service that requires one.
    pub secret: Option<Secret>,
    /// Connections in the pool.
    pub connections: usize,
    /// Longest wait for one answer.
    pub request_timeout: Duration,
    /// Longest wait to connect and shake hands.
    pub connect_timeout: Duration,
    /// Largest frame sent or accepted.
    pub max_frame: u32,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            secret: None,
            connections: 4,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

/// Any byte stream a connection runs on.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

type Answer = oneshot::Sender<Result<Reply>>;
type Waiting = Arc<StdMutex<HashMap<u64, Answer>>>;

/// One open connection: callers write their requests themselves (one at
/// a time), a reader task routes the answers.
#[derive(Clone)]
struct Conn {
    writer: Arc<Mutex<tokio::io::WriteHalf<Box<dyn Stream>>>>,
    waiting: Waiting,
    alive: Arc<AtomicBool>,
    /// The largest frame the service accepts.
    max: u32,
}

#[derive(Default)]
struct Slot {
    conn: Option<Conn>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

struct Inner {
    addr: Addr,
    opts: RemoteOptions,
    slots: Vec<Mutex<Slot>>,
    next_slot: AtomicUsize,
    next_id: AtomicU64,
}

/// A [`StateStore`] over a running `mxstate serve`.
#[derive(Clone)]
pub struct RemoteStore {
    inner: Arc<Inner>,
}

impl RemoteStore {
    /// A store that talks to the service at `addr`; connects on first use.
    pub fn new(addr: Addr, opts: RemoteOptions) -> RemoteStore {
        let n = opts.connections.max(1);
        RemoteStore {
            inner: Arc::new(Inner {
                addr,
                opts,
                slots: (0..n).map(|_| Mutex::new(Slot::default())).collect(),
                next_slot: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Connects now (a first connection), so that a wrong address, a
    /// refused secret or a down service is reported at once.
    pub async fn connect(addr: Addr, opts: RemoteOptions) -> Result<RemoteStore> {
        let s = RemoteStore::new(addr, opts);
        s.conn(0).await?;
        Ok(s)
    }

    /// The service's address.
    pub fn address(&self) -> &Addr {
        &self.inner.addr
    }

    /// The service's health and figures, as JSON.
    pub async fn stats(&self) -> Result<String> {
        match self.call(Op::Stats).await? {
            Reply::Stats(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// A request of the Synapse integration (see [`crate::adapter`]).
    pub async fn adapter(&self, op: AdapterOp) -> Result<AdapterReply> {
        match self.call(Op::Adapter(op)).await? {
            Reply::Adapter(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    fn unavailable(&self, reason: impl Into<String>) -> Error {
        Error::Unavailable {
            address: self.inner.addr.to_string(),
            reason: reason.into(),
        }
    }

    /// The connection of slot `i`, opened (or reopened) when needed.
    async fn conn(&self, i: usize) -> Result<Conn> {
        let slot = self
            .inner
            .slots
            .get(i)
            .ok_or_else(|| Error::internal("connection slot out of range"))?;
        let mut slot = slot.lock().await;
        if let Some(c) = &slot.conn {
            if c.alive.load(Ordering::Acquire) {
                return Ok(c.clone());
            }
        }
        slot.conn = None;
        if let Some(at) = slot.retry_at {
            if Instant::now() < at {
                return Err(self.unavailable(format!("{} (retrying shortly)", slot.last_error)));
            }
        }
        match timeout(self.inner.opts.connect_timeout, self.open()).await {
            Ok(Ok(c)) => {
                slot.failures = 0;
                slot.retry_at = None;
                slot.conn = Some(c.clone());
                Ok(c)
            }
            Ok(Err(e)) => {
                if matches!(e, Error::Unavailable { .. }) {
                    let backoff = Duration::from_millis(50u64 << slot.failures.min(6)).min(Duration::from_secs(2));
                    slot.failures += 1;
                    slot.retry_at = Some(Instant::now() + backoff);
                    slot.last_error = e.to_string();
                }
                Err(e)
            }
            Err(_) => {
                slot.failures += 1;
                slot.retry_at = Some(Instant::now() + Duration::from_millis(500));
                slot.last_error = "no handshake within the connect timeout".into();
                Err(self.unavailable(slot.last_error.clone()))
            }
        }
    }

    /// Opens a connection and shakes hands.
    async fn open(&self) -> Result<Conn> {
        let stream: Box<dyn Stream> = match &self.inner.addr {
            Addr::Unix(p) => Box::new(
                tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| self.unavailable(e.to_string()))?,
            ),
            Addr::Tcp(hp) => {
                let s = tokio::net::TcpStream::connect(hp)
                    .await
                    .map_err(|e| self.unavailable(e.to_string()))?;
                s.set_nodelay(true).map_err(|e| self.unavailable(e.to_string()))?;
                Box::new(s)
            }
        };
        let (mut r, mut w) = tokio::io::split(stream);
        let max = self.inner.opts.max_frame;
        let lost = |e: FrameError| self.unavailable(format!("handshake: {e}"));
        let hello: ServerHello = frame::read(&mut r, max).await.map_err(lost)?;
        if hello.magic != MAGIC {
            return Err(Error::InvalidRequest(format!(
                "{} is not an mxstate state service",
                self.inner.addr
            )));
        }
        if hello.version != VERSION {
            return Err(Error::InvalidRequest(format!(
                "the service at {} speaks protocol version {}, this client {VERSION}",
                self.inner.addr, hello.version
            )));
        }
        let proof = match (hello.secret_required, &self.inner.opts.secret) {
            (true, Some(s)) => Some(s.prove(&hello.nonce)),
            (true, None) => {
                return Err(Error::InvalidRequest(format!(
                    "the service at {} requires a shared secret",
                    self.inner.addr
                )))
            }
            (false, _) => None,
        };
        let answer = ClientHello {
            magic: MAGIC,
            version: VERSION,
            proof,
        };
        frame::write(&mut w, &answer, max).await.map_err(lost)?;
        match frame::read::<_, Welcome>(&mut r, max).await.map_err(lost)? {
            Welcome::Accepted => {}
            Welcome::Refused(why) => {
                return Err(Error::InvalidRequest(format!(
                    "the service at {} refused the connection: {why}",
                    self.inner.addr
                )))
            }
        }
        let alive = Arc::new(AtomicBool::new(true));
        let waiting: Waiting = Arc::default();
        tokio::spawn(read_loop(
            r,
            waiting.clone(),
            alive.clone(),
            max,
            self.inner.addr.to_string(),
        ));
        Ok(Conn {
            writer: Arc::new(Mutex::new(w)),
            waiting,
            alive,
            // Requests over the server's limit are refused here, with a
            // clear error, instead of costing the connection.
            max: max.min(hello.max_frame),
        })
    }

    /// Sends one request and waits for its answer.
    async fn call(&self, op: Op) -> Result<Reply> {
        let n = self.inner.slots.len();
        let i = self.inner.next_slot.fetch_add(1, Ordering::Relaxed) % n;
        let conn = self.conn(i).await?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes = frame::encode(&Request { id, op }, conn.max).map_err(|e| {
            Error::InvalidRequest(format!(
                "{e} (the service accepts frames of at most {} bytes: send fewer groups at once)",
                conn.max
            ))
        })?;
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = conn.waiting.lock() {
            m.insert(id, tx);
        }
        let addr = self.inner.addr.to_string();
        // The reader marks the connection dead before it fails the waiting
        // requests: one added after that is failed here, not left to wait
        // for an answer that cannot come.
        if !conn.alive.load(Ordering::Acquire) {
            fail_all(&conn.waiting, &conn.alive, "connection lost", &addr);
        } else {
            use tokio::io::AsyncWriteExt;
            let mut w = conn.writer.lock().await;
            if w.write_all(&bytes).await.is_err() || w.flush().await.is_err() {
                fail_all(&conn.waiting, &conn.alive, "connection lost while sending", &addr);
            }
        }
        match timeout(self.inner.opts.request_timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(self.unavailable("connection lost before the answer")),
            Err(_) => Err(self.unavailable(format!(
                "no answer within {} s",
                self.inner.opts.request_timeout.as_secs()
            ))),
        }
    }
}

/// Fails every request still waiting on a dead connection.
fn fail_all(waiting: &Waiting, alive: &AtomicBool, why: &str, addr: &str) {
    alive.store(false, Ordering::Release);
    let drained: Vec<Answer> = match waiting.lock() {
        Ok(mut w) => w.drain().map(|(_, a)| a).collect(),
        Err(poisoned) => poisoned.into_inner().drain().map(|(_, a)| a).collect(),
    };
    for a in drained {
        let _ = a.send(Err(Error::Unavailable {
            address: addr.to_owned(),
            reason: why.to_owned(),
        }));
    }
}

async fn read_loop(
    mut r: tokio::io::ReadHalf<Box<dyn Stream>>,
    waiting: Waiting,
    alive: Arc<AtomicBool>,
    max: u32,
    addr: String,
) {
    let why = loop {
        match frame::read::<_, Response>(&mut r, max).await {
            Ok(resp) => {
                let answer = waiting.lock().ok().and_then(|mut w| w.remove(&resp.id));
                if let Some(a) = answer {
                    let _ = a.send(resp.result.map_err(wire::WError::into_error));
                }
            }
            Err(FrameError::Closed) => break "the service closed the connection".to_owned(),
            Err(e) => break format!("connection lost: {e}"),
        }
    };
    fail_all(&waiting, &alive, &why, &addr);
}

fn unexpected(r: &Reply) -> Error {
    Error::internal(format!("protocol: unexpected reply {r:?}"))
}

#[async_trait]
impl StateStore for RemoteStore {
    async fn store_state_groups(&self, groups: Vec<GroupWrite>) -> Result<Vec<GroupId>> {
        match self
            .call(Op::StoreGroups(groups.iter().map(wire::group_out).collect()))
            .await?
        {
            Reply::Ids(ids) => Ok(ids),
            other => Err(unexpected(&other)),
        }
    }

    async fn state_for_groups(&self, groups: Vec<GroupId>, filter: StateFilter) -> Result<BTreeMap<GroupId, StateMap>> {
        let op = Op::StateForGroups {
            groups,
            filter: wire::filter_out(&filter),
        };
        match self.call(op).await? {
            Reply::States(s) => wire::states_in(s),
            other => Err(unexpected(&other)),
        }
    }

    async fn state_group_delta(&self, group: GroupId) -> Result<Option<GroupDelta>> {
        match self.call(Op::GroupDelta(group)).await? {
            Reply::Delta(d) => wire::group_delta_in(d),
            other => Err(unexpected(&other)),
        }
    }

    async fn set_state_groups_for_events(&self, pairs: Vec<(EventId, GroupId)>) -> Result<()> {
        let pairs = pairs.into_iter().map(|(e, g)| (e.as_str().to_owned(), g)).collect();
        match self.call(Op::SetEventGroups(pairs)).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn state_groups_for_events(&self, events: Vec<EventId>) -> Result<BTreeMap<EventId, GroupId>> {
        let events = events.into_iter().map(|e| e.as_str().to_owned()).collect();
        match self.call(Op::EventGroups(events)).await? {
            Reply::EventGroups(m) => m.into_iter().map(|(e, g)| Ok((EventId::parse(e)?, g))).collect(),
            other => Err(unexpected(&other)),
        }
    }

    async fn set_current_state(&self, room: RoomId, state: StateMap) -> Result<()> {
        let op = Op::SetCurrentState {
            room: room.as_str().to_owned(),
            state: wire::state_out(&state),
        };
        match self.call(op).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn current_state(&self, room: RoomId, filter: StateFilter) -> Result<StateMap> {
        let op = Op::CurrentState {
            room: room.as_str().to_owned(),
            filter: wire::filter_out(&filter),
        };
        match self.call(op).await? {
            Reply::State(s) => wire::state_in(s),
            other => Err(unexpected(&other)),
        }
    }

    async fn room_groups(&self, room: RoomId) -> Result<Vec<GroupId>> {
        match self.call(Op::RoomGroups(room.as_str().to_owned())).await? {
            Reply::Ids(ids) => Ok(ids),
            other => Err(unexpected(&other)),
        }
    }

    async fn purge_room(&self, room: RoomId) -> Result<()> {
        match self.call(Op::PurgeRoom(room.as_str().to_owned())).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn purge_unreferenced_groups(&self, room: RoomId, groups: Vec<GroupId>) -> Result<()> {
        let op = Op::PurgeUnreferenced {
            room: room.as_str().to_owned(),
            groups,
        };
        match self.call(op).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn add_auth_events(&self, room: RoomId, events: AuthEvents) -> Result<()> {
        let op = Op::AddAuthEvents {
            room: room.as_str().to_owned(),
            events: wire::auth_events_out(&events),
        };
        match self.call(op).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn auth_chain(&self, room: RoomId, events: Vec<EventId>, include_given: bool) -> Result<BTreeSet<EventId>> {
        let op = Op::AuthChain {
            room: room.as_str().to_owned(),
            events: wire::events_out(&events),
            include_given,
        };
        match self.call(op).await? {
            Reply::Events(e) => wire::events_in(e),
            other => Err(unexpected(&other)),
        }
    }

    async fn auth_chain_difference(
        &self,
        room: RoomId,
        state_sets: Vec<BTreeSet<EventId>>,
        conflicted: Option<ConflictedSubgraph>,
    ) -> Result<AuthDifference> {
        let op = Op::AuthDifference {
            room: room.as_str().to_owned(),
            sets: state_sets.iter().map(wire::events_out).collect(),
            conflicted: conflicted.map(|c| {
                (
                    wire::events_out(&c.conflicted),
                    wire::events_out(&c.additional_backwards_reachable),
                )
            }),
        };
        match self.call(op).await? {
            Reply::AuthDifference { difference, subgraph } => Ok(AuthDifference {
                auth_difference: wire::events_in(difference)?,
                conflicted_subgraph: subgraph.map(wire::events_in).transpose()?,
            }),
            other => Err(unexpected(&other)),
        }
    }
}
