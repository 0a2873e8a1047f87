//! Small files inline in their tree node (format-spec §7.3): the walker reads a file of at most
//! the threshold whole and hands its bytes to the builder, which stores them in the node instead
//! of a data blob; an unchanged one is taken back from the files cache without reading it.

use super::walk::Ctx;
use super::FileMsg;
use crate::cache::FileEntry;
use crate::fsmeta::Stat;
use crate::tree::{self, Content};
use crossbeam_channel::Sender;
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
        match &entry.inline {
            None => Some(Content::Chunks(entry.content.clone())),
            Some(b) if self.inline_max().is_some_and(|m| b.len() as u64 <= m) && b.len() as u64 == entry.size => {
                Some(Content::Inline(b.clone()))
            }
            Some(_) => None,
        }
    }

    /// Reads the file `f` (examined as `st`) for an inline content when its size allows one:
    /// `None` when it does not (an empty file is `Chunks` with no ids, §7.3). Otherwise the file
    /// is read up to one byte beyond the threshold; when it held no more, its bytes go on `msgs`
    /// as [`FileMsg::Inline`] (none when it turned out empty), else (it grew since the `lstat`)
    /// what was read is chunked with the rest like any other file. Returns the bytes
    /// read and the error that stopped the read, as [`Ctx::read_chunks`] does.
    pub(super) fn read_inline(&self, f: &File, st: &Stat, msgs: &Sender<FileMsg>) -> Option<(u64, Option<String>)> {
        let max = self.inline_max()?;
        if st.size == 0 || st.size > max {
            return None;
        }
        let mut buf = Vec::with_capacity(st.size as usize + 1);
        if let Err(e) = crate::fsmeta::Blocking(f).take(max + 1).read_to_end(&mut buf) {
            return Some((buf.len() as u64, Some(format!("read failed: {e}"))));
        }
        let n = buf.len() as u64;
        if n > max {
            return Some(self.read_chunks(
                std::io::Cursor::new(buf).chain(crate::fsmeta::Blocking(f)),
                Some(st.size),
                msgs,
            ));
        }
        self.progress.bytes(n);
        self.bytes_read.fetch_add(n, Ordering::Relaxed);
        if n > 0 && !self.feed(msgs, FileMsg::Inline(buf)) {
            return Some((n, Some("backup stopped".into())));
        }
        Some((n, None))
    }
}
