//! `mount`'s filesystem model, without FUSE: inode numbers, the virtual directories
//! (`snapshots/<time>/`, `hosts/<host>/<time>/`, `tags/<tag>/<time>/`, `ids/<short id>/`, the
//! symlink `latest`), the snapshots' trees loaded one directory per lookup (never walked whole: a
//! hostile snapshot's DAG costs what the kernel asks for, format-spec §7.5), attributes from the tree
//! nodes, hardlinks as one inode, and file reads through a blob cache bounded by bytes ([`lru`],
//! [`file`]). The front end's FUSE adapter maps these calls one to one. Prints nothing.

pub mod file;
pub mod lru;

use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::repository::ReadRepository;
use crate::select::Listed;
use crate::time::Time;
use crate::tree::{entry_bytes, Expansion, Node, NodeKind};
use crate::trees::read_dir_with;
use file::OpenFile;
use lru::Lru;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// An inode number.
pub type Ino = u64;

/// One entry of [`MountFs::readdir`]: its name, kind and inode when the kernel holds it.
pub type DirEntry = (Vec<u8>, Kind, Option<Ino>);

/// The inode of the mount's root directory.
pub const ROOT: Ino = 1;

/// Default bytes of decrypted data blobs the mount keeps (`--cache-size`).
pub const DEFAULT_BLOB_CACHE: u64 = 64 << 20;

/// Bytes of directory listings the mount keeps (counted as format-spec §7.5 counts entries).
pub const LISTING_CACHE: u64 = 32 << 20;

/// What kind of file an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A socket.
    Socket,
}

/// The attributes of an inode, as `stat` shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// Kind.
    pub kind: Kind,
    /// Size in bytes (files: as the tree records it; symlinks: target length).
    pub size: u64,
    /// Permission bits including setuid, setgid and sticky.
    pub perm: u32,
    /// Link count (1 for files, 2 for directories: the tree does not count a hardlink group).
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time.
    pub mtime: Time,
    /// Access time.
    pub atime: Time,
    /// Status change time.
    pub ctime: Time,
    /// Device number of a device.
    pub rdev: u64,
}

/// What an inode stands for.
#[derive(Clone)]
enum What {
    /// A directory of the mount's own: its entries, sorted by name.
    Virtual(Arc<Vec<(Vec<u8>, Ino)>>),
    /// The symlink `latest`.
    Latest(Vec<u8>),
    /// The root directory of snapshot `snap` (an index into the mount's snapshots).
    SnapRoot { snap: usize },
    /// A node of snapshot `snap`, shown below the snapshot directory `root`.
    Node { snap: usize, root: Ino, node: Arc<Node> },
}

struct Entry {
    what: What,
    /// Lookups the kernel holds (content inodes are dropped at zero; the mount's own never are).
    lookups: u64,
    /// The (parent, name) pairs that lead to it.
    names: Vec<(Ino, Vec<u8>)>,
    /// Its hardlink key, when it is a file of a hardlink group.
    link: Option<(Ino, u64)>,
}

#[derive(Default)]
struct Table {
    inodes: HashMap<Ino, Entry>,
    by_name: HashMap<(Ino, Vec<u8>), Ino>,
    hardlinks: HashMap<(Ino, u64), Ino>,
    next: Ino,
}

/// A mounted set of snapshots.
pub struct MountFs {
    repo: ReadRepository,
    snaps: Vec<Listed>,
    table: Mutex<Table>,
    blobs: Lru<BlobId, Vec<u8>>,
    listings: Lru<BlobId, Vec<Node>>,
    handles: Mutex<(u64, HashMap<u64, Arc<OpenFile>>)>,
    owner: (u32, u32),
    newest: Time,
}

/// `2024-01-01T00:00:00Z` (seconds; the mount's names for snapshot directories).
fn time_name(t: Time) -> String {
    match jiff::Timestamp::from_second(t.secs) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => format!("@{}", t.secs),
    }
}

impl MountFs {
    /// A filesystem of `snaps` (oldest first, as [`crate::select::Filter::entries`] lists them):
    /// `snapshots/`, `hosts/` and `tags/` show those that `latest` may choose (unflagged), `ids/`
    /// shows every one; directories and files appear as `uid`:`gid` where the trees say nothing.
    /// Keeps at most `blob_cache` bytes of data blobs.
    pub fn new(repo: ReadRepository, snaps: Vec<Listed>, blob_cache: u64, owner: (u32, u32)) -> MountFs {
        let newest = snaps.iter().map(|l| l.snapshot.time()).max().unwrap_or_default();
        let fs = MountFs {
            repo,
            snaps,
            table: Mutex::new(Table { next: ROOT + 1, ..Default::default() }),
            blobs: Lru::new(blob_cache),
            listings: Lru::new(LISTING_CACHE),
            handles: Mutex::new((1, HashMap::new())),
            owner,
            newest,
        };
        fs.build();
        fs
    }

    /// Lays out the mount's own directories.
    fn build(&self) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let t = &mut *t;
        let mut alloc = |t: &mut Table, what: What| {
            let ino = t.next;
            t.next += 1;
            t.inodes.insert(ino, Entry { what, lookups: 0, names: Vec::new(), link: None });
            ino
        };
        // A directory of snapshot directories named by time (a repeated time gets `-<short id>`).
        let snap_dir = |t: &mut Table, members: &[usize], alloc: &mut dyn FnMut(&mut Table, What) -> Ino| {
            let mut entries: Vec<(Vec<u8>, Ino)> = Vec::new();
            for &i in members {
                let l = &self.snaps[i];
                let mut name = time_name(l.snapshot.time());
                if entries.iter().any(|(n, _)| *n == name.as_bytes()) {
                    name = format!("{name}-{}", l.id.short());
                }
                entries.push((name.into_bytes(), alloc(t, What::SnapRoot { snap: i })));
            }
            entries.sort();
            alloc(t, What::Virtual(Arc::new(entries)))
        };
        let eligible: Vec<usize> = (0..self.snaps.len()).filter(|&i| self.snaps[i].eligible()).collect();
        let snapshots = snap_dir(t, &eligible, &mut alloc);
        let mut by_host: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        let mut by_tag: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        for &i in &eligible {
            let s = &self.snaps[i].snapshot;
            by_host.entry(s.host().to_string()).or_default().push(i);
            for tag in s.tags() {
                by_tag.entry(tag.clone()).or_default().push(i);
            }
        }
        let mut group_dir = |t: &mut Table, groups: std::collections::BTreeMap<String, Vec<usize>>| {
            let mut entries = Vec::new();
            for (name, members) in groups {
                // A host or tag that is no file name (empty, `.`, `..`, or with a `/`) is left out.
                if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
                    continue;
                }
                entries.push((name.into_bytes(), snap_dir(t, &members, &mut alloc)));
            }
            alloc(t, What::Virtual(Arc::new(entries)))
        };
        let hosts = group_dir(t, by_host);
        let tags = group_dir(t, by_tag);
        let mut ids: Vec<(Vec<u8>, Ino)> = Vec::new();
        for (i, l) in self.snaps.iter().enumerate() {
            let short = l.id.short();
            let clash = self.snaps.iter().filter(|o| o.id.short() == short).count() > 1;
            let name = if clash { l.id.to_hex() } else { short };
            ids.push((name.into_bytes(), alloc(t, What::SnapRoot { snap: i })));
        }
        ids.sort();
        let ids = alloc(t, What::Virtual(Arc::new(ids)));
        let mut root: Vec<(Vec<u8>, Ino)> = vec![
            (b"hosts".to_vec(), hosts),
            (b"ids".to_vec(), ids),
            (b"snapshots".to_vec(), snapshots),
            (b"tags".to_vec(), tags),
        ];
        // `latest`: the newest unflagged snapshot's directory under snapshots/.
        let newest = eligible.iter().copied().max_by(|&a, &b| {
            let (a, b) = (&self.snaps[a], &self.snaps[b]);
            a.snapshot.time().cmp(&b.snapshot.time()).then(a.id.cmp(&b.id))
        });
        if let (Some(n), Some(Entry { what: What::Virtual(entries), .. })) = (newest, t.inodes.get(&snapshots)) {
            let target = entries.iter().find(
                |(_, ino)| matches!(t.inodes.get(ino), Some(Entry { what: What::SnapRoot { snap }, .. }) if *snap == n),
            );
            if let Some((name, _)) = target {
                let link = [b"snapshots/".as_slice(), name].concat();
                root.push((b"latest".to_vec(), alloc(t, What::Latest(link))));
            }
        }
        root.sort();
        t.inodes.insert(ROOT, Entry { what: What::Virtual(Arc::new(root)), lookups: 0, names: Vec::new(), link: None });
    }

    fn what(&self, ino: Ino) -> Result<What> {
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.inodes.get(&ino).map(|e| e.what.clone()).ok_or_else(|| Error::NotFound(format!("inode {ino}")))
    }

    /// The entries of the directory whose first tree blob is `tree`, through the listing cache. A
    /// listing is refused past the expansion budget of format-spec §7.5 for the bytes it read.
    fn listing(&self, tree: &BlobId) -> Result<Arc<Vec<Node>>> {
        if let Some(l) = self.listings.get(tree) {
            return Ok(l);
        }
        let mut read = 0u64;
        let (listing, fault) = read_dir_with(&self.repo, tree, crate::tree::MAX_DIR_PARTS, &mut |_, plain| {
            read += plain.len() as u64;
        });
        if let Some(f) = fault {
            return Err(f.into_error(tree));
        }
        let cost: u64 = listing.nodes.iter().map(|n| entry_bytes(0, n)).sum();
        let cap = Expansion::default().cap(read);
        if cost > cap {
            return Err(Error::corrupt_blob(
                crate::id::BlobKind::Tree,
                *tree,
                None,
                format!("a directory of {cost} bytes of entries from {read} bytes of tree blobs (limit {cap})"),
            ));
        }
        Ok(self.listings.insert(*tree, listing.nodes, cost))
    }

    /// The tree of a directory inode; `None` for the mount's own directories.
    fn dir_tree(&self, what: &What) -> Result<Option<BlobId>> {
        match what {
            What::Virtual(_) => Ok(None),
            What::SnapRoot { snap } => Ok(Some(self.snaps[*snap].snapshot.root())),
            What::Node { node, .. } => match &node.kind {
                NodeKind::Dir { tree } => Ok(Some(*tree)),
                _ => Err(Error::Usage("not a directory".into())),
            },
            What::Latest(_) => Err(Error::Usage("not a directory".into())),
        }
    }

    /// Looks `name` up in directory `parent`; the kernel now holds one more lookup of the result.
    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Result<Attr> {
        let what = self.what(parent)?;
        let missing = || Error::NotFound(format!("{} in inode {parent}", String::from_utf8_lossy(name)));
        if let What::Virtual(entries) = &what {
            let ino = entries.iter().find(|(n, _)| n == name).map(|(_, i)| *i).ok_or_else(missing)?;
            return self.getattr(ino);
        }
        let tree = self.dir_tree(&what)?.ok_or_else(missing)?;
        let (snap, root) = match what {
            What::SnapRoot { snap } => (snap, parent),
            What::Node { snap, root, .. } => (snap, root),
            _ => return Err(missing()),
        };
        let nodes = self.listing(&tree)?;
        let pos = nodes.binary_search_by(|n| n.name.as_slice().cmp(name)).map_err(|_| missing())?;
        let node = &nodes[pos];
        let mut guard = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let t = &mut *guard;
        let key = (parent, name.to_vec());
        let link = (node.hardlink != 0 && matches!(node.kind, NodeKind::File { .. })).then_some((root, node.hardlink));
        let known = t.by_name.get(&key).copied().or_else(|| link.and_then(|l| t.hardlinks.get(&l).copied()));
        let ino = match known.filter(|i| t.inodes.contains_key(i)) {
            Some(i) => i,
            None => {
                let i = t.next;
                t.next += 1;
                let what = What::Node { snap, root, node: Arc::new(node.clone()) };
                t.inodes.insert(i, Entry { what, lookups: 0, names: Vec::new(), link });
                if let Some(l) = link {
                    t.hardlinks.insert(l, i);
                }
                i
            }
        };
        let e = t.inodes.get_mut(&ino).expect("inserted above");
        e.lookups += 1;
        if !e.names.contains(&key) {
            e.names.push(key.clone());
            t.by_name.insert(key, ino);
        }
        let what = e.what.clone();
        drop(guard);
        Ok(self.attr(ino, &what))
    }

    /// The kernel dropped `n` lookups of `ino`; a content inode with none left is forgotten.
    pub fn forget(&self, ino: Ino, n: u64) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = t.inodes.get_mut(&ino) else { return };
        if !matches!(e.what, What::Node { .. }) {
            return;
        }
        e.lookups = e.lookups.saturating_sub(n);
        if e.lookups == 0 {
            let e = t.inodes.remove(&ino).expect("present");
            for k in e.names {
                t.by_name.remove(&k);
            }
            if let Some(l) = e.link {
                t.hardlinks.remove(&l);
            }
        }
    }

    /// Inodes held (the mount's own and those the kernel holds).
    pub fn inodes(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).inodes.len()
    }

    /// The attributes of `ino`.
    pub fn getattr(&self, ino: Ino) -> Result<Attr> {
        let what = self.what(ino)?;
        Ok(self.attr(ino, &what))
    }

    fn attr(&self, ino: Ino, what: &What) -> Attr {
        let (uid, gid) = self.owner;
        let own = |kind, size, perm| Attr {
            ino,
            kind,
            size,
            perm,
            nlink: if kind == Kind::Dir { 2 } else { 1 },
            uid,
            gid,
            mtime: self.newest,
            atime: self.newest,
            ctime: self.newest,
            rdev: 0,
        };
        match what {
            What::Virtual(_) => own(Kind::Dir, 0, 0o555),
            What::Latest(target) => own(Kind::Symlink, target.len() as u64, 0o777),
            What::SnapRoot { snap } => {
                let s = &self.snaps[*snap].snapshot;
                let t = s.time();
                Attr { uid: s.uid(), gid: s.gid(), mtime: t, atime: t, ctime: t, ..own(Kind::Dir, 0, 0o755) }
            }
            What::Node { node, .. } => {
                let (kind, rdev) = match &node.kind {
                    NodeKind::File { .. } => (Kind::File, 0),
                    NodeKind::Dir { .. } => (Kind::Dir, 0),
                    NodeKind::Symlink { .. } => (Kind::Symlink, 0),
                    NodeKind::Fifo => (Kind::Fifo, 0),
                    NodeKind::CharDevice { rdev } => (Kind::CharDevice, *rdev),
                    NodeKind::BlockDevice { rdev } => (Kind::BlockDevice, *rdev),
                    NodeKind::Socket => (Kind::Socket, 0),
                };
                Attr {
                    ino,
                    kind,
                    size: node.size,
                    perm: node.mode & 0o7777,
                    nlink: if kind == Kind::Dir { 2 } else { 1 },
                    uid: node.uid,
                    gid: node.gid,
                    mtime: node.mtime,
                    atime: node.atime,
                    ctime: node.ctime,
                    rdev,
                }
            }
        }
    }

    /// The entries of directory `ino` (without `.` and `..`), in name order, each with its kind
    /// and, when the kernel already holds it, its inode (else `None`: known after a lookup).
    pub fn readdir(&self, ino: Ino) -> Result<Vec<DirEntry>> {
        let what = self.what(ino)?;
        if let What::Virtual(entries) = &what {
            return entries
                .iter()
                .map(|(n, i)| Ok((n.clone(), self.getattr(*i)?.kind, Some(*i))))
                .collect::<Result<Vec<_>>>();
        }
        let Some(tree) = self.dir_tree(&what)? else { return Ok(Vec::new()) };
        let nodes = self.listing(&tree)?;
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        Ok(nodes
            .iter()
            .map(|n| {
                let kind = match &n.kind {
                    NodeKind::File { .. } => Kind::File,
                    NodeKind::Dir { .. } => Kind::Dir,
                    NodeKind::Symlink { .. } => Kind::Symlink,
                    NodeKind::Fifo => Kind::Fifo,
                    NodeKind::CharDevice { .. } => Kind::CharDevice,
                    NodeKind::BlockDevice { .. } => Kind::BlockDevice,
                    NodeKind::Socket => Kind::Socket,
                };
                (n.name.clone(), kind, t.by_name.get(&(ino, n.name.clone())).copied())
            })
            .collect())
    }

    /// The target of symlink `ino`.
    pub fn readlink(&self, ino: Ino) -> Result<Vec<u8>> {
        match self.what(ino)? {
            What::Latest(t) => Ok(t),
            What::Node { node, .. } => match &node.kind {
                NodeKind::Symlink { target } => Ok(target.clone()),
                _ => Err(Error::Usage("not a symlink".into())),
            },
            _ => Err(Error::Usage("not a symlink".into())),
        }
    }

    /// The extended attributes of `ino`, sorted by name (the mount's own inodes have none).
    pub fn xattrs(&self, ino: Ino) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(match self.what(ino)? {
            What::Node { node, .. } => node.xattrs.clone(),
            _ => Vec::new(),
        })
    }

    /// Opens file `ino` for reading; returns a handle for [`MountFs::read`].
    pub fn open(&self, ino: Ino) -> Result<u64> {
        let What::Node { node, .. } = self.what(ino)? else { return Err(Error::Usage("not a file".into())) };
        let NodeKind::File { content } = &node.kind else { return Err(Error::Usage("not a file".into())) };
        let f = Arc::new(OpenFile::open(&self.repo, content)?);
        let mut h = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        let fh = h.0;
        h.0 += 1;
        h.1.insert(fh, f);
        Ok(fh)
    }

    /// Up to `len` bytes of open file `fh` from `offset` (fewer only at its end).
    pub fn read(&self, fh: u64, offset: u64, len: u64) -> Result<Vec<u8>> {
        let f = self.handles.lock().unwrap_or_else(|p| p.into_inner()).1.get(&fh).cloned();
        let f = f.ok_or_else(|| Error::NotFound(format!("file handle {fh}")))?;
        f.read(&self.repo, &self.blobs, offset, len)
    }

    /// Closes `fh`.
    pub fn release(&self, fh: u64) {
        self.handles.lock().unwrap_or_else(|p| p.into_inner()).1.remove(&fh);
    }

    /// Bytes of data blobs cached now (at most the budget given to [`MountFs::new`]).
    pub fn cached_bytes(&self) -> u64 {
        self.blobs.bytes()
    }
}
