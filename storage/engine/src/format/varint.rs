//! LEB128 varints and a bounds-checked reader: bytes from disk never panic.

use mxstate_api::{Error, Result};

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Zigzag-encodes a signed value.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over bytes read from disk. Every read is checked.
#[derive(Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf`, a `what` record (named in errors).
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }
    /// An error at the current position.
    pub fn error(&self, detail: impl Into<String>) -> Error {
        Error::corrupt(self.what, format!("byte {}", self.pos), detail)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or_else(|| self.error("unexpected end"))?;
        self.pos += 1;
        Ok(b)
    }
    /// An unsigned varint.
    pub fn u64(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    return Err(self.error("varint overflows 64 bits"));
                }
                return Ok(v);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }
    /// An unsigned varint that must fit 32 bits.
    pub fn u32(&mut self) -> Result<u32> {
        let v = self.u64()?;
        u32::try_from(v).map_err(|_| self.error(format!("{v} does not fit 32 bits")))
    }
    /// A varint count, checked against the bytes left (each item takes >= `min_item_bytes`).
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize> {
        let n = self.u64()?;
        let left = self.remaining().len() as u64;
        if n.saturating_mul(min_item_bytes as u64) > left {
            return Err(self.error(format!("count {n} exceeds the {left} bytes left")));
        }
        Ok(n as usize)
    }
    /// A signed zigzag varint.
    pub fn i64(&mut self) -> Result<i64> {
        Ok(unzigzag(self.u64()?))
    }
    /// `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| self.error(format!("{n} bytes wanted, {} left", self.buf.len() - self.pos)))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.error("range out of bounds"))?;
        self.pos = end;
        Ok(s)
    }
    /// What is left.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }
    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(self.error(format!("{} trailing bytes", self.buf.len() - self.pos)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(v in any::<u64>(), s in any::<i64>()) {
            let mut out = Vec::new();
            put_u64(&mut out, v);
            put_u64(&mut out, zigzag(s));
            let mut r = Reader::new(&out, "test");
            prop_assert_eq!(r.u64().unwrap(), v);
            prop_assert_eq!(r.i64().unwrap(), s);
            r.finish().unwrap();
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut r = Reader::new(&bytes, "test");
            while r.u64().is_ok() {}
        }
    }

    #[test]
    fn truncated_is_an_error() {
        let mut r = Reader::new(&[0x80], "test");
        assert!(matches!(r.u64(), Err(Error::Corrupt { .. })));
        let mut r = Reader::new(&[0xff; 11], "test");
        assert!(r.u64().is_err());
    }
}
