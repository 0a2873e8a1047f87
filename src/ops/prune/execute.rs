//! Carrying out a prune plan under the lock: sweeping due marks (repacking what is still
//! needed, superseding index files, deleting condemned packs) and storing the new mark.

use super::lock::PruneLock;
use super::marks::write_wait;
use super::{cancelled, PruneOptions, PrunePlan, PruneReport, Repack, SweepPlan};
use crate::cache::Location;
use crate::codec::object;
use crate::error::{Error, Result};
use crate::id::{BlobKind, IndexId, PackId};
use crate::layout::{pack_path, Object, StoredId};
use crate::lease::PruneMark;
use crate::repository::ReadRepository;
use crate::time::Time;
use crate::writer::{Writer, WriterOptions};
use std::collections::HashSet;

/// Carries out a plan made under `lock`.
pub fn execute(repo: &ReadRepository, opts: &PruneOptions, plan: &PrunePlan, lock: &PruneLock) -> Result<PruneReport> {
    let b = repo.backend();
    let mut report = PruneReport::default();

    for w in plan.waiting.iter().filter(|w| w.write_wait) {
        write_wait(repo, &w.mark, opts, w.replace_wait)?;
        report.waits_written += 1;
    }

    if let Some(s) = &plan.sweep {
        cancelled(opts)?;
        lock.ensure()?;
        // New index files first (P3): every surviving pack, superseding every old file.
        b.sync()?;
        // Every kept entry goes into this host's cache again, under the new files' names: in bulk
        // when they are many (at 10 million blobs, compaction was 61 % of a sweep's CPU).
        repo.cache().bulk(s.old_index.len(), || write_new_index(repo, s))?;
        lock.ensure()?;
        for id in &s.old_index {
            cancelled(opts)?;
            b.delete(&id.path())?;
            report.replaced_index += 1;
        }
        for r in &s.delete {
            cancelled(opts)?;
            b.delete(&pack_path(r.kind, &r.id))?;
            report.deleted_packs += 1;
            report.deleted_bytes += r.size;
        }
        report.rescued_packs = s.rescued.len();
        report.verified_copies = s.verified_copies;
        for m in &s.marks {
            b.delete(&Object::Wait(m.clone()).path())?;
            b.delete(&Object::Mark(m.clone()).path())?;
        }
        // This process's cache still names the replaced files: the sync finds them gone and
        // rebuilds it from storage.
        repo.sync_index()?;
    }

    if let Some(m) = &plan.mark {
        let mut condemned: Vec<(BlobKind, PackId)> =
            m.unused.iter().chain(&m.orphans).map(|r| (r.kind, r.id)).collect();
        if !m.repack.is_empty() {
            // The repack relies on no copy it has not read: an index entry elsewhere may be forged.
            let mut w = Writer::new(repo, WriterOptions { verify_dedup: true, ..WriterOptions::default() }, "prune")?;
            w.condemn(m.repack.iter().map(|r| r.pack.id));
            for r in &m.repack {
                cancelled(opts)?;
                match repack_one(repo, &w, r) {
                    Ok(n) => {
                        report.repacked_blobs += n;
                        report.repacked_packs += 1;
                        condemned.push((r.pack.kind, r.pack.id));
                    }
                    // Unreadable (an archive tier, a damaged pack): left alone, not condemned.
                    // Upload failures surface at `finish`, before any mark.
                    Err(e) => {
                        report.repack_skipped.push(format!("{}: {e}", pack_path(r.pack.kind, &r.pack.id)));
                    }
                }
            }
            // New packs and their index exist before the mark condemns the old ones.
            w.finish()?;
        }
        if !condemned.is_empty() {
            // A long repack may outlive the lock; a mark made after another prune took over would race it.
            lock.ensure()?;
            let suffix = hex::encode(crate::crypto::random_32());
            let path = Object::Mark(suffix.clone()).path();
            let mark =
                PruneMark::V1 { created: Time::now(), condemned: condemned.clone(), snapshots: m.snapshots.clone() };
            b.write_new(&path, &object::encode_prune_mark(repo.keys(), &path, &mark)?)?;
            write_wait(repo, &suffix, opts, false)?;
            report.condemned = condemned.len();
            report.marked = Some(suffix);
        }
    }
    Ok(report)
}

/// Writes the new index files of a sweep (format-spec §10.6 sweep step 4): every kept pack's
/// entry, read again from the old files one at a time (the first file that lists it, as the
/// plan read them) and checked against the digest the plan recorded, bounded by [`IndexPart`] like
/// a session's (a file of a 10-million-blob repository made every reader hold ~1.5 million entries
/// at once), each superseding every old file; with no pack left, one empty file still records
/// what it supersedes. An entry that changed or vanished since the plan stops the sweep before any
/// old file or pack is deleted (the files written so far are what a crash would leave, P5).
///
/// [`IndexPart`]: crate::writer::IndexPart
fn write_new_index(repo: &ReadRepository, s: &SweepPlan) -> Result<()> {
    let b = repo.backend();
    let mut done: HashSet<PackId> = HashSet::new();
    let mut part = crate::writer::IndexPart::default();
    let mut files = 0;
    let changed = |id: &IndexId, what: String| {
        Error::refused(format!(
            "index file {id} changed since the prune plan read it ({what}); no old index file or pack was deleted, run prune again"
        ))
    };
    for id in &s.old_index {
        let f = repo.read_index(id).map_err(|e| changed(id, e.to_string()))?;
        for ip in f.into_packs() {
            let Some(digest) = s.keep.get(&ip.id) else { continue };
            if !done.insert(ip.id) {
                continue;
            }
            if super::entry_digest(&ip) != *digest {
                return Err(changed(id, format!("its entry for pack {} differs", ip.id)));
            }
            if let Some(full) = part.push(ip, crate::writer::BLOBS_PER_INDEX) {
                crate::writer::write_index_file(b, repo.keys(), repo.cache(), s.old_index.clone(), full)?;
                files += 1;
            }
        }
    }
    if let Some(id) = s.keep.keys().find(|id| !done.contains(id)) {
        return Err(Error::refused(format!(
            "pack {id} is no longer in the index files the prune plan read; no old index file or pack was deleted, run prune again"
        )));
    }
    if !part.is_empty() || files == 0 {
        crate::writer::write_index_file(b, repo.keys(), repo.cache(), s.old_index.clone(), part.take())?;
    }
    Ok(())
}

/// Stores the referenced blobs of one pack again through `w`; returns how many.
pub(super) fn repack_one(repo: &ReadRepository, w: &Writer, r: &Repack) -> Result<u64> {
    let ip = &r.entry;
    let pack = Object::Pack(ip.kind, ip.id);
    let path = pack.path();
    // A pack whose stored size is not the one its index entry gives is damaged and left alone.
    // Then one range of that size, into one buffer of that size: a remote response is neither
    // gathered and then copied whole nor taken past it.
    if let Some(info) = repo.backend().stat(&path)?.filter(|i| i.size != ip.size) {
        return Err(Error::corrupt(pack, format!("{} bytes, the index says {}", info.size, ip.size)));
    }
    let bytes = repo.backend().read_range(&path, 0, ip.size)?;
    let mut n = 0;
    for &i in &r.used {
        let bl = &ip.blobs[i];
        let loc = Location::of(ip, bl)
            .ok_or_else(|| Error::corrupt(pack.clone(), "its index entry names no such session"))?;
        let start = bl.offset as usize;
        let end = start.saturating_add(bl.length as usize);
        let sealed = bytes.get(start..end).ok_or_else(|| Error::corrupt(pack.clone(), "blob past its end"))?;
        let plain = repo.open_blob_at(&loc, &bl.id, sealed)?;
        if w.store_with_id(bl.kind, bl.id, &plain)? {
            n += 1;
        }
    }
    Ok(n)
}
