//! `mxstate serve`: the state service.

use std::sync::Arc;

use mxstate_engine::EngineOptions;
use mxstate_remote::Addr;
use mxstate_serve::{ServeOptions, Server};

use crate::cli::ServeArgs;
use crate::error::{CliError, CliResult};

/// Runs the service until SIGTERM or SIGINT, then lets the running
/// requests finish and closes the database.
pub fn run(a: ServeArgs) -> CliResult {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let addr = Addr::parse(&a.listen)?;
    let secret = a.secret_file.as_deref().map(super::target::read_secret).transpose()?;
    let mut opts = ServeOptions::new(addr);
    opts.secret = secret;
    opts.max_frame = a
        .max_frame_mb
        .checked_mul(1 << 20)
        .ok_or_else(|| CliError::Usage("--max-frame-mb is too large (at most 4095)".into()))?;
    opts.max_connections = a.max_connections;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io("tokio runtime", e))?;
    rt.block_on(async {
        let engine = Arc::new(super::open_db(&a.db, EngineOptions::default())?);
        let server = Server::bind(engine.clone(), opts).await?;
        eprintln!("mxstate: serving {} at {}", engine.location(), server.local());
        server.run(shutdown_signal()).await?;
        // The last reference: the database closes here, cleanly.
        drop(engine);
        Ok::<(), CliError>(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handlers, Ctrl-C's default action stops the process.
        _ => std::future::pending::<()>().await,
    }
}
