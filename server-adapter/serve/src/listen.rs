//! Binding the service's address.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use mxstate_api::{Error, Result};
use mxstate_remote::Addr;
use tokio::net::{TcpListener, UnixListener};

/// A bound listener.
pub enum Listener {
    Unix { listener: UnixListener, path: PathBuf },
    Tcp(TcpListener),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Binds `addr`. A TCP address that is not loopback needs a secret; a
/// unix socket is made readable and writable by its owner and group only
/// (access is by file permissions), and a stale socket file is replaced
/// only if no service answers on it.
pub async fn bind(addr: &Addr, has_secret: bool) -> Result<Listener> {
    match addr {
        Addr::Unix(path) => {
            if path.exists() {
                if tokio::net::UnixStream::connect(path).await.is_ok() {
                    return Err(Error::InvalidRequest(format!(
                        "{}: a service is already listening there",
                        path.display()
                    )));
                }
                let meta = std::fs::symlink_metadata(path).map_err(io(path))?;
                use std::os::unix::fs::FileTypeExt;
                if !meta.file_type().is_socket() {
                    return Err(Error::InvalidRequest(format!(
                        "{}: exists and is not a socket",
                        path.display()
                    )));
                }
                std::fs::remove_file(path).map_err(io(path))?;
            }
            let listener = UnixListener::bind(path).map_err(io(path))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io(path))?;
            Ok(Listener::Unix {
                listener,
                path: path.clone(),
            })
        }
        Addr::Tcp(hp) => {
            let addrs: Vec<SocketAddr> = hp
                .to_socket_addrs()
                .map_err(|e| Error::InvalidAddress(format!("tcp:{hp}: {e}")))?
                .collect();
            let first = addrs
                .first()
                .ok_or_else(|| Error::InvalidAddress(format!("tcp:{hp}: resolves to nothing")))?;
            if !addrs.iter().all(|a| is_loopback(a.ip())) && !has_secret {
                return Err(Error::InvalidRequest(format!(
                    "tcp:{hp} is reachable beyond this machine: give --secret-file (or bind 127.0.0.1)"
                )));
            }
            let l = TcpListener::bind(first)
                .await
                .map_err(|e| Error::InvalidRequest(format!("binding tcp:{hp}: {e}")))?;
            Ok(Listener::Tcp(l))
        }
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

impl Listener {
    /// The bound address, for messages (with the actual port).
    pub fn local(&self) -> String {
        match self {
            Listener::Unix { path, .. } => format!("unix:{}", path.display()),
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp:{a}"),
                Err(_) => "tcp:?".into(),
            },
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}
