//! One client connection: the handshake, then pipelined requests.
//!
//! A read the engine's caches answer is answered on the connection's task
//! as it arrives (microseconds); other reads (cold groups, scans) and
//! writes, which wait for the disk or an fsync, run on tasks of their own
//! (on tokio's blocking pool), so a client may pipeline them and no
//! runtime thread waits on the disk. Every
//! answer is written to the socket by whoever produced it, under a lock.
//! Reading stops while `max_in_flight` requests of the connection are
//! running (backpressure reaches the client through the socket), a frame
//! over the limit, a frame that does not decode, or one that does not
//! arrive whole within the frame deadline closes the connection with a
//! logged reason. Requests already running finish and are answered if
//! the client is still there; an engine write is atomic, so a client that
//! goes away mid-request leaves it applied whole or not at all.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, Mutex, Semaphore};
use tokio::time::timeout;
use tracing::{debug, info, warn};

use mxstate_remote::auth::{self, ClientHello, ServerHello, Welcome, MAGIC, VERSION};
use mxstate_remote::frame::{self, FrameError};
use mxstate_remote::wire::{Op, Request, Response, WError};

use crate::dispatch;
use crate::server::Shared;

/// Serves one client until it leaves, breaks the protocol, or the service
/// shuts down.
pub async fn handle<S>(stream: S, peer: String, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let limits = &shared.limits;
    match timeout(limits.handshake_timeout, handshake(&mut r, &mut w, &shared)).await {
        Ok(Ok(())) => debug!(%peer, "client accepted"),
        Ok(Err(why)) => {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            warn!(%peer, reason = %why, "client refused");
            return;
        }
        Err(_) => {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            warn!(%peer, "client refused: no handshake within {:?}", limits.handshake_timeout);
            return;
        }
    }
    let max = limits.max_frame;
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    let w = Arc::new(Mutex::new(w));
    let reason = loop {
        let len = tokio::select! {
            _ = shutdown.changed() => break "the service is shutting down".to_owned(),
            len = frame::read_len(&mut r, max) => len,
        };
        let len = match len {
            Ok(l) => l,
            Err(FrameError::Closed) => break "client closed the connection".to_owned(),
            Err(e) => break e.to_string(),
        };
        let req: Request = match timeout(limits.frame_timeout, frame::read_body(&mut r, len, max)).await {
            Ok(Ok(req)) => req,
            Ok(Err(e)) => break e.to_string(),
            Err(_) => {
                break format!(
                    "a frame of {len} bytes did not arrive within {:?}",
                    limits.frame_timeout
                )
            }
        };
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        if dispatch::inline(&req.op) {
            if let Some(reply) = dispatch::read_cached(&shared.store, &req.op) {
                // Microseconds from the engine's caches: answered right
                // here, without a task or a thread hop.
                shared.stats.reads_cached.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = respond(&w, &shared, req.id, Ok(reply), max).await {
                    break format!("cannot answer: {e}");
                }
                continue;
            }
            shared.stats.reads_blocking.fetch_add(1, Ordering::Relaxed);
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break "internal: request limiter closed".to_owned();
        };
        let (shared, w) = (shared.clone(), w.clone());
        tokio::spawn(async move {
            let result = run(&shared, req.op).await;
            let _ = respond(&w, &shared, req.id, result, max).await;
            drop(permit);
        });
    };
    if reason == "client closed the connection" {
        debug!(%peer, "client left");
    } else {
        info!(%peer, %reason, "connection closed");
    }
    // Let the running requests finish and their answers go out.
    let all = u32::try_from(limits.max_in_flight).unwrap_or(u32::MAX);
    let _ = in_flight.acquire_many(all).await;
}

/// Sends the answer to request `id`; an answer over the frame limit
/// becomes a `Capacity` error (the client gets an error, not silence).
async fn respond<W: AsyncWrite + Unpin>(
    w: &Mutex<W>,
    shared: &Shared,
    id: u64,
    result: mxstate_api::Result<mxstate_remote::wire::Reply>,
    max: u32,
) -> std::io::Result<()> {
    if result.is_err() {
        shared.stats.errors.fetch_add(1, Ordering::Relaxed);
    }
    let resp = Response {
        id,
        result: result.map_err(|e| WError::from_error(&e)),
    };
    let bytes = match frame::encode(&resp, max) {
        Ok(bytes) => bytes,
        Err(e) => {
            warn!("answer to request {id} not sent: {e}");
            let refusal = Response {
                id,
                result: Err(WError::other(
                    mxstate_api::ErrorKind::Capacity,
                    format!("the answer is over the frame limit of {max} bytes: ask for fewer groups at once"),
                )),
            };
            frame::encode(&refusal, max).map_err(|e| std::io::Error::other(e.to_string()))?
        }
    };
    let mut w = w.lock().await;
    w.write_all(&bytes).await?;
    w.flush().await
}

async fn run(shared: &Arc<Shared>, op: Op) -> mxstate_api::Result<mxstate_remote::wire::Reply> {
    if op == Op::Stats {
        let s = shared.clone();
        return tokio::task::spawn_blocking(move || s.stats_json())
            .await
            .map_err(|e| mxstate_api::Error::internal(format!("stats task failed: {e}")))?
            .map(mxstate_remote::wire::Reply::Stats);
    }
    dispatch::run(&shared.store, op).await
}

/// The server's side of the handshake; `Err` carries the logged reason.
async fn handshake<R, W>(r: &mut R, w: &mut W, shared: &Shared) -> Result<(), String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let max = shared.limits.max_frame;
    let nonce = auth::nonce().map_err(|e| format!("no random nonce: {e}"))?;
    let hello = ServerHello {
        magic: MAGIC,
        version: VERSION,
        secret_required: shared.secret.is_some(),
        nonce,
        max_frame: max,
    };
    frame::write(w, &hello, max).await.map_err(|e| e.to_string())?;
    // A hello is small: no need to accept a big frame before the client is known.
    let answer: ClientHello = frame::read(r, 1024).await.map_err(|e| format!("hello: {e}"))?;
    let refusal = if answer.magic != MAGIC {
        Some("not an mxstate client (bad magic)".to_owned())
    } else if answer.version != VERSION {
        Some(format!(
            "client speaks protocol version {}, this service {VERSION}",
            answer.version
        ))
    } else if let Some(secret) = &shared.secret {
        let ok = answer.proof.is_some_and(|p| secret.verify(&nonce, &p));
        (!ok).then(|| "wrong or missing shared secret".to_owned())
    } else {
        None
    };
    if let Some(why) = refusal {
        let _ = frame::write(w, &Welcome::Refused(why.clone()), max).await;
        return Err(why);
    }
    frame::write(w, &Welcome::Accepted, max)
        .await
        .map_err(|e| e.to_string())
}
