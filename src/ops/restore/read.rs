//! Reading a planned blob for restore: open it from the bytes its pack reader fetched, and when
//! that fails (the pack is unreadable, or an index entry is forged or damaged, format-spec §6.2,
//! §12), try every other indexed location of the blob before its files are given up.

use super::batch::PlanBlob;
use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind, PackId};
use crate::layout::Object;
use crate::repository::ReadRepository;
use std::os::unix::fs::FileExt;

/// The plaintext of `b`, whose planned location lies in `pack` (of `kind`); `range` is the result
/// of the ranged read that covers it, starting at `start`. Falls back to the blob's other
/// locations; the plaintext always has the planned length, since the plan placed the file's
/// later chunks by it.
pub(super) fn planned_blob(
    repo: &ReadRepository,
    kind: BlobKind,
    pack: &PackId,
    range: &Result<Vec<u8>>,
    start: u64,
    b: &PlanBlob,
) -> Result<Vec<u8>> {
    let first = range.as_ref().map_err(|e| Error::corrupt(Object::Pack(kind, *pack), e.to_string())).and_then(|r| {
        let from = b.loc.offset.saturating_sub(start) as usize;
        let sealed = r.get(from..from.saturating_add(b.loc.length as usize)).ok_or_else(|| {
            Error::corrupt(Object::Pack(kind, *pack), format!("blob {} lies beyond the end of the pack", b.id))
        })?;
        repo.open_blob_at(&b.loc, &b.id, sealed)
    });
    let err = match first {
        Ok(p) => return Ok(p),
        Err(e) => e,
    };
    let Ok(locs) = repo.locate(b.loc.kind, &b.id) else { return Err(err) };
    for loc in locs.iter().filter(|l| **l != b.loc && l.plain_length == b.loc.plain_length) {
        if let Ok(p) = repo.read_blob_at(loc, &b.id) {
            tracing::warn!("{err}; read blob {} from {} instead", b.id, crate::layout::pack_path(loc.kind, &loc.pack));
            return Ok(p);
        }
    }
    Err(err)
}

/// Checks that the bytes of `f` at `off` are those of data blob `id` and returns their length.
/// Every distinct length its index entries claim is tried, so a forged entry with a wrong length
/// cannot fail the check of a correct file.
pub(super) fn verify_chunk(
    repo: &ReadRepository,
    f: &std::fs::File,
    id: &BlobId,
    off: u64,
    buf: &mut Vec<u8>,
) -> std::result::Result<u64, String> {
    let locs = repo.locate(BlobKind::Data, id).map_err(|e| e.to_string())?;
    if locs.is_empty() {
        return Err(format!("blob {id} not indexed"));
    }
    let mut lengths: Vec<u32> = locs.iter().map(|l| l.plain_length).collect();
    lengths.sort_unstable();
    lengths.dedup();
    for n in lengths {
        buf.resize(n as usize, 0);
        if f.read_exact_at(buf, off).is_ok() && repo.keys().content_id(buf) == *id {
            return Ok(n as u64);
        }
    }
    Err(format!("bytes at offset {off} do not match blob {id}"))
}
