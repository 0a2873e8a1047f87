//! Small files inline in their tree node (format-spec §7.3): the walker reads a file of at most
//! the threshold whole and hands its bytes to the builder, which stores them in the node instead
//! of a data blob; an unchanged one is taken back from the files cache without reading it.

use super::walk::Ctx;
use crate::cache::FileEntry;
use crate::tree::{self, Content};
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

    /// Counts `n` bytes a small file gave as read (progress and the summary).
    pub(super) fn count_read(&self, n: u64) {
        self.progress.bytes(n);
        self.bytes_read.fetch_add(n, Ordering::Relaxed);
    }
}
