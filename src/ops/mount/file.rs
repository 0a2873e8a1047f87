//! Reading one file of a mounted snapshot at any offset: the content's data blob ids are taken one
//! segment at a time (the direct ids, or one chunk list, format-spec §7.3), with each chunk's plain
//! length from the index, and the blobs come through the mount's blob cache. An open file holds the
//! start offset of each segment (at most 65536) and the chunk table of the segment read last: a file
//! of 2^32 chunks costs no more memory than one chunk list.

use super::lru::Lru;
use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind};
use crate::repository::ReadRepository;
use crate::tree::{check_indirect, Content};
use crate::trees::chunk_list;
use std::sync::{Arc, Mutex};

/// One segment of a file's ids: the direct ids of a small file, or one chunk list.
enum Segment {
    Direct(Arc<Vec<BlobId>>),
    List(BlobId),
}

/// A segment's chunks: each id with its start offset within the segment, and the segment's length.
struct Table {
    chunks: Vec<(BlobId, u64)>,
    len: u64,
}

/// An open file: where each segment starts, and the last segment's chunk table.
pub struct OpenFile {
    segments: Vec<Segment>,
    starts: Vec<u64>,
    size: u64,
    current: Mutex<Option<(usize, Arc<Table>)>>,
    /// The bytes of an inline content (format-spec §7.3), which has no segments.
    inline: Option<Vec<u8>>,
}

impl OpenFile {
    /// Opens `content`: reads each chunk list once to learn where it starts (one list in memory at a
    /// time). A content beyond §7.3's limits or naming a blob the index does not know is an error.
    pub fn open(repo: &ReadRepository, content: &Content) -> Result<OpenFile> {
        let segments = match content {
            Content::Inline(b) => {
                let (starts, current) = (Vec::new(), Mutex::new(None));
                return Ok(OpenFile {
                    segments: vec![],
                    starts,
                    size: b.len() as u64,
                    current,
                    inline: Some(b.clone()),
                });
            }
            Content::Chunks(ids) => vec![Segment::Direct(Arc::new(ids.clone()))],
            Content::Indirect { lists, count } => {
                let first = lists.first().copied().unwrap_or(BlobId([0; 32]));
                check_indirect(lists, *count).map_err(|e| Error::corrupt_blob(BlobKind::Tree, first, None, e))?;
                lists.iter().map(|l| Segment::List(*l)).collect()
            }
        };
        let mut f = OpenFile { segments, starts: Vec::new(), size: 0, current: Mutex::new(None), inline: None };
        let mut at = 0u64;
        // A list named many times is read once (a chunk-list bomb costs one list).
        let mut lens: std::collections::HashMap<BlobId, u64> = Default::default();
        for i in 0..f.segments.len() {
            f.starts.push(at);
            let len = match &f.segments[i] {
                Segment::List(l) if lens.contains_key(l) => lens[l],
                Segment::List(l) => {
                    let n = f.table(repo, i)?.len;
                    lens.insert(*l, n);
                    n
                }
                Segment::Direct(_) => f.table(repo, i)?.len,
            };
            at = at.saturating_add(len);
        }
        f.size = at;
        Ok(f)
    }

    /// The plain length of the stored content (a file's `size` may say otherwise only in a damaged
    /// or hostile tree; reads end here).
    pub fn len(&self) -> u64 {
        self.size
    }

    /// True when the content is empty.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The chunk table of segment `i`, built from the index (kept until another segment is read).
    fn table(&self, repo: &ReadRepository, i: usize) -> Result<Arc<Table>> {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((j, t)) = &*cur {
            let same_list =
                matches!((&self.segments[*j], &self.segments[i]), (Segment::List(a), Segment::List(b)) if a == b);
            if *j == i || same_list {
                return Ok(t.clone());
            }
        }
        let ids = match &self.segments[i] {
            Segment::Direct(ids) => ids.clone(),
            Segment::List(l) => Arc::new(chunk_list(repo, l).map_err(|f| f.into_error(l))?),
        };
        let mut chunks = Vec::with_capacity(ids.len());
        let mut len = 0u64;
        for id in ids.iter() {
            let locs = repo.locate(BlobKind::Data, id)?;
            let loc = locs.first().ok_or_else(|| Error::NotFound(format!("data blob {id} (in no index file)")))?;
            chunks.push((*id, len));
            len += u64::from(loc.plain_length);
        }
        let t = Arc::new(Table { chunks, len });
        *cur = Some((i, t.clone()));
        Ok(t)
    }

    /// Up to `len` bytes from `offset` (fewer only at the end), each blob through `blobs`.
    pub fn read(&self, repo: &ReadRepository, blobs: &Lru<BlobId, Vec<u8>>, offset: u64, len: u64) -> Result<Vec<u8>> {
        let end = offset.saturating_add(len).min(self.size);
        if let Some(b) = &self.inline {
            return Ok(b.get(offset.min(end) as usize..end as usize).unwrap_or_default().to_vec());
        }
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut at = offset;
        while at < end {
            // The segment holding `at`: the last one starting at or before it (empty ones skipped).
            let seg = self.starts.partition_point(|s| *s <= at) - 1;
            let t = self.table(repo, seg)?;
            let within = at - self.starts[seg];
            if within >= t.len {
                // Cannot happen: segment starts are the running sum of their lengths.
                return Err(Error::Internal(format!("offset {at} beyond its segment")));
            }
            let c = t.chunks.partition_point(|(_, s)| *s <= within) - 1;
            let (id, start) = t.chunks[c];
            let data = match blobs.get(&id) {
                Some(d) => d,
                None => {
                    let d = repo.read_blob(BlobKind::Data, &id)?;
                    let cost = d.len() as u64;
                    blobs.insert(id, d, cost)
                }
            };
            let from = (within - start) as usize;
            if from >= data.len() {
                return Err(Error::corrupt_blob(BlobKind::Data, id, None, "shorter than the index says"));
            }
            let take = (data.len() - from).min((end - at) as usize);
            out.extend_from_slice(&data[from..from + take]);
            at += take as u64;
        }
        Ok(out)
    }
}
