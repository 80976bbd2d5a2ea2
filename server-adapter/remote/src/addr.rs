//! [`Addr`]: where a service listens.

use std::fmt;
use std::path::PathBuf;

use mxstate_api::{Error, Result};

/// A service address: `unix:PATH` or `tcp:HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Unix(PathBuf),
    Tcp(String),
}

impl Addr {
    /// Parses `unix:PATH` or `tcp:HOST:PORT`.
    pub fn parse(s: &str) -> Result<Addr> {
        let bad = |why: &str| Error::InvalidAddress(format!("{s:?}: {why}"));
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err(bad("empty socket path"));
            }
            Ok(Addr::Unix(PathBuf::from(p)))
        } else if let Some(hp) = s.strip_prefix("tcp:") {
            let (host, port) = hp.rsplit_once(':').ok_or_else(|| bad("expected tcp:HOST:PORT"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad("expected tcp:HOST:PORT with a port number"));
            }
            Ok(Addr::Tcp(hp.to_owned()))
        } else {
            Err(bad("expected unix:PATH or tcp:HOST:PORT"))
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
            Addr::Tcp(hp) => write!(f, "tcp:{hp}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_refuses_others() {
        assert_eq!(
            Addr::parse("unix:/run/mx.sock").ok(),
            Some(Addr::Unix("/run/mx.sock".into()))
        );
        assert_eq!(
            Addr::parse("tcp:127.0.0.1:7700").ok(),
            Some(Addr::Tcp("127.0.0.1:7700".into()))
        );
        assert_eq!(Addr::parse("tcp:[::1]:7700").ok(), Some(Addr::Tcp("[::1]:7700".into())));
        for bad in ["", "unix:", "tcp:host", "tcp::80", "tcp:h:99999", "http://x"] {
            let e = Addr::parse(bad).err().map(|e| e.kind());
            assert_eq!(e, Some(mxstate_api::ErrorKind::InvalidInput), "{bad}");
        }
    }
}
