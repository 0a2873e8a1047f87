//! `repair snapshots` for one file (format-spec §8.2): which of its chunks are lost and, when any
//! is, its content rebuilt from the intact chunks in order. The chunk ids stream one chunk list at
//! a time and the rebuilt content is written one chunk list at a time, so a file costs the same
//! memory however many chunk ids it names (format-spec §7.5); at most [`MAX_LOST_RANGES`] lost
//! ranges are listed per file, the rest counted.

use super::{is_loss, LostItem, LostRange, Pass};
use crate::error::Result;
use crate::id::BlobId;
use crate::tree::Content;
use crate::trees::{chunk_list, ContentWriter, IdsOnly, ListFault, TreeSink};

/// Lost ranges listed per file in a repair report; a file with more has them counted in its
/// `what` text.
pub const MAX_LOST_RANGES: usize = 1024;

/// What one pass over a file's chunk ids found.
struct FileScan {
    /// The first [`MAX_LOST_RANGES`] lost ranges.
    ranges: Vec<LostRange>,
    /// Lost ranges in all.
    lost: u64,
    offset: Option<u64>,
    size_after: u64,
    /// Chunk ids and lost lists seen.
    total: u64,
}

impl Pass<'_, '_, '_> {
    /// A file's repaired content when some of it is lost: the intact chunks in order.
    pub(super) fn file(&mut self, content: &Content, size_before: u64) -> Result<Option<(Content, u64, LostItem)>> {
        // An inline content is in the tree itself (format-spec §7.3): nothing of it can be lost.
        if matches!(content, Content::Inline(_)) || self.scan(content, None)?.lost == 0 {
            return Ok(None);
        }
        let ids_only;
        let sink: &dyn TreeSink = match self.writer {
            Some(w) => w,
            None => {
                ids_only = IdsOnly(self.repo);
                &ids_only
            }
        };
        let mut kept = ContentWriter::new(sink);
        let FileScan { ranges, lost, size_after, total, .. } = self.scan(content, Some(&mut kept))?;
        let kept_count = kept.count();
        let new = kept.finish()?;
        let unlisted = if lost > ranges.len() as u64 {
            format!("; {lost} lost ranges, the first {} listed", ranges.len())
        } else {
            String::new()
        };
        let what = format!(
            "{} of {total} chunks lost; the file keeps its {kept_count} intact chunks in order ({size_after} of \
             {size_before} bytes), the lost ranges are left out{unlisted}",
            total - kept_count,
        );
        let item = LostItem { path: String::new(), kind: "file", what, ranges, size_before, size_after };
        Ok(Some((new, size_after, item)))
    }

    /// One pass over a file's chunk ids, one chunk list at a time: the lost ranges, the size
    /// kept, the ids seen; with `kept`, the intact ids in order.
    fn scan(&mut self, content: &Content, mut kept: Option<&mut ContentWriter>) -> Result<FileScan> {
        let mut f = FileScan { ranges: Vec::new(), lost: 0, offset: Some(0), size_after: 0, total: 0 };
        match content {
            Content::Inline(_) => {}
            Content::Chunks(v) => {
                for id in v {
                    self.item(&mut f, Ok(id), kept.as_deref_mut())?;
                }
            }
            Content::Indirect { lists, count } => {
                let mut ids_seen = 0u64;
                let mut all_read = true;
                for l in lists {
                    match chunk_list(self.repo, l) {
                        Ok(ids) => {
                            ids_seen += ids.len() as u64;
                            for id in &ids {
                                self.item(&mut f, Ok(id), kept.as_deref_mut())?;
                            }
                        }
                        Err(ListFault::NotAList) => {
                            all_read = false;
                            let why = format!("tree {l}: a directory where a chunk list was expected");
                            self.item(&mut f, Err((l, why)), kept.as_deref_mut())?;
                        }
                        Err(ListFault::Unreadable(e)) if is_loss(&e) => {
                            all_read = false;
                            self.item(&mut f, Err((l, format!("chunk list lost: {e}"))), kept.as_deref_mut())?;
                        }
                        Err(ListFault::Unreadable(e)) => return Err(e),
                    }
                }
                if all_read && ids_seen != *count {
                    let first = lists.first().copied().unwrap_or(BlobId([0; 32]));
                    let why = format!("the chunk lists hold {ids_seen} ids, the file says {count}");
                    self.item(&mut f, Err((&first, why)), kept)?;
                }
            }
        }
        Ok(f)
    }

    /// One chunk id of a file, or a lost chunk list (its id and why).
    fn item(
        &mut self,
        f: &mut FileScan,
        it: std::result::Result<&BlobId, (&BlobId, String)>,
        kept: Option<&mut ContentWriter>,
    ) -> Result<()> {
        f.total += 1;
        let range = match it {
            Ok(id) => {
                let (len, lost) = self.damage.data_blob(id)?;
                let offset = f.offset;
                f.offset = f.offset.zip(len).map(|(o, l)| o + l);
                match (lost, len) {
                    (None, Some(len)) => {
                        if let Some(k) = kept {
                            k.push(*id)?;
                        }
                        f.size_after += len;
                        return Ok(());
                    }
                    (lost, len) => LostRange {
                        offset,
                        length: len,
                        blob: id.to_hex(),
                        reason: lost.unwrap_or_else(|| "the data blob is in no index file".into()),
                    },
                }
            }
            Err((list, reason)) => {
                let r = LostRange { offset: f.offset, length: None, blob: list.to_hex(), reason };
                f.offset = None;
                r
            }
        };
        f.lost += 1;
        if f.ranges.len() < MAX_LOST_RANGES {
            f.ranges.push(range);
        }
        Ok(())
    }
}
