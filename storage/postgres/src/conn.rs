//! Connections on threads of their own.
//!
//! The engine's calls are blocking, and they are made from plain threads
//! and from async tasks alike (`mxstate serve` reads on its connection
//! tasks). The `postgres` client blocks on a runtime of its own, which
//! must not happen on an async runtime's thread: so every connection
//! lives on a dedicated thread and callers hand it jobs, waiting for the
//! answer on a plain channel (allowed anywhere).
//!
//! A [`Pool`] lends connections to one caller at a time (a scan keeps its
//! connection for its transaction), opening more up to a maximum and
//! dropping those that broke.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use mxstate_api::{Error, Result};
use postgres::{Client, NoTls};

use crate::error::pg;

type Job = Box<dyn FnOnce(&mut Client) + Send>;

/// One connection and the thread it lives on.
pub struct Conn {
    jobs: Option<mpsc::Sender<Job>>,
    /// Set when the server closed the connection (checked after each job).
    closed: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Conn {
    /// Connects to `url` on a new thread.
    pub fn open(url: &str) -> Result<Conn> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready, connected) = mpsc::sync_channel::<Result<()>>(1);
        let url = url.to_owned();
        let thread = std::thread::Builder::new()
            .name("mxstate-pg".into())
            .spawn(move || {
                let mut client = match Client::connect(&url, NoTls) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready.send(Err(pg(e)));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                while let Ok(job) = inbox.recv() {
                    job(&mut client);
                }
            })
            .map_err(|e| Error::internal(format!("cannot start a connection thread: {e}")))?;
        connected
            .recv()
            .map_err(|_| Error::internal("the connection thread ended before connecting"))??;
        Ok(Conn {
            jobs: Some(jobs),
            closed: Arc::new(AtomicBool::new(false)),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the connection and waits for its answer.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Client) -> Result<T> + Send + 'static) -> Result<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        let closed = self.closed.clone();
        let job: Job = Box::new(move |c| {
            let r = f(c);
            closed.store(c.is_closed(), Ordering::Relaxed);
            let _ = tx.send(r);
        });
        self.jobs
            .as_ref()
            .ok_or_else(|| Error::internal("connection closed"))?
            .send(job)
            .map_err(|_| Error::internal("the connection thread is gone"))?;
        rx.recv()
            .map_err(|_| Error::internal("the connection thread ended during a query"))?
    }

    /// Starts `f` on the connection without waiting (it reports through
    /// channels of its own).
    pub fn start(&self, f: impl FnOnce(&mut Client) + Send + 'static) -> Result<()> {
        let closed = self.closed.clone();
        self.jobs
            .as_ref()
            .ok_or_else(|| Error::internal("connection closed"))?
            .send(Box::new(move |c| {
                f(c);
                closed.store(c.is_closed(), Ordering::Relaxed);
            }))
            .map_err(|_| Error::internal("the connection thread is gone"))
    }

    /// Whether the connection is still usable, as of its last job.
    pub fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Relaxed)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Closing the channel ends the thread after its current job; not
        // waited for (a job on a dead connection may wait for TCP's timeout).
        self.jobs = None;
        drop(self.thread.take());
    }
}

/// Connections lent to one caller at a time.
pub struct Pool {
    url: String,
    max: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Conn>,
    open: usize,
}

/// A connection on loan; back to the pool when dropped (unless it broke).
pub struct Lent<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl std::ops::Deref for Lent<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
            .as_ref()
            .expect("invariant: a loan holds its connection until dropped")
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let healthy = conn.is_open();
        let Ok(mut s) = self.pool.state.lock() else { return };
        if healthy {
            s.idle.push(conn);
        } else {
            s.open = s.open.saturating_sub(1);
        }
        drop(s);
        self.pool.freed.notify_one();
    }
}

impl Pool {
    /// A pool of at most `max` connections to `url`, opened when needed.
    pub fn new(url: &str, max: usize) -> Pool {
        Pool {
            url: url.to_owned(),
            max: max.max(1),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// A connection: an idle one, a new one, or the next one freed.
    pub fn lend(&self) -> Result<Lent<'_>> {
        let mut s = self
            .state
            .lock()
            .map_err(|_| Error::internal("connection pool lock poisoned"))?;
        loop {
            if let Some(conn) = s.idle.pop() {
                return Ok(Lent {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if s.open < self.max {
                s.open += 1;
                drop(s);
                return match Conn::open(&self.url) {
                    Ok(conn) => Ok(Lent {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        if let Ok(mut s) = self.state.lock() {
                            s.open = s.open.saturating_sub(1);
                        }
                        Err(e)
                    }
                };
            }
            s = self
                .freed
                .wait(s)
                .map_err(|_| Error::internal("connection pool lock poisoned"))?;
        }
    }
}
