//! Trees (format-spec §7): canonical directory listings and indirect chunk lists, stored as tree
//! blobs. Pure data and encoding; no I/O.

use crate::id::BlobId;
pub use crate::time::Time;
use serde::{Deserialize, Serialize};

/// Nodes per tree blob before a directory continues in another blob.
pub const MAX_NODES_PER_BLOB: usize = 4096;
/// Content lists longer than this go through indirect chunk-list blobs.
pub const MAX_DIRECT_CHUNKS: usize = 1024;
/// Ids per chunk-list blob.
pub const CHUNK_LIST_LEN: usize = 65536;
/// Longest [`Content::Inline`] a reader accepts (format-spec §7.3): a writer's threshold is at
/// most this.
pub const MAX_INLINE: usize = 4096;
/// Inline content bytes one directory part may hold (format-spec §7.2): a part ends before the
/// node that would take its inline bytes above this, so a directory of many inlined files is cut
/// into parts of a bounded size whatever its node count.
pub const MAX_INLINE_PER_PART: usize = 1 << 20;
/// The reference writer's threshold (format-spec §7.3): in a repository of format version 2, a
/// regular file of at most this many bytes is stored inline in its tree node.
pub const INLINE_THRESHOLD: usize = 1024;

// Limits of the reference reader (format-spec §7.5). A tree beyond one is refused with an error
// naming the tree blob and the path; the limits are far above what a backup of a real file
// system writes, and bound what a hostile tree can make a reader spend.

/// Deepest directory a walk enters: the start directory is at depth 0.
pub const MAX_DEPTH: usize = 4096;
/// Most parts (`DirV1` blobs chained by `next`) of one directory: 65536 parts of
/// [`MAX_NODES_PER_BLOB`] entries are 268,435,456 entries.
pub const MAX_DIR_PARTS: usize = 65536;
/// Most chunk-list blobs of one file's content (§7.3): with [`CHUNK_LIST_LEN`] ids each, at most
/// 2^32 chunk ids per file.
pub const MAX_CHUNK_LISTS: usize = 65536;
/// Most entries one walk of a snapshot visits (restore, and each snapshot check walks). A
/// directory shared twice in a snapshot counts twice for restore, which restores it twice; check
/// walks each distinct directory once.
pub const MAX_WALK_ENTRIES: u64 = 100_000_000;

/// Bytes the entries of an expanding walk (restore's plan, `ls`) may take in memory whatever
/// the snapshot: 256 MiB of [`entry_bytes`], which the reference's restore plan holds in less
/// than 1 GiB.
pub const EXPANSION_FLOOR: u64 = 256 << 20;
/// Beyond [`EXPANSION_FLOOR`], the entries of an expanding walk may take this many times the
/// plaintext bytes of the distinct tree blobs it read: repeated subtrees (copies of a directory)
/// pass, a DAG that names one subtree many times does not.
pub const EXPANSION_FACTOR: u64 = 16;

/// The budget of an expanding walk (format-spec §7.5): the [`entry_bytes`] of the entries it
/// visits may not pass `max(floor, factor × distinct tree bytes read)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expansion {
    /// Bytes allowed whatever was read ([`EXPANSION_FLOOR`]).
    pub floor: u64,
    /// Bytes allowed per byte of distinct tree blobs read ([`EXPANSION_FACTOR`]).
    pub factor: u64,
}

impl Default for Expansion {
    fn default() -> Self {
        Expansion { floor: EXPANSION_FLOOR, factor: EXPANSION_FACTOR }
    }
}

impl Expansion {
    /// The bytes allowed after reading `distinct` bytes of distinct tree blobs.
    pub fn cap(&self, distinct: u64) -> u64 {
        self.floor.max(self.factor.saturating_mul(distinct))
    }
}

/// The limits a walk applies (format-spec §7.5); [`Limits::default`] is the reference's for a
/// walk that holds nothing per entry, [`Limits::expanding`] for one that does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest directory entered ([`MAX_DEPTH`]).
    pub max_depth: usize,
    /// Most parts of one directory ([`MAX_DIR_PARTS`]).
    pub max_dir_parts: usize,
    /// Most entries visited by one walk ([`MAX_WALK_ENTRIES`]).
    pub max_entries: u64,
    /// The budget of a walk that keeps its entries; `None` for one that does not.
    pub expansion: Option<Expansion>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: MAX_DEPTH, max_dir_parts: MAX_DIR_PARTS, max_entries: MAX_WALK_ENTRIES, expansion: None }
    }
}

impl Limits {
    /// The reference's limits for a walk that keeps what it visits (restore's plan, `ls`).
    pub fn expanding() -> Self {
        Limits { expansion: Some(Expansion::default()), ..Limits::default() }
    }
}

/// What one entry, at `path`, costs a walk that keeps it (format-spec §7.5): a fixed 256 bytes
/// plus the bytes of its path, name, owner names, extended attributes, symlink target and inline
/// content, and 32 per chunk id or chunk list its content names.
pub fn entry_bytes(path_len: usize, node: &Node) -> u64 {
    let kind = match &node.kind {
        NodeKind::File { content: Content::Chunks(ids) } => 32 * ids.len(),
        NodeKind::File { content: Content::Indirect { lists, .. } } => 32 * lists.len(),
        NodeKind::File { content: Content::Inline(bytes) } => bytes.len(),
        NodeKind::Symlink { target } => target.len(),
        _ => 0,
    };
    let xattrs: usize = node.xattrs.iter().map(|(k, v)| 48 + k.len() + v.len()).sum();
    (256 + path_len + node.name.len() + node.user.len() + node.group.len() + xattrs + kind) as u64
}

/// Checks the shape of an indirect content against §7.3 and [`MAX_CHUNK_LISTS`]: at most that
/// many lists, and a `count` the lists can hold. The lists' lengths are checked as they are read.
pub fn check_indirect(lists: &[BlobId], count: u64) -> Result<(), String> {
    if lists.len() > MAX_CHUNK_LISTS {
        return Err(format!("{} chunk lists, more than the limit of {MAX_CHUNK_LISTS}", lists.len()));
    }
    if count > (lists.len() as u64) * CHUNK_LIST_LEN as u64 {
        return Err(format!("a count of {count} chunks that {} chunk lists cannot hold", lists.len()));
    }
    Ok(())
}

/// The hardlink groups of one snapshot as a walk meets them (format-spec §7.1): only regular files
/// carry a group, and every member of a group has the same content. Keeps the first member's
/// content per group (bounded by the tree bytes walked).
#[derive(Debug, Default)]
pub struct HardlinkGroups {
    first: std::collections::HashMap<u64, (Content, u64)>,
}

impl HardlinkGroups {
    /// Admits `node` to its group; `Err` says why it may not be in it. A node without a group is
    /// always admitted.
    pub fn admit(&mut self, node: &Node) -> Result<(), String> {
        let g = node.hardlink;
        if g == 0 {
            return Ok(());
        }
        let NodeKind::File { content } = &node.kind else {
            return Err(format!(
                "a {} in hardlink group {g}: only regular files may be hardlinked (format-spec §7.1)",
                node.type_name()
            ));
        };
        match self.first.entry(g) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((content.clone(), node.size));
                Ok(())
            }
            std::collections::hash_map::Entry::Occupied(o) if o.get().0 == *content && o.get().1 == node.size => Ok(()),
            std::collections::hash_map::Entry::Occupied(_) => {
                Err(format!("hardlink group {g}: its members differ in content (format-spec §7.1)"))
            }
        }
    }
}

/// What a file's content is made of.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Content {
    /// The data blob ids, in order.
    Chunks(Vec<BlobId>),
    /// Chunk-list blobs (tree kind) whose concatenation is the data blob ids, and their count.
    Indirect {
        /// The chunk-list blobs.
        lists: Vec<BlobId>,
        /// Total number of data blob ids.
        count: u64,
    },
    /// The file's bytes themselves, at most [`MAX_INLINE`] of them and exactly the node's
    /// `size` (format-spec §7.3); only in repositories of format version 2.
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
}

impl Content {
    /// The inline bytes, when the content is [`Content::Inline`].
    pub fn inline(&self) -> Option<&[u8]> {
        match self {
            Content::Inline(b) => Some(b),
            _ => None,
        }
    }
}

/// Checks an inline content against §7.3: at most [`MAX_INLINE`] bytes, exactly `size` of them.
pub fn check_inline(bytes: &[u8], size: u64) -> Result<(), String> {
    if bytes.len() > MAX_INLINE {
        return Err(format!("inline content of {} bytes, more than the limit of {MAX_INLINE}", bytes.len()));
    }
    if bytes.len() as u64 != size {
        return Err(format!("inline content of {} bytes for a size of {size}", bytes.len()));
    }
    Ok(())
}

/// The kind of a node and what only that kind has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A regular file.
    File {
        /// Its content.
        content: Content,
    },
    /// A directory and its tree.
    Dir {
        /// The first tree blob of the directory.
        tree: BlobId,
    },
    /// A symbolic link.
    Symlink {
        /// The target, as bytes.
        #[serde(with = "serde_bytes")]
        target: Vec<u8>,
    },
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice {
        /// Device number.
        rdev: u64,
    },
    /// A block device.
    BlockDevice {
        /// Device number.
        rdev: u64,
    },
    /// A socket (restored as nothing; recorded for completeness).
    Socket,
}

/// One directory entry (format-spec §7.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The name, as bytes (need not be UTF-8).
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    /// Kind and kind-specific data.
    pub kind: NodeKind,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Owner name, empty when unknown.
    pub user: String,
    /// Group name, empty when unknown.
    pub group: String,
    /// Modification time.
    pub mtime: Time,
    /// Access time.
    pub atime: Time,
    /// Status change time: change detection only; cannot be restored.
    pub ctime: Time,
    /// Size in bytes (files: content length; symlinks: target length).
    pub size: u64,
    /// Hardlink group within the snapshot; 0 when the file has a single name.
    pub hardlink: u64,
    /// Extended attributes, sorted by name.
    #[serde(with = "xattr_pairs")]
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Node {
    /// A node named `name` of `kind` with mode 0644, owner 0:0, and no owner names, times, size,
    /// hardlink group or xattrs: a start for tests and tools that build trees by hand.
    pub fn bare(name: &[u8], kind: NodeKind) -> Node {
        Node {
            name: name.to_vec(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            mtime: Time::default(),
            atime: Time::default(),
            ctime: Time::default(),
            size: 0,
            hardlink: 0,
            xattrs: vec![],
        }
    }

    /// The mode as `ls -l` writes it: the type letter and the permission bits with setuid,
    /// setgid and sticky, e.g. `-rwxr-xr-x`, `drwxrwxrwt`, `-rwsr-S---`.
    pub fn mode_string(&self) -> String {
        let t = match self.kind {
            NodeKind::File { .. } => '-',
            NodeKind::Dir { .. } => 'd',
            NodeKind::Symlink { .. } => 'l',
            NodeKind::Fifo => 'p',
            NodeKind::CharDevice { .. } => 'c',
            NodeKind::BlockDevice { .. } => 'b',
            NodeKind::Socket => 's',
        };
        let m = self.mode;
        let bit = |mask: u32, c: char| if m & mask != 0 { c } else { '-' };
        let x = |exec: u32, special: u32, set: char, unset: char| match (m & exec != 0, m & special != 0) {
            (true, true) => set,
            (false, true) => unset,
            (true, false) => 'x',
            (false, false) => '-',
        };
        [
            t,
            bit(0o400, 'r'),
            bit(0o200, 'w'),
            x(0o100, 0o4000, 's', 'S'),
            bit(0o040, 'r'),
            bit(0o020, 'w'),
            x(0o010, 0o2000, 's', 'S'),
            bit(0o004, 'r'),
            bit(0o002, 'w'),
            x(0o001, 0o1000, 't', 'T'),
        ]
        .into_iter()
        .collect()
    }

    /// The type name used in listings.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::File { .. } => "file",
            NodeKind::Dir { .. } => "dir",
            NodeKind::Symlink { .. } => "symlink",
            NodeKind::Fifo => "fifo",
            NodeKind::CharDevice { .. } => "chardev",
            NodeKind::BlockDevice { .. } => "blockdev",
            NodeKind::Socket => "socket",
        }
    }
}

/// A tree blob's plaintext (format-spec §7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TreeBlob {
    /// A directory (or a part of one), nodes sorted by name bytes.
    DirV1 {
        /// The entries.
        nodes: Vec<Node>,
        /// The next part of a directory too large for one blob.
        next: Option<BlobId>,
    },
    /// An indirect list of data blob ids.
    ChunkListV1 {
        /// The ids.
        ids: Vec<BlobId>,
    },
}

impl TreeBlob {
    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("tree encodes")
    }
    /// Decodes and checks the canonical order of names, the names, and inline contents
    /// ([`check_inline`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let t: TreeBlob = postcard::from_bytes(bytes).map_err(|e| format!("tree: {e}"))?;
        if let TreeBlob::DirV1 { nodes, .. } = &t {
            for w in nodes.windows(2) {
                if w[0].name >= w[1].name {
                    return Err("tree entries not in canonical order".into());
                }
            }
            for n in nodes {
                if n.name.is_empty()
                    || n.name == b"."
                    || n.name == b".."
                    || n.name.contains(&b'/')
                    || n.name.contains(&0)
                {
                    return Err(format!("invalid entry name {:?}", String::from_utf8_lossy(&n.name)));
                }
                if let NodeKind::File { content: Content::Inline(b) } = &n.kind {
                    check_inline(b, n.size)
                        .map_err(|e| format!("entry {:?}: {e} (format-spec §7.3)", String::from_utf8_lossy(&n.name)))?;
                }
            }
        }
        Ok(t)
    }
}

/// Extended attributes as stored (format-spec §2.2, §7.1): a sequence of pairs of byte strings, each
/// string read and written whole (a length and a copy) rather than one serde call per byte. The
/// bytes are those of a plain `Vec<(Vec<u8>, Vec<u8>)>`.
pub mod xattr_pairs {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_bytes::{ByteBuf, Bytes};

    /// Names and values of extended attributes.
    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    /// Writes the pairs.
    pub fn serialize<S: Serializer>(pairs: &[(Vec<u8>, Vec<u8>)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(pairs.iter().map(|(k, v)| (Bytes::new(k), Bytes::new(v))))
    }

    /// Reads the pairs.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Pairs, D::Error> {
        let pairs = Vec::<(ByteBuf, ByteBuf)>::deserialize(d)?;
        Ok(pairs.into_iter().map(|(k, v)| (k.into_vec(), v.into_vec())).collect())
    }
}

/// Sorts nodes into canonical order (by name bytes) and their xattrs by name.
pub fn canonicalize(nodes: &mut [Node]) {
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    for n in nodes.iter_mut() {
        n.xattrs.sort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &[u8]) -> Node {
        Node::bare(name, NodeKind::Fifo)
    }

    #[test]
    fn mode_strings() {
        let mut n = node(b"f");
        assert_eq!(n.mode_string(), "prw-r--r--");
        n.kind = NodeKind::Dir { tree: BlobId([0; 32]) };
        n.mode = 0o1777;
        assert_eq!(n.mode_string(), "drwxrwxrwt");
        n.kind = NodeKind::File { content: Content::Chunks(vec![]) };
        n.mode = 0o6740;
        assert_eq!(n.mode_string(), "-rwsr-S---");
    }

    /// The node as it was declared before its byte strings (name, symlink target, inline content)
    /// went through `serde_bytes`: plain `Vec<u8>`s, sequences of `u8`.
    #[derive(Serialize)]
    struct PlainNode {
        name: Vec<u8>,
        kind: PlainKind,
        mode: u32,
        uid: u32,
        gid: u32,
        user: String,
        group: String,
        mtime: Time,
        atime: Time,
        ctime: Time,
        size: u64,
        hardlink: u64,
        xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    }

    #[derive(Serialize)]
    #[allow(dead_code)]
    enum PlainKind {
        File { content: PlainContent },
        Dir { tree: BlobId },
        Symlink { target: Vec<u8> },
    }

    #[derive(Serialize)]
    #[allow(dead_code)]
    enum PlainContent {
        Chunks(Vec<BlobId>),
        Indirect { lists: Vec<BlobId>, count: u64 },
        Inline(Vec<u8>),
    }

    /// Byte strings written whole keep the bytes of §2.2 (a length, then the bytes): trees written
    /// before and after encode alike, and the old bytes decode to the same nodes.
    #[test]
    fn byte_strings_encode_as_the_sequences_of_bytes_they_were() {
        let t = Time { secs: -7, nanos: 9 };
        let inline: Vec<u8> = (0..=255u8).chain([0, 0, 0xff]).collect();
        let cases = [
            (b"\xffname\x01".to_vec(), PlainKind::Symlink { target: b"../\xfe\x00t".to_vec() }),
            (b"f".to_vec(), PlainKind::File { content: PlainContent::Inline(inline.clone()) }),
            (vec![b'x'; 300], PlainKind::File { content: PlainContent::Inline(vec![]) }),
        ];
        for (name, kind) in cases {
            let now = match &kind {
                PlainKind::Symlink { target } => NodeKind::Symlink { target: target.clone() },
                PlainKind::File { content: PlainContent::Inline(b) } => {
                    NodeKind::File { content: Content::Inline(b.clone()) }
                }
                _ => unreachable!(),
            };
            let xattrs = vec![
                (b"security.selinux".to_vec(), b"system_u:object_r:etc_t:s0\0".to_vec()),
                (b"user.a".to_vec(), vec![]),
                (vec![0xff; 200], vec![0, 1, 2]),
            ];
            let node = Node {
                name: name.clone(),
                kind: now,
                mtime: t,
                size: 3,
                xattrs: xattrs.clone(),
                ..Node::bare(b"-", NodeKind::Fifo)
            };
            let plain = PlainNode {
                name,
                kind,
                mode: node.mode,
                uid: node.uid,
                gid: node.gid,
                user: node.user.clone(),
                group: node.group.clone(),
                mtime: node.mtime,
                atime: node.atime,
                ctime: node.ctime,
                size: node.size,
                hardlink: node.hardlink,
                xattrs,
            };
            let old = postcard::to_allocvec(&plain).unwrap();
            assert_eq!(postcard::to_allocvec(&node).unwrap(), old);
            assert_eq!(postcard::from_bytes::<Node>(&old).unwrap(), node);
            // JSON keeps byte strings as arrays of numbers.
            assert_eq!(serde_json::to_string(&node).unwrap(), serde_json::to_string(&plain).unwrap());
        }
    }

    #[test]
    fn time_is_text_in_json_and_fields_in_postcard() {
        let t = Time { secs: 1_709_294_400, nanos: 5 };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2024-03-01T12:00:00.000000005Z\"");
        assert_eq!(serde_json::from_str::<Time>(&json).unwrap(), t);
        let bin = postcard::to_allocvec(&t).unwrap();
        assert_eq!(postcard::from_bytes::<Time>(&bin).unwrap(), t);
        #[derive(serde::Serialize)]
        struct Old {
            secs: i64,
            nanos: u32,
        }
        assert_eq!(bin, postcard::to_allocvec(&Old { secs: t.secs, nanos: t.nanos }).unwrap());
    }

    #[test]
    fn decode_refuses_non_canonical_and_bad_names() {
        let good = TreeBlob::DirV1 { nodes: vec![node(b"a"), node(b"b\xff")], next: None };
        assert_eq!(TreeBlob::decode(&good.encode()).unwrap(), good);
        for bad in [vec![node(b"b"), node(b"a")], vec![node(b"..")], vec![node(b"a/b")], vec![node(b"")]] {
            let t = TreeBlob::DirV1 { nodes: bad, next: None };
            assert!(TreeBlob::decode(&t.encode()).is_err());
        }
    }

    #[test]
    fn hardlink_groups_hold_files_of_one_content() {
        let file = |name: &[u8], b: u8, g: u64| Node {
            hardlink: g,
            size: 1,
            ..Node::bare(name, NodeKind::File { content: Content::Chunks(vec![BlobId([b; 32])]) })
        };
        let mut groups = HardlinkGroups::default();
        groups.admit(&file(b"a", 1, 1)).unwrap();
        groups.admit(&file(b"b", 1, 1)).unwrap();
        groups.admit(&file(b"c", 2, 0)).unwrap();
        let e = groups.admit(&file(b"d", 2, 1)).unwrap_err();
        assert!(e.contains("differ in content"), "{e}");
        let link = Node { hardlink: 2, ..Node::bare(b"l", NodeKind::Symlink { target: b"/".to_vec() }) };
        let e = groups.admit(&link).unwrap_err();
        assert!(e.contains("a symlink in hardlink group 2"), "{e}");
        // A file after the symlink still starts the group.
        groups.admit(&file(b"m", 3, 2)).unwrap();
    }
}
