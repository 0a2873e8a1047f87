//! Reading ahead: helper threads open the regular files of a directory the files cache has no
//! record of, a bounded window ahead of the walk and in its order, and read the small ones whole,
//! so that the system calls a new file costs (open, `fstat`, extended attributes, read, `fstat`,
//! close: most of a first backup of many small files) run on every core instead of the walker's
//! one. A helper opens exactly as the walker would ([`fsmeta::open_file_for_read`]: relative to
//! the directory's handle, never through a symlink, never blocking) and decides nothing: the
//! walker takes each result in walk order and does with it what it would have done with its own
//! open. Must not: store, send events, report (warnings and errors are the walker's, in order).

use super::BackupOptions;
use super::{read_small, Small};
use crate::fsmeta::{self, Stat};
use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How many entries of a directory the helpers may have opened ahead of the walk. No entry
/// beyond a subdirectory is asked for before the walk has left that subdirectory, so the handles
/// and bytes held (at most [`crate::tree::MAX_INLINE`] a file) are those of this many files at
/// most, in the directory being walked, however deep the tree.
#[doc(hidden)]
pub const READ_AHEAD: usize = 128;

/// Entries asked for in one request: a helper opens them in order and answers them together, so
/// the walker and the helpers wake each other once per batch, not once per file.
const BATCH: usize = READ_AHEAD / 4;

/// A batch of entries for a helper to open: their names in `dir` and paths.
pub(super) struct Request {
    dir: Arc<File>,
    entries: Vec<(OsString, PathBuf)>,
    reply: Sender<Vec<Opened>>,
}

/// What a helper found at one entry.
pub(super) struct Opened {
    /// The handle [`fsmeta::open_file_for_read`] opened and its `fstat`; when it is a regular
    /// file, the test hook has run.
    pub(super) opened: io::Result<(File, Stat)>,
    /// Read ahead: for a regular file of one link that the options do not skip by size.
    pub(super) read: Option<ReadAhead>,
}

/// What a helper read of an opened file, as the walker would have read it.
pub(super) struct ReadAhead {
    /// Its extended attributes, from the handle.
    pub(super) xattrs: io::Result<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Its bytes when it is small enough to be read whole, and its `fstat` after that read.
    pub(super) small: Small,
}

/// The helpers' queue: the walker sends on it, and takes back from it a batch no helper has
/// started when it needs that batch's answers (see [`Window::take`]).
pub(super) type Queue = (Sender<Request>, Receiver<Request>);

/// A helper: opens and reads what the walker asks for until the walker drops its sender.
pub(super) fn helper(requests: Receiver<Request>, opts: &BackupOptions, inline_max: Option<u64>) {
    for r in requests {
        answer(r, opts, inline_max);
    }
}

/// Opens (and reads) the entries of `r` and sends the answers.
fn answer(r: Request, opts: &BackupOptions, inline_max: Option<u64>) {
    let answers = r.entries.iter().map(|(name, path)| open(&r.dir, name, path, opts, inline_max)).collect();
    // The walker may have stopped: then the handles are closed here.
    let _ = r.reply.send(answers);
}

fn open(dir: &File, name: &OsString, path: &Path, opts: &BackupOptions, inline_max: Option<u64>) -> Opened {
    let opened = fsmeta::open_file_for_read(dir, name);
    let read = match &opened {
        Ok((f, st)) if fsmeta::file_type(st.mode) == libc::S_IFREG => {
            if let Some(hook) = &opts.test_before_open {
                (hook.0)(path);
            }
            // A later name of a hard link is not read at all; the walker reads the first itself.
            (!opts.skips_file(st.size) && st.nlink <= 1)
                .then(|| ReadAhead { xattrs: fsmeta::read_xattrs_fd(f), small: read_small(f, st, inline_max) })
        }
        _ => None,
    };
    Opened { opened, read }
}

/// A batch asked for: its entries' indexes and paths, and the receiver of their answers.
type Asked = (Vec<(usize, PathBuf)>, Receiver<Vec<Opened>>);

/// The walker's side for one directory: which of its entries are asked for, and their answers.
pub(super) struct Window<'a> {
    dir: Arc<File>,
    queue: Queue,
    opts: &'a BackupOptions,
    inline_max: Option<u64>,
    /// The next entry to consider asking for.
    next: usize,
    /// Entries to be asked for in the next batch: index, name, path.
    filling: Vec<(usize, OsString, PathBuf)>,
    /// Batches asked for, in entry order: their entries' indexes and paths, and the receiver of
    /// their answers.
    asked: VecDeque<Asked>,
    /// Answers received and not yet taken, in entry order.
    answered: VecDeque<(usize, PathBuf, Opened)>,
}

impl<'a> Window<'a> {
    /// A window over the entries of `dir`, asking through `queue`; `None` when its handle cannot
    /// be shared.
    pub(super) fn new(dir: &File, queue: Queue, opts: &'a BackupOptions, inline_max: Option<u64>) -> Option<Self> {
        let dir = Arc::new(dir.try_clone().ok()?);
        Some(Window {
            dir,
            queue,
            opts,
            inline_max,
            next: 0,
            filling: Vec::with_capacity(BATCH),
            asked: VecDeque::new(),
            answered: VecDeque::new(),
        })
    }

    /// Asks for the regular files (by their directory entries' type) that `wanted` keeps among
    /// the [`READ_AHEAD`] entries from `at` on, up to the first directory (or entry of unknown
    /// type) not yet left behind, then takes entry `at`'s answer if it was asked for: its path and
    /// what the helper found. Rather than wait for a batch no helper has started (both cores busy
    /// elsewhere), the walker answers the queued batches itself.
    pub(super) fn take(
        &mut self,
        names: &[(OsString, u8)],
        path: &Path,
        at: usize,
        wanted: impl Fn(&Path) -> bool,
    ) -> Option<(PathBuf, Opened)> {
        let until = (at + READ_AHEAD).min(names.len());
        let mut last = self.next >= names.len();
        while self.next < until {
            let (name, t) = &names[self.next];
            if matches!(*t, libc::DT_DIR | libc::DT_UNKNOWN) && self.next >= at {
                last = true;
                break;
            }
            if *t == libc::DT_REG {
                let p = path.join(name);
                if wanted(&p) {
                    self.filling.push((self.next, name.clone(), p));
                }
            }
            self.next += 1;
            if self.filling.len() == BATCH {
                self.ask();
            }
        }
        last |= self.next >= names.len();
        // A part batch goes when nothing can join it before the walk needs it.
        if self.filling.first().is_some_and(|(i, _, _)| last || *i <= at) {
            self.ask();
        }
        loop {
            // Answers behind `at` are dropped (the walk takes every entry in order: none are).
            while self.answered.front().is_some_and(|(i, _, _)| *i < at) {
                self.answered.pop_front();
            }
            if let Some((i, _, _)) = self.answered.front() {
                return if *i == at { self.answered.pop_front().map(|(_, p, o)| (p, o)) } else { None };
            }
            let reached = self.asked.front().and_then(|(e, _)| e.first()).is_some_and(|(i, _)| *i <= at);
            if !reached {
                return None;
            }
            let (entries, rx) = self.asked.pop_front()?;
            let answers = loop {
                match rx.try_recv() {
                    Ok(a) => break a,
                    // With the helpers gone the walker opens the entries itself.
                    Err(TryRecvError::Disconnected) => break Vec::new(),
                    Err(TryRecvError::Empty) => {}
                }
                // Help: a queued batch (this window's own, in order) is answered here.
                match self.queue.1.try_recv() {
                    Ok(r) => answer(r, self.opts, self.inline_max),
                    Err(_) => break rx.recv().unwrap_or_default(),
                }
            };
            self.answered.extend(entries.into_iter().zip(answers).map(|((i, p), o)| (i, p, o)));
        }
    }

    /// Sends the entries gathered so far as one batch.
    fn ask(&mut self) {
        let batch = std::mem::replace(&mut self.filling, Vec::with_capacity(BATCH));
        let (index, entries): (Vec<_>, Vec<_>) = batch.into_iter().map(|(i, n, p)| ((i, p.clone()), (n, p))).unzip();
        let (reply, rx) = bounded(1);
        if self.queue.0.send(Request { dir: self.dir.clone(), entries, reply }).is_ok() {
            self.asked.push_back((index, rx));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn names(types: &[u8]) -> Vec<(OsString, u8)> {
        types.iter().enumerate().map(|(i, t)| (OsString::from(format!("e{i:03}")), *t)).collect()
    }

    /// A helper that answers every entry with "not found" and records the indexes asked for.
    struct Responder {
        tx: Sender<Request>,
        dir: Arc<File>,
        seen: Arc<Mutex<Vec<usize>>>,
    }

    impl Responder {
        fn start(dir: &File) -> (Responder, Queue) {
            let (tx, rx) = crossbeam_channel::unbounded::<Request>();
            // The walker's end of the queue never holds anything: the window cannot take its
            // batches back.
            let (_, idle) = crossbeam_channel::unbounded::<Request>();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let s = seen.clone();
            std::thread::spawn(move || {
                for r in rx {
                    assert!(r.entries.len() <= BATCH);
                    let mut seen = s.lock().unwrap();
                    seen.extend(r.entries.iter().map(|(n, _)| n.to_str().unwrap()[1..].parse::<usize>().unwrap()));
                    let answers =
                        r.entries.iter().map(|_| Opened { opened: Err(io::ErrorKind::NotFound.into()), read: None });
                    let _ = r.reply.send(answers.collect());
                }
            });
            (Responder { tx: tx.clone(), dir: Arc::new(dir.try_clone().unwrap()), seen }, (tx, idle))
        }

        /// The indexes asked for since the last call: a request of no entries, answered after
        /// every earlier one, marks the end.
        fn asked(&self) -> Vec<usize> {
            let (reply, rx) = bounded(1);
            self.tx.send(Request { dir: self.dir.clone(), entries: Vec::new(), reply }).unwrap();
            rx.recv().unwrap();
            std::mem::take(&mut *self.seen.lock().unwrap())
        }
    }

    #[test]
    fn the_window_asks_for_regular_files_ahead_and_nothing_beyond_a_directory_not_yet_left() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = File::open(tmp.path()).unwrap();
        let (helper, queue) = Responder::start(&dir);
        let opts = BackupOptions::default();
        let mut w = Window::new(&dir, queue, &opts, None).unwrap();
        let (r, d, l) = (libc::DT_REG, libc::DT_DIR, libc::DT_LNK);
        // 0..=2 files, 3 a symlink, 4 a directory, then 3 * READ_AHEAD files, one excluded.
        let mut types = vec![r, r, r, l, d];
        types.extend(std::iter::repeat_n(r, 3 * READ_AHEAD));
        let names = names(&types);
        let wanted = |p: &Path| !p.ends_with("e010");
        let base = Path::new("/src");
        let path_of = |t: Option<(PathBuf, Opened)>| t.map(|(p, _)| p);

        assert_eq!(path_of(w.take(&names, base, 0, wanted)), Some(base.join("e000")));
        assert_eq!(helper.asked(), [0, 1, 2], "up to the directory, symlinks not asked for");
        assert_eq!(path_of(w.take(&names, base, 1, wanted)), Some(base.join("e001")));
        assert_eq!(path_of(w.take(&names, base, 2, wanted)), Some(base.join("e002")));
        assert!(w.take(&names, base, 3, wanted).is_none(), "a symlink is the walker's");
        assert!(w.take(&names, base, 4, wanted).is_none(), "the directory itself");
        assert!(helper.asked().is_empty(), "nothing beyond the directory while the walk is in it");
        assert_eq!(path_of(w.take(&names, base, 5, wanted)), Some(base.join("e005")));
        let wanted_from = |from: usize| (from..names.len()).filter(|&i| i != 10).collect::<Vec<_>>();
        let mut all = helper.asked();
        assert!(!all.is_empty() && all.len() % BATCH == 0, "whole batches: {all:?}");
        assert_eq!(all, wanted_from(5)[..all.len()], "in order, the excluded entry left out");
        assert!(all.iter().all(|&i| i < 5 + READ_AHEAD), "within the window: {all:?}");
        for at in 6..names.len() {
            let want = (at != 10).then(|| base.join(format!("e{at:03}")));
            assert_eq!(path_of(w.take(&names, base, at, wanted)), want, "entry {at}, the excluded one the walker's");
            let asked = helper.asked();
            assert!(asked.iter().all(|&i| i < at + READ_AHEAD), "at {at}: {asked:?} beyond the window");
            all.extend(asked);
        }
        assert_eq!(all, wanted_from(5), "every entry asked for once, in order");
    }
}
