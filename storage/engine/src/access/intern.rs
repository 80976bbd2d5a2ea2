//! Interned strings: `text -> nid` and `nid -> text`, through the caches.

use std::sync::Arc;

use crate::format::keys::{self, StrKind};
use crate::format::values;
use crate::kv::{Cf, KvStore};
use mxstate_api::{Error, Result};

use super::cache::Caches;

/// The nid of `s`, if interned.
pub fn lookup(kv: &dyn KvStore, caches: &Caches, kind: StrKind, s: &str) -> Result<Option<u64>> {
    if let Some(n) = caches.nid(kind, s) {
        return Ok(Some(n));
    }
    let Some(v) = kv.get(Cf::Strings, &keys::string_key(kind, s))? else {
        return Ok(None);
    };
    let n = values::decode_string_nid(&v)?;
    caches.remember(kind, n, Arc::from(s));
    Ok(Some(n))
}

fn decode_text(kind: StrKind, nid: u64, bytes: Vec<u8>) -> Result<Arc<str>> {
    let s = keys::text_from_bytes(kind, &bytes, || format!("nids/{}/{nid}", kind as u8 as char))?;
    Ok(Arc::from(s))
}

/// The texts of `nids`, in order. Misses are read in one multi-get.
pub fn resolve(kv: &dyn KvStore, caches: &Caches, kind: StrKind, nids: &[u64]) -> Result<Vec<Arc<str>>> {
    let mut out: Vec<Option<Arc<str>>> = nids.iter().map(|&n| caches.text(kind, n)).collect();
    let missing: Vec<usize> = (0..nids.len()).filter(|&i| out[i].is_none()).collect();
    if !missing.is_empty() {
        let ks: Vec<Vec<u8>> = missing.iter().map(|&i| keys::nid_key(kind, nids[i]).to_vec()).collect();
        for (&i, v) in missing.iter().zip(kv.multi_get(Cf::Nids, &ks)?) {
            let nid = nids[i];
            let v = v.ok_or_else(|| {
                Error::corrupt(
                    "interned string",
                    format!("nids/{}/{nid}", kind as u8 as char),
                    "missing",
                )
            })?;
            let s = decode_text(kind, nid, v)?;
            caches.remember_text(kind, nid, s.clone());
            out[i] = Some(s);
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, s)| s.ok_or_else(|| Error::corrupt("interned string", format!("#{i}"), "unresolved")))
        .collect()
}

/// The text of one nid.
pub fn resolve_one(kv: &dyn KvStore, caches: &Caches, kind: StrKind, nid: u64) -> Result<Arc<str>> {
    resolve(kv, caches, kind, &[nid])?
        .pop()
        .ok_or_else(|| Error::corrupt("interned string", format!("nid {nid}"), "unresolved"))
}
