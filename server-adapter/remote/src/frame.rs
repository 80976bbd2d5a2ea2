//! Frames: a 4-byte big-endian length, then that many bytes of bincode
//! (varint integers, little-endian, the size limit enforced while decoding).

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The default largest frame, either way (64 MiB).
pub const DEFAULT_MAX_FRAME: u32 = 64 << 20;

/// Why a frame could not be read or written.
#[derive(Debug)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    Closed,
    /// A frame longer than the limit was announced.
    TooLarge {
        len: u32,
        max: u32,
    },
    /// The bytes are not a message of the protocol.
    Malformed(String),
    Io(std::io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Closed => write!(f, "connection closed"),
            FrameError::TooLarge { len, max } => write!(f, "frame of {len} bytes is over the limit of {max}"),
            FrameError::Malformed(e) => write!(f, "malformed frame: {e}"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

fn codec(max: u32) -> impl Options {
    bincode::DefaultOptions::new().with_limit(u64::from(max))
}

/// Encodes a message as one frame (length prefix included).
pub fn encode<T: Serialize>(msg: &T, max: u32) -> Result<Vec<u8>, FrameError> {
    let body = codec(max)
        .serialize(msg)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l <= max)
        .ok_or(FrameError::TooLarge {
            len: u32::try_from(body.len()).unwrap_or(u32::MAX),
            max,
        })?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Writes one message.
pub async fn write<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, msg: &T, max: u32) -> Result<(), FrameError> {
    let bytes = encode(msg, max)?;
    w.write_all(&bytes).await.map_err(FrameError::Io)?;
    w.flush().await.map_err(FrameError::Io)
}

/// Reads one frame's length; `Closed` at a clean end of stream.
pub async fn read_len<R: AsyncRead + Unpin>(r: &mut R, max: u32) -> Result<u32, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = u32::from_be_bytes(len);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Reads a frame body of `len` bytes and decodes it.
pub async fn read_body<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
    len: u32,
    max: u32,
) -> Result<T, FrameError> {
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Malformed(format!("truncated frame: {len} bytes announced")),
        _ => FrameError::Io(e),
    })?;
    decode(&body, max)
}

/// Decodes a frame body; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(body: &[u8], max: u32) -> Result<T, FrameError> {
    codec(max)
        .reject_trailing_bytes()
        .deserialize(body)
        .map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Reads one whole message.
pub async fn read<R: AsyncRead + Unpin, T: DeserializeOwned>(r: &mut R, max: u32) -> Result<T, FrameError> {
    let len = read_len(r, max).await?;
    read_body(r, len, max).await
}
