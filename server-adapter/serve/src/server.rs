//! [`Server`]: the accept loop, limits, figures and graceful shutdown.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use mxstate_api::Result;
use mxstate_engine::{Engine, EngineStore};
use mxstate_remote::auth::Secret;
use mxstate_remote::frame::DEFAULT_MAX_FRAME;
use mxstate_remote::Addr;

use crate::listen::{self, Listener};

/// How the service listens and what it allows.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: Addr,
    /// Clients must prove they hold it (required for TCP beyond loopback).
    pub secret: Option<Secret>,
    pub max_frame: u32,
    pub max_connections: usize,
    /// Requests of one connection running at once.
    pub max_in_flight: usize,
    /// Time a new client has to complete the handshake.
    pub handshake_timeout: Duration,
    /// Time a frame has to arrive whole once its length was read.
    pub frame_timeout: Duration,
    /// Time running requests get to finish at shutdown.
    pub drain_timeout: Duration,
}

impl ServeOptions {
    /// The defaults for `addr`.
    pub fn new(addr: Addr) -> Self {
        ServeOptions {
            addr,
            secret: None,
            max_frame: DEFAULT_MAX_FRAME,
            max_connections: 1024,
            max_in_flight: 64,
            handshake_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// The service's counters.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    /// Clients refused at the handshake (or over the connection limit).
    pub refused: AtomicU64,
    pub requests: AtomicU64,
    /// Requests answered with an error.
    pub errors: AtomicU64,
    /// Reads answered from the engine's caches on the connection's task.
    pub reads_cached: AtomicU64,
    /// Reads that needed the store, run on the blocking pool.
    pub reads_blocking: AtomicU64,
}

/// What every connection shares.
pub struct Shared {
    pub store: EngineStore,
    pub secret: Option<Secret>,
    pub limits: ServeOptions,
    pub stats: ServerStats,
}

impl Shared {
    /// The service's counters and the database's figures, as JSON.
    pub fn stats_json(&self) -> Result<String> {
        let s = self.store.engine().stats()?;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let v = serde_json::json!({
            "service": {
                "connections_open": n(&self.stats.connections_open),
                "connections_total": n(&self.stats.connections_total),
                "refused": n(&self.stats.refused),
                "requests": n(&self.stats.requests),
                "errors": n(&self.stats.errors),
                "reads_cached": n(&self.stats.reads_cached),
                "reads_blocking": n(&self.stats.reads_blocking),
            },
            "database": {
                "location": self.store.engine().location(),
                "rooms": s.rooms,
                "groups": s.groups,
                "snapshots": s.snapshots,
                "event_mappings": s.event_mappings,
                "bytes_on_disk": s.bytes_on_disk,
            },
        });
        Ok(v.to_string())
    }
}

/// A bound service, ready to run.
pub struct Server {
    listener: Listener,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds the address of `opts` for `engine`.
    pub async fn bind(engine: Arc<Engine>, opts: ServeOptions) -> Result<Server> {
        let listener = listen::bind(&opts.addr, opts.secret.is_some()).await?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                store: EngineStore::new(engine),
                secret: opts.secret.clone(),
                limits: opts,
                stats: ServerStats::default(),
            }),
        })
    }

    /// The bound address (with the actual port).
    pub fn local(&self) -> String {
        self.listener.local()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets the
    /// running requests finish (up to the drain timeout) and returns; the
    /// caller then closes the database.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        info!(address = %self.local(), "serving");
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                a = accept(&self.listener) => a,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let stats = &self.shared.stats;
            if conns.len() >= self.shared.limits.max_connections {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                warn!(%peer, "client refused: {} connections open", conns.len());
                continue;
            }
            stats.connections_total.fetch_add(1, Ordering::Relaxed);
            stats.connections_open.fetch_add(1, Ordering::Relaxed);
            let (shared, stop) = (self.shared.clone(), stop_rx.clone());
            conns.spawn(async move {
                match stream {
                    Stream::Unix(s) => crate::conn::handle(s, peer, shared.clone(), stop).await,
                    Stream::Tcp(s) => crate::conn::handle(s, peer, shared.clone(), stop).await,
                }
                shared.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
            });
        }
        info!(connections = conns.len(), "shutting down: finishing running requests");
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(self.shared.limits.drain_timeout, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                "requests still running after {:?}: abandoned",
                self.shared.limits.drain_timeout
            );
            conns.abort_all();
        }
        info!("stopped");
        Ok(())
    }
}

enum Stream {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn accept(l: &Listener) -> std::io::Result<(Stream, String)> {
    match l {
        Listener::Unix { listener, .. } => {
            let (s, _) = listener.accept().await?;
            Ok((Stream::Unix(s), "unix-client".to_owned()))
        }
        Listener::Tcp(listener) => {
            let (s, a) = listener.accept().await?;
            s.set_nodelay(true)?;
            Ok((Stream::Tcp(s), a.to_string()))
        }
    }
}
