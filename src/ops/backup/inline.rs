//! Small files inline in their tree node (format-spec §7.3): the walker reads a file of at most
//! the threshold whole and hands its bytes to the builder, which stores them in the node instead
//! of a data blob; an unchanged one is taken back from the files cache without reading it.

use super::walk::Ctx;
use super::{Whole, WholeRead};
use crate::cache::FileEntry;
use crate::fsmeta::{Blocking, Stat};
use crate::tree::{self, Content};
use std::fs::File;
use std::io::Read;
use std::sync::atomic::Ordering;

impl Ctx<'_> {
    /// The largest file this backup stores inline: none in a repository of format version 1
    /// (§9.1), else the option's threshold ([`tree::INLINE_THRESHOLD`] by default) within
    /// [`tree::MAX_INLINE`].
    pub(super) fn inline_max(&self) -> Option<u64> {
        if !self.repo.config().inline_allowed() {
            return None;
        }
        Some(self.opts.inline_max.unwrap_or(tree::INLINE_THRESHOLD).min(tree::MAX_INLINE) as u64)
    }

    /// The content of a files cache entry, when this backup may use it: an entry with inline
    /// bytes only where inline content is allowed and the bytes are within the threshold.
    pub(super) fn cached_content(&self, entry: &FileEntry) -> Option<Content> {
        if !self.inline_usable(entry.inline.as_ref().map(Vec::len), entry.size) {
            return None;
        }
        Some(match &entry.inline {
            None => Content::Chunks(entry.content.clone()),
            Some(b) => Content::Inline(b.clone()),
        })
    }

    /// Whether a files cache entry of `size` bytes, with inline bytes of `inline_len` (`None`:
    /// chunks), is usable by this backup: inline bytes only where inline content is allowed and
    /// they are within the threshold and the whole file.
    pub(super) fn inline_usable(&self, inline_len: Option<usize>, size: u64) -> bool {
        match inline_len {
            None => true,
            Some(n) => self.inline_max().is_some_and(|m| n as u64 <= m) && n as u64 == size,
        }
    }

    /// Reads the file `f` (examined as `st`) whole when its size allows an inline content, or
    /// when it is empty: `None` when it does not (then it is chunked; an empty file is `Chunks`
    /// with no ids, §7.3). The file is read up to one byte beyond the threshold, so one that grew
    /// since the `lstat` is told apart.
    pub(super) fn read_whole(&self, f: &File, st: &Stat) -> Option<Whole> {
        let max = self.inline_max().unwrap_or(0);
        if st.size > max {
            return None;
        }
        let mut buf = Vec::with_capacity(st.size as usize + 1);
        let read = Blocking(f).take(max + 1).read_to_end(&mut buf);
        let n = buf.len() as u64;
        if read.is_ok() && n > max {
            return Some(Whole::Grown(buf));
        }
        self.progress.bytes(n);
        self.bytes_read.fetch_add(n, Ordering::Relaxed);
        let error = read.err().map(|e| format!("read failed: {e}"));
        Some(Whole::Read(WholeRead { inline: (n > 0 && error.is_none()).then_some(buf), size: n, error }))
    }
}
