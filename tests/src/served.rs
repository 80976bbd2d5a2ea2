//! A database served by `mxstate serve` (the library, in a thread with its
//! own runtime), and a [`RemoteStore`] on it: the service as a separate
//! process sees it, over a unix socket.

use std::sync::Arc;
use std::thread::JoinHandle;

use mxstate_engine::EngineOptions;
use mxstate_remote::{Addr, RemoteOptions, RemoteStore};
use mxstate_serve::{ServeOptions, Server};
use tokio::sync::oneshot;

/// A running service; stopping it (drop) shuts it down gracefully and
/// closes the database.
pub struct Served {
    dir: Option<tempfile::TempDir>,
    pub addr: Addr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Served {
    /// Serves a new database in a temporary directory on a unix socket.
    pub fn start(opts: EngineOptions) -> Served {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr = Addr::Unix(dir.path().join("mxstate.sock"));
        Served::start_at(dir, addr, opts, |o| o)
    }

    /// Serves the database `dir/db` at `addr`, with service options
    /// adjusted by `tune`.
    pub fn start_at(
        dir: tempfile::TempDir,
        addr: Addr,
        opts: EngineOptions,
        tune: impl FnOnce(ServeOptions) -> ServeOptions + Send + 'static,
    ) -> Served {
        let db = dir.path().join("db");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let serve_addr = addr.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let engine = Arc::new(mxstate_rocks::open(&db, opts).expect("open the served database"));
                let server = Server::bind(engine, tune(ServeOptions::new(serve_addr)))
                    .await
                    .expect("bind");
                let _ = ready_tx.send(server.local());
                server
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        let local = ready_rx.recv().expect("the service started");
        let addr = match addr {
            Addr::Tcp(_) => Addr::parse(&local).expect("bound address"),
            a => a,
        };
        Served {
            dir: Some(dir),
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The directory holding the database (`db`) and the socket.
    pub fn path(&self) -> &std::path::Path {
        self.dir
            .as_ref()
            .expect("the directory lives as long as the service")
            .path()
    }

    /// Stops the service gracefully and starts it again on the same
    /// database and address.
    pub fn restart(mut self, opts: EngineOptions) -> Served {
        self.stop_now();
        let dir = self.dir.take().expect("the directory lives as long as the service");
        Served::start_at(dir, self.addr.clone(), opts, |o| o)
    }

    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// A client with default options.
    pub fn client(&self) -> RemoteStore {
        RemoteStore::new(self.addr.clone(), RemoteOptions::default())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// A served database and a client: for the conformance suite.
pub fn served_store(opts: EngineOptions) -> (Served, RemoteStore) {
    let s = Served::start(opts);
    let c = s.client();
    (s, c)
}
