//! Format conformance tests (format-spec/).
//!
//! - Every value in `format-spec/test-vectors.json` is checked against the library, and the deterministic
//!   ones (derived keys, gear table, cut points, content ids, canonical postcard bytes, configs, leases and
//!   prune marks) are also recomputed from the spec alone: the `spec` module below is a small independent
//!   reader (hand-written postcard decoding, the byte-wise FastCDC loop of §3.6, the AEAD framing of §3.4)
//!   that must agree with both the code and the frozen bytes. Sealed vectors carry random nonces, so they
//!   are checked by opening them, never by re-sealing.
//! - The cut points are pinned: a `fastcdc` upgrade (or any change to the gear table or masks) that moves
//!   them fails `vector_cut_points_*`, because it would silently end dedup against older backups.
//! - Property tests: encode/decode round trips of tree blobs, snapshots, index files, pack headers, configs,
//!   leases and prune marks; random bytes and bit flips are rejected with an `Err`, never a panic.
//! - The write-only key (format-spec §4.2, §12) on a `memory://` repository.
//!
//! A module of `tests/library.rs`, the crate's second integration-test binary (each one links RocksDB).
//!

use cairn::backend::open_url;
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::blob;
use cairn::chunker::{gear_table, Chunker, ChunkerParams};
use cairn::codec::object;
use cairn::codec::packer;
use cairn::codec::packer::PackBuilder;
use cairn::codec::sign;
use cairn::compress::Compression;
use cairn::config::{self, Config, ConfigV1};
use cairn::crypto::{self, KdfParams, MasterKeys, ObjectKind, Secret, Session};
use cairn::id::{BlobId, BlobKind, IndexId, KeyId, PackId, RepoId, SnapshotId};
use cairn::index::{IndexBlob, IndexFile, IndexPack};
use cairn::keyfile;
use cairn::layout::{pack_path, Object, ObjectType, StoredId};
use cairn::lease::{Lease, PruneMark};
use cairn::pack::{BundleMember, PackBundle, PackEntry, PackHeader, PackSegment};
use cairn::repository::{InitOptions, OpenOptions, Repository};
use cairn::snapshot::{self, Snapshot, SnapshotV1, SnapshotV3, Source, SourceRecord, Summary};
use cairn::tree::{self, Content, Node, NodeKind, Time, TreeBlob};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::OnceLock;

const VECTORS: &str = include_str!("../../format-spec/test-vectors.json");

fn vectors() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| serde_json::from_str(VECTORS).expect("test-vectors.json parses"))
}

/// The hex string at a JSON pointer, decoded.
fn hx(pointer: &str) -> Vec<u8> {
    let s = vectors().pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {pointer}"));
    hex::decode(s).unwrap_or_else(|e| panic!("{pointer}: {e}"))
}

fn hx32(pointer: &str) -> [u8; 32] {
    hx(pointer).try_into().unwrap_or_else(|_| panic!("{pointer}: not 32 bytes"))
}

fn num(pointer: &str) -> u64 {
    vectors().pointer(pointer).and_then(Value::as_u64).unwrap_or_else(|| panic!("no number at {pointer}"))
}

fn text(pointer: &str) -> &'static str {
    vectors().pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {pointer}"))
}

/// The full key material of the vectors.
fn vkeys() -> MasterKeys {
    MasterKeys {
        repo_id: RepoId(hx32("/keys/repo_id")),
        id_key: Secret(hx32("/keys/id_key")),
        chunk_key: Secret(hx32("/keys/chunk_key")),
        index_key: Secret(hx32("/keys/index_key")),
        writer_key: Secret(hx32("/keys/writer_key")),
        repo_public: hx32("/keys/repo_public"),
        repo_secret: Some(Secret(hx32("/keys/repo_secret"))),
    }
}

fn vsession() -> Session {
    Session::for_reading(&vkeys(), &hx32("/session/ephemeral_public")).expect("a full key reads every session")
}

/// The deterministic input buffer: the BLAKE3 XOF of a fixed string (test-vectors.md).
fn input_buffer() -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(text("/input/xof_message").as_bytes());
    let mut v = vec![0u8; num("/input/length") as usize];
    h.finalize_xof().fill(&mut v);
    v
}

fn vtime() -> Time {
    Time { secs: 1_793_491_200, nanos: 123_456_789 }
}

fn zstd_plain() -> Vec<u8> {
    b"cairn ".iter().cycle().take(4096).copied().collect()
}

fn raw_plain() -> Vec<u8> {
    input_buffer()[..num("/blobs/0/plain_length") as usize].to_vec()
}

fn vnode(name: &[u8], kind: NodeKind, t: Time) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: 0o644,
        uid: 1000,
        gid: 100,
        user: "alice".into(),
        group: "users".into(),
        mtime: t,
        atime: Time { secs: t.secs + 1, nanos: 0 },
        ctime: Time { secs: t.secs + 2, nanos: 999_999_999 },
        size: 0,
        hardlink: 0,
        xattrs: vec![],
    }
}

/// The directory tree blob of the vectors, built from its description (test-vectors.md).
fn vtree_dir() -> TreeBlob {
    let t = vtime();
    let raw_id = BlobId(hx32("/blobs/0/id"));
    let zstd_id = BlobId(hx32("/blobs/1/id"));
    let mut file = vnode(b"file.txt", NodeKind::File { content: Content::Chunks(vec![raw_id, zstd_id]) }, t);
    file.size = num("/blobs/0/plain_length") + num("/blobs/1/plain_length");
    file.hardlink = 1;
    file.xattrs = vec![(b"user.b".to_vec(), vec![0xff, 0x00]), (b"user.a".to_vec(), b"1".to_vec())];
    let mut dir = vnode(b"dir", NodeKind::Dir { tree: BlobId([0x99; 32]) }, t);
    dir.mode = 0o2755;
    let mut link = vnode(b"link", NodeKind::Symlink { target: b"file.txt".to_vec() }, t);
    link.size = 8;
    let dev = vnode(b"n\xff", NodeKind::CharDevice { rdev: 0x0103 }, Time { secs: -1, nanos: 5 });
    let mut big = vnode(
        b"big.img",
        NodeKind::File { content: Content::Indirect { lists: vec![BlobId([0xab; 32])], count: 1025 } },
        t,
    );
    big.size = 1 << 40;
    let blk = vnode(b"sda", NodeKind::BlockDevice { rdev: 0x0800 }, t);
    let fifo = vnode(b"pipe", NodeKind::Fifo, t);
    let sock = vnode(b"sock", NodeKind::Socket, t);
    let mut nodes = vec![file, dir, link, dev, big, blk, fifo, sock];
    tree::canonicalize(&mut nodes);
    TreeBlob::DirV1 { nodes, next: Some(BlobId([0xcd; 32])) }
}

fn vsnapshot() -> Snapshot {
    let t = vtime();
    Snapshot::V1(SnapshotV1 {
        time: t,
        host: "host.example".into(),
        user: "alice".into(),
        uid: 1000,
        gid: 100,
        paths: vec![b"/home/alice".to_vec(), b"/srv/\xff".to_vec()],
        tags: vec!["daily".into(), "critical".into()],
        root: BlobId(hx32("/blobs/2/id")),
        parent: Some(SnapshotId([0x44; 32])),
        source: Source::Command { command: "pg_dump db".into(), name: "db.sql".into(), exit_status: 0 },
        summary: Summary {
            files_new: 1,
            files_changed: 2,
            files_unchanged: 3,
            dirs: 4,
            other: 5,
            bytes_read: 6,
            bytes_processed: 7,
            blobs_added: 8,
            bytes_added: 9,
            bytes_added_stored: 300,
            errors: 0,
            started: t,
            finished: Time { secs: t.secs + 60, nanos: 0 },
        },
        program: "cairn 0.1.0".into(),
    })
}

/// The version 3 snapshot of the vectors: several sources, one manifest replaced, an origin, no
/// writer block.
fn vsnapshot_v3() -> Snapshot {
    let mut s = vsnapshot().with_writer(None);
    let v = s.v3_mut();
    v.paths = vec![b"/app.sql".to_vec(), b"/etc/app".to_vec(), b"/redis/dump.rdb".to_vec(), b"/srv/\xff".to_vec()];
    v.sources = vec![
        SourceRecord::Paths { path: b"/etc/app".to_vec() },
        SourceRecord::Paths { path: b"/srv/\xff".to_vec() },
        SourceRecord::Command { path: "redis/dump.rdb".into(), exit_status: 0, bytes: 1 << 33 },
        SourceRecord::Stdin { path: "app.sql".into(), bytes: 7 },
    ];
    v.replaces = vec![SnapshotId([0x55; 32])];
    v.origin = Some(KeyId([0x66; 32]));
    s
}

fn vconfigs() -> (Config, Config) {
    let keys = vkeys();
    let c1 = ConfigV1 {
        format_version: 1,
        min_writer_version: 1,
        repo_id: keys.repo_id,
        chunker: ChunkerParams::default(),
        pack_size: 16 * 1024 * 1024,
        compression_level: 3,
        repo_public: keys.repo_public,
        previous: None,
        created: vtime(),
    };
    let mut c2 = c1.clone();
    c2.previous = Some(hx32("/configs/0/blake3"));
    c2.compression_level = -5;
    c2.created = Time { secs: vtime().secs + 86400, nanos: 0 };
    (Config::V1(c1), Config::V1(c2))
}

fn vlease() -> Lease {
    Lease::V1 {
        session: hx32("/session/ephemeral_public"),
        seq: 0,
        host: "host.example".into(),
        pid: 4242,
        duration_secs: 3600,
        operation: "backup".into(),
        client_time: vtime(),
    }
}

fn vmark() -> PruneMark {
    PruneMark::V1 {
        created: vtime(),
        condemned: vec![(BlobKind::Data, PackId([0x55; 32])), (BlobKind::Tree, PackId([0x66; 32]))],
        snapshots: vec![SnapshotId(hx32("/snapshot/id"))],
    }
}

/// An independent reader written from format-spec/ alone: it shares no decoding code with the library.
mod spec {
    use super::*;

    /// The context strings of format-spec §3.3, spelled out again here on purpose.
    pub const INDEX_SEAL: &str = "cairn 2026-11 v1 index seal key";
    pub const SESSION: &str = "cairn 2026-11 v1 session key";
    pub const CONFIG_MAC: &str = "cairn 2026-11 v1 config mac";
    pub const LEASE_MAC: &str = "cairn 2026-11 v1 lease mac";
    pub const PRUNE_MAC: &str = "cairn 2026-11 v1 prune mac";
    pub const GEAR: &str = "cairn 2026-11 v1 gear table";
    pub const FINGERPRINT: &str = "cairn 2026-11 v1 key fingerprint";
    pub const KEY_FILE_SECRET: &str = "cairn 2026-12 v1 key file secret";
    pub const KEY_SIGN: &str = "cairn 2026-12 v1 key signing secret";

    /// §2.2: a postcard reader over a byte slice. Panics (fails the test) on malformed input.
    pub struct Rd<'a> {
        b: &'a [u8],
        p: usize,
    }

    impl<'a> Rd<'a> {
        pub fn new(b: &'a [u8]) -> Self {
            Rd { b, p: 0 }
        }
        pub fn end(&self) {
            assert_eq!(self.p, self.b.len(), "trailing bytes after the value");
        }
        pub fn raw(&mut self, n: usize) -> &'a [u8] {
            let s = &self.b[self.p..self.p + n];
            self.p += n;
            s
        }
        pub fn u8(&mut self) -> u8 {
            self.raw(1)[0]
        }
        pub fn var(&mut self, max_bytes: usize) -> u64 {
            let mut out = 0u64;
            for i in 0..max_bytes {
                let b = self.u8();
                out |= ((b & 0x7f) as u64) << (7 * i);
                if b & 0x80 == 0 {
                    return out;
                }
            }
            panic!("varint too long");
        }
        pub fn u32(&mut self) -> u32 {
            u32::try_from(self.var(5)).expect("u32 varint")
        }
        pub fn u64(&mut self) -> u64 {
            self.var(10)
        }
        pub fn i32(&mut self) -> i32 {
            let n = self.u32();
            ((n >> 1) as i32) ^ -((n & 1) as i32)
        }
        pub fn i64(&mut self) -> i64 {
            let n = self.u64();
            ((n >> 1) as i64) ^ -((n & 1) as i64)
        }
        pub fn a32(&mut self) -> [u8; 32] {
            self.raw(32).try_into().unwrap()
        }
        pub fn bytes(&mut self) -> Vec<u8> {
            let n = self.u64() as usize;
            self.raw(n).to_vec()
        }
        pub fn string(&mut self) -> String {
            String::from_utf8(self.bytes()).expect("UTF-8")
        }
        pub fn vec<T>(&mut self, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
            let n = self.u64();
            (0..n).map(|_| f(self)).collect()
        }
        pub fn option<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
            match self.u8() {
                0 => None,
                1 => Some(f(self)),
                t => panic!("bad option tag {t}"),
            }
        }
        pub fn variant(&mut self) -> u32 {
            self.u32()
        }
        pub fn time(&mut self) -> Time {
            Time { secs: self.i64(), nanos: self.u32() }
        }
        pub fn blob_kind(&mut self) -> BlobKind {
            match self.variant() {
                0 => BlobKind::Data,
                1 => BlobKind::Tree,
                v => panic!("bad BlobKind {v}"),
            }
        }
    }

    /// §3.4: the 71-byte associated data.
    pub fn aad(repo: &[u8; 32], kind: u8, name: &[u8; 32]) -> Vec<u8> {
        let mut a = b"CAIRN".to_vec();
        a.push(1);
        a.push(kind);
        a.extend_from_slice(repo);
        a.extend_from_slice(name);
        a
    }

    /// §3.4: opens `nonce ‖ ciphertext ‖ tag` with XChaCha20-Poly1305.
    pub fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        if sealed.len() < 40 {
            return None;
        }
        let cipher = chacha20poly1305::XChaCha20Poly1305::new(key.into());
        cipher.decrypt(chacha20poly1305::XNonce::from_slice(&sealed[..24]), Payload { msg: &sealed[24..], aad }).ok()
    }

    /// §3.5: the session key from the repository secret and a session public key.
    pub fn session_key(keys: &MasterKeys, eph_public: &[u8; 32]) -> [u8; 32] {
        let sk = x25519_dalek::StaticSecret::from(keys.repo_secret.as_ref().unwrap().0);
        let shared = sk.diffie_hellman(&x25519_dalek::PublicKey::from(*eph_public));
        let mut ikm = shared.as_bytes().to_vec();
        ikm.extend_from_slice(eph_public);
        ikm.extend_from_slice(&keys.repo_public);
        ikm.extend_from_slice(&keys.writer_key.0);
        blake3::derive_key(SESSION, &ikm)
    }

    /// §5.2: opens a stored blob and returns its plaintext and compression byte.
    pub fn open_blob(
        keys: &MasterKeys,
        session_key: &[u8; 32],
        kind_code: u8,
        id: &[u8; 32],
        stored: &[u8],
    ) -> (Vec<u8>, u8) {
        let inner = open(session_key, &aad(&keys.repo_id.0, kind_code, id), stored).expect("blob opens");
        assert_eq!(inner[0], 1, "blob framing version");
        let pad = u32::from_le_bytes(inner[2..6].try_into().unwrap()) as usize;
        let payload = &inner[6..inner.len() - pad];
        let plain = match inner[1] {
            0 => payload.to_vec(),
            1 => zstd::stream::decode_all(payload).expect("one zstd frame"),
            c => panic!("unknown compression {c}"),
        };
        assert_eq!(blake3::keyed_hash(&keys.id_key.0, &plain).as_bytes(), id, "content id");
        (plain, inner[1])
    }

    /// §3.6: the gear table.
    pub fn gear(chunk_key: &[u8; 32]) -> Vec<u64> {
        let mut h = blake3::Hasher::new_keyed(chunk_key);
        h.update(GEAR.as_bytes());
        let mut x = [0u8; 2048];
        h.finalize_xof().fill(&mut x);
        x.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
    }

    const MASKS: [u64; 26] = [
        0,
        0,
        0,
        0,
        0,
        0x0000000001804110,
        0x0000000001803110,
        0x0000000018035100,
        0x0000001800035300,
        0x0000019000353000,
        0x0000590003530000,
        0x0000d90003530000,
        0x0000d90103530000,
        0x0000d90303530000,
        0x0000d90313530000,
        0x0000d90f03530000,
        0x0000d90303537000,
        0x0000d90703537000,
        0x0000d90707537000,
        0x0000d91707537000,
        0x0000d91747537000,
        0x0000d91767537000,
        0x0000d93767537000,
        0x0000d93777537000,
        0x0000d93777577000,
        0x0000db3777577000,
    ];

    /// §3.6: the byte-wise cut loop, written from the spec.
    pub fn cuts(p: &ChunkerParams, g: &[u64], data: &[u8]) -> Vec<usize> {
        let bits = (p.avg_size as f64).log2().round() as usize;
        let mask_s = MASKS[bits + p.normalization as usize];
        let mask_l = MASKS[bits - p.normalization as usize];
        let (min, avg, max) = (p.min_size as usize, p.avg_size as usize, p.max_size as usize);
        let cut = |d: &[u8]| -> usize {
            let mut n = d.len();
            if n <= min {
                return n;
            }
            let mut center = avg;
            if n > max {
                n = max;
            } else if n < center {
                center = n;
            }
            let (e1, e2) = (2 * (center / 2), 2 * (n / 2));
            let mut h = 0u64;
            for (i, &b) in d.iter().enumerate().take(e1).skip(min) {
                h = (h << 1).wrapping_add(g[b as usize]);
                if h & mask_s == 0 {
                    return i;
                }
            }
            for (i, &b) in d.iter().enumerate().take(e2).skip(e1) {
                h = (h << 1).wrapping_add(g[b as usize]);
                if h & mask_l == 0 {
                    return i;
                }
            }
            n
        };
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let n = cut(&data[pos..]);
            out.push(n);
            pos += n;
        }
        out
    }

    pub fn content(r: &mut Rd) -> Content {
        match r.variant() {
            0 => Content::Chunks(r.vec(|r| BlobId(r.a32()))),
            1 => Content::Indirect { lists: r.vec(|r| BlobId(r.a32())), count: r.u64() },
            2 => Content::Inline(r.bytes()),
            v => panic!("bad Content {v}"),
        }
    }

    pub fn node(r: &mut Rd) -> Node {
        let name = r.bytes();
        let kind = match r.variant() {
            0 => NodeKind::File { content: content(r) },
            1 => NodeKind::Dir { tree: BlobId(r.a32()) },
            2 => NodeKind::Symlink { target: r.bytes() },
            3 => NodeKind::Fifo,
            4 => NodeKind::CharDevice { rdev: r.u64() },
            5 => NodeKind::BlockDevice { rdev: r.u64() },
            6 => NodeKind::Socket,
            v => panic!("bad NodeKind {v}"),
        };
        Node {
            name,
            kind,
            mode: r.u32(),
            uid: r.u32(),
            gid: r.u32(),
            user: r.string(),
            group: r.string(),
            mtime: r.time(),
            atime: r.time(),
            ctime: r.time(),
            size: r.u64(),
            hardlink: r.u64(),
            xattrs: r.vec(|r| (r.bytes(), r.bytes())),
        }
    }

    /// §7: a tree blob.
    pub fn tree_blob(b: &[u8]) -> TreeBlob {
        let mut r = Rd::new(b);
        let t = match r.variant() {
            0 => TreeBlob::DirV1 { nodes: r.vec(node), next: r.option(|r| BlobId(r.a32())) },
            1 => TreeBlob::ChunkListV1 { ids: r.vec(|r| BlobId(r.a32())) },
            v => panic!("bad TreeBlob {v}"),
        };
        r.end();
        t
    }

    /// §5.3: a pack header's plaintext.
    pub fn pack_header(b: &[u8]) -> PackHeader {
        let mut r = Rd::new(b);
        let version = r.variant();
        assert!(version <= 1, "PackHeader::V1 or V2, not {version}");
        let sessions = r.vec(|r| r.a32());
        let entry = |r: &mut Rd| PackEntry {
            kind: r.blob_kind(),
            id: BlobId(r.a32()),
            session: r.u32(),
            length: r.u32(),
            plain_length: r.u32(),
        };
        let h = if version == 0 {
            PackHeader::V1 { sessions, entries: r.vec(entry) }
        } else {
            let segments = r.vec(|r| match r.variant() {
                0 => PackSegment::Blob(entry(r)),
                1 => PackSegment::Bundle(PackBundle {
                    kind: r.blob_kind(),
                    session: r.u32(),
                    length: r.u32(),
                    members: r.vec(|r| BundleMember { id: BlobId(r.a32()), plain_length: r.u32() }),
                }),
                v => panic!("bad PackSegment {v}"),
            });
            PackHeader::V2 { sessions, segments }
        };
        r.end();
        h
    }

    /// §5.5: opens a sealed bundle and returns its body and compression flag.
    pub fn open_bundle(keys: &MasterKeys, session_key: &[u8; 32], stored: &[u8]) -> (Vec<u8>, u8) {
        let inner = open(session_key, &aad(&keys.repo_id.0, 8, &[0; 32]), stored).expect("bundle opens");
        assert_eq!(inner[0], 1, "blob framing version");
        let pad = u32::from_le_bytes(inner[2..6].try_into().unwrap()) as usize;
        let payload = &inner[6..inner.len() - pad];
        let body = match inner[1] {
            0 => payload.to_vec(),
            1 => zstd::stream::decode_all(payload).expect("one zstd frame"),
            c => panic!("unknown compression {c}"),
        };
        (body, inner[1])
    }

    /// §6.1: an index file's plaintext.
    pub fn index_file(b: &[u8]) -> IndexFile {
        let mut r = Rd::new(b);
        let version = r.variant();
        assert!(version <= 1, "IndexFile::V1 or V2, not {version}");
        let supersedes = r.vec(|r| IndexId(r.a32()));
        let packs = r.vec(|r| IndexPack {
            id: PackId(r.a32()),
            kind: r.blob_kind(),
            size: r.u64(),
            header_length: r.u32(),
            header_hash: r.a32(),
            sessions: r.vec(|r| r.a32()),
            blobs: r.vec(|r| IndexBlob {
                kind: r.blob_kind(),
                id: BlobId(r.a32()),
                session: r.u32(),
                offset: r.u64(),
                length: r.u32(),
                plain_length: r.u32(),
                inner: if version == 1 { r.option(|r| r.u32()) } else { None },
            }),
        });
        r.end();
        if version == 0 {
            IndexFile::V1 { supersedes, packs }
        } else {
            IndexFile::V2 { supersedes, packs }
        }
    }

    /// §8.1: a snapshot's plaintext (`V1`, `V2` with its writer block, §4.3, or `V3`).
    pub fn snapshot(b: &[u8]) -> Snapshot {
        let mut r = Rd::new(b);
        let version = r.variant();
        assert!(version <= 2, "Snapshot::V1, V2 or V3, not {version}");
        let (time, host, user, uid, gid) = (r.time(), r.string(), r.string(), r.u32(), r.u32());
        let paths = r.vec(|r| r.bytes());
        let tags = r.vec(|r| r.string());
        let root = BlobId(r.a32());
        let parent = r.option(|r| SnapshotId(r.a32()));
        let (source, sources) = if version == 2 {
            let sources = r.vec(|r| match r.variant() {
                0 => SourceRecord::Paths { path: r.bytes() },
                1 => SourceRecord::Stdin { path: r.string(), bytes: r.u64() },
                2 => SourceRecord::Command { path: r.string(), exit_status: r.i32(), bytes: r.u64() },
                v => panic!("bad SourceRecord {v}"),
            });
            (Source::Files, sources)
        } else {
            let source = match r.variant() {
                0 => Source::Files,
                1 => Source::Stdin { name: r.string() },
                2 => Source::Command { command: r.string(), name: r.string(), exit_status: r.i32() },
                v => panic!("bad Source {v}"),
            };
            (source, Vec::new())
        };
        let summary = Summary {
            files_new: r.u64(),
            files_changed: r.u64(),
            files_unchanged: r.u64(),
            dirs: r.u64(),
            other: r.u64(),
            bytes_read: r.u64(),
            bytes_processed: r.u64(),
            blobs_added: r.u64(),
            bytes_added: r.u64(),
            bytes_added_stored: r.u64(),
            errors: r.u64(),
            started: r.time(),
            finished: r.time(),
        };
        let program = r.string();
        let writer = |r: &mut Rd| {
            r.option(|r| cairn::cert::Writer {
                key_id: cairn::id::KeyId(r.a32()),
                signature: cairn::cert::Signature64(r.a32(), r.a32()),
            })
        };
        let snap = if version == 2 {
            let replaces = r.vec(|r| SnapshotId(r.a32()));
            let origin = r.option(|r| KeyId(r.a32()));
            let writer = writer(&mut r);
            Snapshot::V3(SnapshotV3 {
                time,
                host,
                user,
                uid,
                gid,
                paths,
                tags,
                root,
                parent,
                sources,
                summary,
                program,
                replaces,
                origin,
                writer,
            })
        } else {
            let s = SnapshotV1 { time, host, user, uid, gid, paths, tags, root, parent, source, summary, program };
            if version == 1 {
                Snapshot::V2(cairn::snapshot::SnapshotV2 { base: s, writer: writer(&mut r) })
            } else {
                Snapshot::V1(s)
            }
        };
        r.end();
        snap
    }

    /// §9.1: a config object; checks the magic and MAC and returns the config.
    pub fn config(keys: &MasterKeys, n: u64, b: &[u8]) -> Config {
        assert_eq!(&b[..8], b"CAIRNCFG");
        let (body, mac) = b.split_at(b.len() - 32);
        let k = blake3::derive_key(CONFIG_MAC, &keys.writer_key.0);
        let mut h = blake3::Hasher::new_keyed(&k);
        h.update(&n.to_le_bytes());
        h.update(body);
        assert_eq!(h.finalize().as_bytes(), mac, "config MAC");
        let mut r = Rd::new(&body[8..]);
        assert_eq!(r.variant(), 0, "Config::V1");
        let c = ConfigV1 {
            format_version: r.u32(),
            min_writer_version: r.u32(),
            repo_id: RepoId(r.a32()),
            chunker: ChunkerParams {
                algorithm: r.u32(),
                min_size: r.u32(),
                avg_size: r.u32(),
                max_size: r.u32(),
                normalization: r.u8(),
            },
            pack_size: r.u32(),
            compression_level: r.i32(),
            repo_public: r.a32(),
            previous: r.option(|r| r.a32()),
            created: r.time(),
        };
        r.end();
        Config::V1(c)
    }

    /// §10: a MACed lease or prune mark; checks magic and MAC, returns the postcard body.
    pub fn macd<'a>(context: &str, keys: &MasterKeys, magic: &[u8], path: &str, b: &'a [u8]) -> Rd<'a> {
        assert_eq!(&b[..8], magic);
        let (body, mac) = b.split_at(b.len() - 32);
        let k = blake3::derive_key(context, &keys.writer_key.0);
        let mut h = blake3::Hasher::new_keyed(&k);
        h.update(path.as_bytes());
        h.update(body);
        assert_eq!(h.finalize().as_bytes(), mac, "MAC of {path}");
        Rd::new(&body[8..])
    }

    /// §4.2: key material.
    pub fn master_keys(b: &[u8]) -> MasterKeys {
        let mut r = Rd::new(b);
        let k = MasterKeys {
            repo_id: RepoId(r.a32()),
            id_key: Secret(r.a32()),
            chunk_key: Secret(r.a32()),
            index_key: Secret(r.a32()),
            writer_key: Secret(r.a32()),
            repo_public: r.a32(),
            repo_secret: r.option(|r| Secret(r.a32())),
        };
        r.end();
        k
    }
}

// ---------------------------------------------------------------------------------------------------------
// Test vectors
// ---------------------------------------------------------------------------------------------------------

#[test]
fn vector_key_material_and_derivations() {
    let keys = vkeys();
    let repo_public =
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(hx32("/keys/repo_secret"))).to_bytes();
    assert_eq!(repo_public, keys.repo_public, "repo_public = X25519(repo_secret, 9)");
    assert_eq!(postcard::to_allocvec(&keys).unwrap(), hx("/keys/master_keys_postcard"));
    assert_eq!(postcard::to_allocvec(&keys.write_only()).unwrap(), hx("/keys/write_only_master_keys_postcard"));
    assert_eq!(spec::master_keys(&hx("/keys/master_keys_postcard")), keys);
    assert_eq!(spec::master_keys(&hx("/keys/write_only_master_keys_postcard")), keys.write_only());

    let d = |ctx: &str, m: &[u8]| blake3::derive_key(ctx, m);
    assert_eq!(keys.index_seal_key().0, hx32("/derived/index_seal_key"));
    assert_eq!(d(spec::INDEX_SEAL, &keys.index_key.0), hx32("/derived/index_seal_key"));
    for (ctx_lib, ctx_spec, ptr) in [
        (crypto::context::CONFIG_MAC, spec::CONFIG_MAC, "/derived/config_mac_key"),
        (crypto::context::LEASE_MAC, spec::LEASE_MAC, "/derived/lease_mac_key"),
        (crypto::context::PRUNE_MAC, spec::PRUNE_MAC, "/derived/prune_mac_key"),
    ] {
        assert_eq!(keys.writer_mac_key(ctx_lib).0, hx32(ptr));
        assert_eq!(d(ctx_spec, &keys.writer_key.0), hx32(ptr));
    }
    assert_eq!(crypto::context::GEAR, spec::GEAR);
    assert_eq!(crypto::context::SESSION, spec::SESSION);
    let mut fp = keys.repo_public.to_vec();
    fp.extend_from_slice(&keys.writer_key.0);
    fp.extend_from_slice(&keys.id_key.0);
    assert_eq!(keys.fingerprint(), hx32("/derived/fingerprint"));
    assert_eq!(d(spec::FINGERPRINT, &fp), hx32("/derived/fingerprint"));
    assert_eq!(keys.write_only().fingerprint(), keys.fingerprint());
}

#[test]
fn vector_session_key() {
    let keys = vkeys();
    let eph = x25519_dalek::StaticSecret::from(hx32("/session/ephemeral_secret"));
    let eph_public = x25519_dalek::PublicKey::from(&eph).to_bytes();
    assert_eq!(eph_public, hx32("/session/ephemeral_public"));
    let shared = eph.diffie_hellman(&x25519_dalek::PublicKey::from(keys.repo_public));
    assert_eq!(shared.to_bytes(), hx32("/session/shared_secret"));
    assert_eq!(spec::session_key(&keys, &eph_public), hx32("/session/session_key"));
    assert_eq!(vsession().key().0, hx32("/session/session_key"));
    assert!(Session::for_reading(&keys.write_only(), &eph_public).is_err(), "write-only keys derive no other session");
}

#[test]
fn vector_aad() {
    let keys = vkeys();
    let name = hx32("/aad/name");
    let kind = num("/aad/kind") as u8;
    assert_eq!(kind, ObjectKind::DataBlob as u8);
    assert_eq!(crypto::aad(&keys.repo_id, ObjectKind::DataBlob, &name).to_vec(), hx("/aad/aad"));
    assert_eq!(spec::aad(&keys.repo_id.0, kind, &name), hx("/aad/aad"));
    let codes = [
        (ObjectKind::DataBlob, 1),
        (ObjectKind::TreeBlob, 2),
        (ObjectKind::Snapshot, 3),
        (ObjectKind::Index, 4),
        (ObjectKind::PackHeader, 5),
        (ObjectKind::KeyFile, 6),
    ];
    for (k, c) in codes {
        assert_eq!(k as u8, c, "object kind code of {k:?} (format-spec §3.4)");
    }
}

#[test]
fn vector_gear_table() {
    let keys = vkeys();
    let g = gear_table(&keys.chunk_key);
    let s = spec::gear(&keys.chunk_key.0);
    assert_eq!(&g[..], &s[..]);
    let first: Vec<String> = g.iter().take(8).map(|x| format!("{x:016x}")).collect();
    let want: Vec<&str> = vectors()["gear"]["first"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(first, want);
    assert_eq!(format!("{:016x}", g[255]), text("/gear/last"));
    let bytes: Vec<u8> = g.iter().flat_map(|x| x.to_le_bytes()).collect();
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), text("/gear/table_blake3"));
}

#[test]
fn vector_cut_points_default() {
    let keys = vkeys();
    let buf = input_buffer();
    assert_eq!(blake3::hash(&buf).to_hex().as_str(), text("/input/blake3"));
    let want: Vec<(usize, usize, String)> = vectors()["chunks_default"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["offset"].as_u64().unwrap() as usize,
                c["length"].as_u64().unwrap() as usize,
                c["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ChunkerParams::default(),
        ChunkerParams { algorithm: 1, min_size: 262144, avg_size: 1048576, max_size: 4194304, normalization: 1 }
    );
    let c = Chunker::new(ChunkerParams::default(), &keys.chunk_key).unwrap();
    let cuts = c.cuts(&buf);
    assert_eq!(
        cuts,
        want.iter().map(|w| w.1).collect::<Vec<_>>(),
        "the cut points moved: a chunker change (e.g. a fastcdc upgrade) would end dedup with older backups"
    );
    let streamed: Vec<usize> = c.stream(&buf[..]).map(|r| r.unwrap().len()).collect();
    assert_eq!(streamed, cuts, "streaming and in-memory chunking agree");
    let g = spec::gear(&keys.chunk_key.0);
    assert_eq!(spec::cuts(&ChunkerParams::default(), &g, &buf), cuts, "the spec's cut loop (§3.6) agrees");
    for (off, len, id) in &want {
        assert_eq!(keys.content_id(&buf[*off..off + len]).to_hex(), *id);
    }
}

#[test]
fn vector_cut_points_small() {
    let keys = vkeys();
    let buf = input_buffer();
    let g = spec::gear(&keys.chunk_key.0);
    for v in vectors()["chunks_small"].as_array().unwrap() {
        let p = ChunkerParams {
            algorithm: 1,
            min_size: v["params"]["min_size"].as_u64().unwrap() as u32,
            avg_size: v["params"]["avg_size"].as_u64().unwrap() as u32,
            max_size: v["params"]["max_size"].as_u64().unwrap() as u32,
            normalization: v["params"]["normalization"].as_u64().unwrap() as u8,
        };
        let data = &buf[..v["input_length"].as_u64().unwrap() as usize];
        let want: Vec<usize> = v["lengths"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        let c = Chunker::new(p, &keys.chunk_key).unwrap();
        assert_eq!(c.cuts(data), want, "cut points moved for {p:?}");
        assert_eq!(spec::cuts(&p, &g, data), want, "the spec's cut loop disagrees for {p:?}");
    }
}

#[test]
fn vector_blobs_open() {
    let keys = vkeys();
    let session = vsession();
    let plains = [raw_plain(), zstd_plain(), hx("/blobs/2/plain")];
    let expect_compression = [0u8, 1, 1];
    for (i, plain) in plains.iter().enumerate() {
        let b = &vectors()["blobs"][i];
        let kind = if b["kind"] == "tree" { BlobKind::Tree } else { BlobKind::Data };
        let id = BlobId(hx32(&format!("/blobs/{i}/id")));
        let sealed = hx(&format!("/blobs/{i}/sealed"));
        assert_eq!(keys.content_id(plain), id);
        assert_eq!(num(&format!("/blobs/{i}/plain_length")) as usize, plain.len());
        let opened = blob::open_blob(session.key(), &keys.repo_id, kind, &id, &sealed, plain.len()).unwrap();
        assert_eq!(&opened, plain);
        let code = blob::object_kind(kind) as u8;
        let (p2, compression) = spec::open_blob(&keys, &session.key().0, code, &id.0, &sealed);
        assert_eq!(&p2, plain);
        assert_eq!(compression, expect_compression[i], "compression byte of blob {i}");
        // The AAD binds kind and id, and the session key matters.
        let other = if kind == BlobKind::Data { BlobKind::Tree } else { BlobKind::Data };
        assert!(blob::open_blob(session.key(), &keys.repo_id, other, &id, &sealed, plain.len()).is_err());
        assert!(blob::open_blob(session.key(), &keys.repo_id, kind, &BlobId([0; 32]), &sealed, plain.len()).is_err());
        assert!(blob::open_blob(&Secret([7; 32]), &keys.repo_id, kind, &id, &sealed, plain.len()).is_err());
        assert!(blob::open_blob(session.key(), &keys.repo_id, kind, &id, &sealed, plain.len() + 1).is_err());
    }
}

#[test]
fn vector_tree_encodings_are_canonical() {
    let keys = vkeys();
    let dir = vtree_dir();
    let plain = hx("/blobs/2/plain");
    assert_eq!(dir.encode(), plain, "tree encoding changed: field order or postcard rules moved (format-spec §7)");
    assert_eq!(TreeBlob::decode(&plain).unwrap(), dir);
    assert_eq!(spec::tree_blob(&plain), dir);
    assert_eq!(keys.content_id(&plain).0, hx32("/blobs/2/id"));
    let list = TreeBlob::ChunkListV1 { ids: vec![BlobId(hx32("/blobs/0/id")), BlobId(hx32("/blobs/1/id"))] };
    let lp = hx("/tree_chunk_list/plain");
    assert_eq!(list.encode(), lp);
    assert_eq!(spec::tree_blob(&lp), list);
    assert_eq!(keys.content_id(&lp).0, hx32("/tree_chunk_list/id"));
}

/// The inline tree blob of the vectors (test-vectors.md `tree_inline`): a file with inline
/// content, an empty file (`Chunks` with no ids, never inline), a file of a repeated byte, and a
/// file of the reader's maximum, all of the common metadata.
fn vtree_inline() -> TreeBlob {
    let t = vtime();
    let file = |name: &[u8], bytes: Vec<u8>| {
        let size = bytes.len() as u64;
        Node { size, ..vnode(name, NodeKind::File { content: Content::Inline(bytes) }, t) }
    };
    let nodes = vec![
        file(b"a.txt", b"cairn keeps small files in their tree\n".to_vec()),
        vnode(b"empty", NodeKind::File { content: Content::Chunks(vec![]) }, t),
        file(b"max", b"cairn ".iter().copied().cycle().take(tree::MAX_INLINE).collect()),
        file(b"zeros", vec![0; 100]),
    ];
    TreeBlob::DirV1 { nodes, next: None }
}

#[test]
fn vector_tree_inline() {
    let keys = vkeys();
    let session = vsession();
    let dir = vtree_inline();
    let plain = dir.encode();
    let id = keys.content_id(&plain);
    if vectors().get("tree_inline").is_none() {
        let sealed = blob::seal_blob(session.key(), &keys.repo_id, BlobKind::Tree, &id, &plain, Compression::Zstd(3));
        panic!(
            "\"tree_inline\": {{\"id\": \"{}\", \"plain\": \"{}\", \"plain_length\": {}, \"sealed\": \"{}\"}}",
            hex::encode(id.0),
            hex::encode(&plain),
            plain.len(),
            hex::encode(&sealed)
        );
    }
    assert_eq!(plain, hx("/tree_inline/plain"), "tree encoding changed (format-spec §7.3)");
    assert_eq!(num("/tree_inline/plain_length") as usize, plain.len());
    assert_eq!(TreeBlob::decode(&plain).unwrap(), dir);
    assert_eq!(spec::tree_blob(&plain), dir);
    assert_eq!(id.0, hx32("/tree_inline/id"));
    let sealed = hx("/tree_inline/sealed");
    let opened = blob::open_blob(session.key(), &keys.repo_id, BlobKind::Tree, &id, &sealed, plain.len()).unwrap();
    assert_eq!(opened, plain);
    let (p2, compression) =
        spec::open_blob(&keys, &session.key().0, blob::object_kind(BlobKind::Tree) as u8, &id.0, &sealed);
    assert_eq!((p2, compression), (plain.clone(), 1), "the inline tree is stored compressed");
    // A reader refuses inline content longer than the maximum or other than the size (§7.3).
    let TreeBlob::DirV1 { nodes, .. } = &dir else { unreachable!() };
    let mut long = nodes[2].clone();
    long.kind = NodeKind::File { content: Content::Inline(vec![b'x'; tree::MAX_INLINE + 1]) };
    long.size = tree::MAX_INLINE as u64 + 1;
    let mut short = nodes[0].clone();
    short.size += 1;
    for (bad, why) in [(long, "more than the limit of 4096"), (short, "for a size of")] {
        let e = TreeBlob::decode(&TreeBlob::DirV1 { nodes: vec![bad], next: None }.encode()).unwrap_err();
        assert!(e.contains(why) && e.contains("format-spec §7.3"), "{e}");
    }
}

#[test]
fn vector_packs() {
    let keys = vkeys();
    let session = vsession();
    let mut all_index_packs = Vec::new();
    for (i, want_kind) in [(0usize, BlobKind::Data), (1, BlobKind::Tree)] {
        let bytes = hx(&format!("/packs/{i}/bytes"));
        let id = PackId(hx32(&format!("/packs/{i}/id")));
        assert_eq!(blake3::hash(&bytes).as_bytes(), &id.0, "pack id = BLAKE3 of the stored bytes");
        assert_eq!(pack_path(want_kind, &id), text(&format!("/packs/{i}/path")));
        // The trailer, by hand (§5.3).
        let n = bytes.len();
        assert_eq!(&bytes[n - 8..], b"CAIRNPK1");
        let hl = u32::from_le_bytes(bytes[n - 12..n - 8].try_into().unwrap()) as usize;
        assert_eq!(hl as u64, num(&format!("/packs/{i}/header_length")));
        let stored_header = &bytes[n - 12 - hl..n - 12];
        assert_eq!(blake3::hash(stored_header).as_bytes(), &hx32(&format!("/packs/{i}/header_hash")));
        let salt: [u8; 32] = stored_header[..32].try_into().unwrap();
        let header_plain =
            spec::open(&keys.index_seal_key().0, &spec::aad(&keys.repo_id.0, 5, &salt), &stored_header[32..])
                .expect("pack header opens");
        let by_hand = spec::pack_header(&header_plain);
        let (header, blobs) = packer::parse_pack(&keys, &bytes).unwrap();
        assert_eq!(header, by_hand);
        assert_eq!(postcard::to_allocvec(&header).unwrap(), header_plain, "pack header encoding is canonical");
        if i == 0 {
            assert_eq!(header_plain, hx("/packs/0/header_plain"));
        }
        assert_eq!(header.sessions(), &[hx32("/session/ephemeral_public")]);
        // Offsets are implicit and contiguous; every blob opens at its place.
        let mut off = 0u64;
        for b in &blobs {
            assert_eq!(b.offset, off);
            assert_eq!(b.kind, want_kind);
            let sealed = &bytes[b.offset as usize..(b.offset + b.length as u64) as usize];
            let p =
                blob::open_blob(session.key(), &keys.repo_id, b.kind, &b.id, sealed, b.plain_length as usize).unwrap();
            assert_eq!(keys.content_id(&p), b.id);
            off += b.length as u64;
        }
        assert_eq!(off as usize, n - 12 - hl, "no gap between the blobs and the header");
        all_index_packs.push(IndexPack {
            id,
            kind: want_kind,
            size: n as u64,
            header_length: hl as u32,
            header_hash: *blake3::hash(stored_header).as_bytes(),
            sessions: header.sessions().to_vec(),
            blobs,
        });
    }
    // The index of the vectors describes exactly these packs.
    let index_id = IndexId(hx32("/index/id"));
    let f = object::decode_index(&keys, &index_id, &hx("/index/bytes")).unwrap();
    assert_eq!(f.packs(), &all_index_packs[..]);
}

/// The members of the bundle vector (test-vectors.md `bundle`): three texts, 300 + 1500 + 500 bytes.
fn vbundle_members() -> Vec<Vec<u8>> {
    vec![b"alpha\n".repeat(50), b"beta ".repeat(300), b"gamma".repeat(100)]
}

#[test]
fn vector_bundle() {
    let keys = vkeys();
    let session = vsession();
    let members = vbundle_members();
    if vectors().get("bundle").is_none() {
        let lone = b"cairn ".repeat(700);
        let lone_id = keys.content_id(&lone);
        let mut b = PackBuilder::new(BlobKind::Data, 0);
        let sealed =
            blob::seal_blob(session.key(), &keys.repo_id, BlobKind::Data, &lone_id, &lone, Compression::Zstd(3));
        b.add(&session.public, BlobKind::Data, lone_id, &sealed, lone.len() as u32);
        let list =
            members.iter().map(|m| BundleMember { id: keys.content_id(m), plain_length: m.len() as u32 }).collect();
        let sealed = blob::seal_bundle(session.key(), &keys.repo_id, &members.concat(), Compression::Zstd(3));
        b.add_bundle(&session.public, list, &sealed);
        let p = b.finish(&keys);
        let index_id = IndexId([0x44; 32]);
        let f = IndexFile::new(vec![], vec![p.index.clone()]);
        let index = object::encode_index(&keys, &index_id, &f);
        panic!(
            "\"bundle\": {{\"pack_id\": \"{}\", \"pack\": \"{}\", \"index_id\": \"{}\", \"index\": \"{}\", \"index_plain\": \"{}\"}}",
            hex::encode(p.id.0),
            hex::encode(&p.bytes),
            hex::encode(index_id.0),
            hex::encode(&index),
            hex::encode(postcard::to_allocvec(&f).unwrap()),
        );
    }
    // The pack, by hand (§5.3, §5.5): a version 2 header with one blob alone, then one bundle.
    let bytes = hx("/bundle/pack");
    let id = PackId(hx32("/bundle/pack_id"));
    assert_eq!(blake3::hash(&bytes).as_bytes(), &id.0);
    let n = bytes.len();
    let hl = u32::from_le_bytes(bytes[n - 12..n - 8].try_into().unwrap()) as usize;
    let stored_header = &bytes[n - 12 - hl..n - 12];
    let salt: [u8; 32] = stored_header[..32].try_into().unwrap();
    let header_plain =
        spec::open(&keys.index_seal_key().0, &spec::aad(&keys.repo_id.0, 5, &salt), &stored_header[32..]).unwrap();
    let by_hand = spec::pack_header(&header_plain);
    let PackHeader::V2 { segments, .. } = &by_hand else { panic!("a pack with a bundle has a V2 header") };
    let (PackSegment::Blob(lone), PackSegment::Bundle(bundle)) = (&segments[0], &segments[1]) else {
        panic!("one blob, then one bundle: {segments:?}")
    };
    let (lone_plain, _) = spec::open_blob(&keys, &session.key().0, 1, &lone.id.0, &bytes[..lone.length as usize]);
    assert_eq!(lone_plain, b"cairn ".repeat(700));
    let at = lone.length as usize;
    let (body, compression) = spec::open_bundle(&keys, &session.key().0, &bytes[at..at + bundle.length as usize]);
    assert_eq!((body, compression), (members.concat(), 1), "the body is the members back to back, zstd");
    let mut inner = 0usize;
    for (m, want) in bundle.members.iter().zip(&members) {
        assert_eq!(m.plain_length as usize, want.len());
        assert_eq!(
            blake3::keyed_hash(&keys.id_key.0, &members.concat()[inner..inner + want.len()]).as_bytes(),
            &m.id.0
        );
        inner += want.len();
    }
    assert_eq!(at + bundle.length as usize, n - 12 - hl, "no gap before the header");
    // The library reads the same, and the V2 index file names each member at the bundle's place.
    let (header, blobs) = packer::parse_pack(&keys, &bytes).unwrap();
    assert_eq!(header, by_hand);
    assert_eq!(blobs.iter().map(|b| b.inner).collect::<Vec<_>>(), vec![None, Some(0), Some(300), Some(1800)]);
    let index_id = IndexId(hx32("/bundle/index_id"));
    let index = hx("/bundle/index");
    let f = object::decode_index(&keys, &index_id, &index).unwrap();
    assert!(matches!(f, IndexFile::V2 { .. }));
    let plain = spec::open(&keys.index_seal_key().0, &spec::aad(&keys.repo_id.0, 4, &index_id.0), &index[9..]).unwrap();
    assert_eq!(plain, hx("/bundle/index_plain"));
    assert_eq!(spec::index_file(&plain), f);
    assert_eq!(f.packs()[0].blobs, blobs);
    // A member opens through the library from its index entry alone.
    let loc_blob = &blobs[2];
    let sealed = &bytes[loc_blob.offset as usize..(loc_blob.offset + loc_blob.length as u64) as usize];
    let body = blob::open_bundle(session.key(), &keys.repo_id, sealed).unwrap();
    assert_eq!(
        blob::bundle_member(&body, loc_blob.inner.unwrap(), loc_blob.plain_length as usize).unwrap(),
        &members[1][..]
    );
}

#[test]
fn vector_index() {
    let keys = vkeys();
    let id = IndexId(hx32("/index/id"));
    let bytes = hx("/index/bytes");
    assert_eq!(&bytes[..9], b"CAIRNIDX\x01");
    let f = object::decode_index(&keys, &id, &bytes).unwrap();
    assert_eq!(f.supersedes(), &[IndexId([0x88; 32])]);
    let plain = spec::open(&keys.index_seal_key().0, &spec::aad(&keys.repo_id.0, 4, &id.0), &bytes[9..]).unwrap();
    assert_eq!(plain, hx("/index/plain"));
    assert_eq!(spec::index_file(&plain), f);
    assert_eq!(postcard::to_allocvec(&f).unwrap(), plain, "index encoding is canonical");
    assert!(object::decode_index(&keys, &IndexId([0x12; 32]), &bytes).is_err(), "an index file cannot be renamed");
    assert!(object::decode_index(&keys.write_only(), &id, &bytes).is_ok(), "write-only keys read the index");
}

#[test]
fn vector_snapshot() {
    let keys = vkeys();
    let id = SnapshotId(hx32("/snapshot/id"));
    let bytes = hx("/snapshot/bytes");
    assert_eq!(&bytes[..9], b"CAIRNSNP\x01");
    assert_eq!(&bytes[9..41], &hx32("/session/ephemeral_public"));
    let snap = object::decode_snapshot(&keys, &id, &bytes).unwrap();
    assert_eq!(snap, vsnapshot());
    let plain = hx("/snapshot/plain");
    assert_eq!(postcard::to_allocvec(&vsnapshot()).unwrap(), plain, "snapshot encoding changed (format-spec §8.1)");
    let key = spec::session_key(&keys, &hx32("/session/ephemeral_public"));
    assert_eq!(spec::open(&key, &spec::aad(&keys.repo_id.0, 3, &id.0), &bytes[41..]).unwrap(), plain);
    assert_eq!(spec::snapshot(&plain), snap);
    assert!(object::decode_snapshot(&keys, &SnapshotId([0x23; 32]), &bytes).is_err(), "a snapshot cannot be renamed");
    assert!(object::decode_snapshot(&keys.write_only(), &id, &bytes).is_err(), "write-only keys cannot read snapshots");
}

#[test]
fn vector_snapshot_v3() {
    let keys = vkeys();
    let id = SnapshotId(hx32("/snapshot_v3/id"));
    let plain = hx("/snapshot_v3/plain");
    assert_eq!(postcard::to_allocvec(&vsnapshot_v3()).unwrap(), plain, "snapshot encoding changed (format-spec §8.1)");
    assert_eq!(plain[0], 2, "V3 is variant 2");
    assert_eq!(spec::snapshot(&plain), vsnapshot_v3());
    // `origin` (format-spec §8.1, §8.3): after `replaces`, before `writer`: Some(66…66), then no writer block.
    assert_eq!(&plain[plain.len() - 34..], &[&[1u8][..], &[0x66; 32], &[0]].concat()[..]);
    assert_eq!(vsnapshot_v3().origin(), Some(KeyId([0x66; 32])));
    let bytes = hx("/snapshot_v3/bytes");
    assert_eq!(&bytes[..9], b"CAIRNSNP\x01");
    let snap = object::decode_snapshot(&keys, &id, &bytes).unwrap();
    assert_eq!(snap, vsnapshot_v3());
    let key = spec::session_key(&keys, &hx32("/session/ephemeral_public"));
    assert_eq!(spec::open(&key, &spec::aad(&keys.repo_id.0, 3, &id.0), &bytes[41..]).unwrap(), plain);
    // The version 1 vector read as version 3: its command's record, without the command's text.
    let old = vsnapshot();
    assert_eq!(old.sources(), vec![SourceRecord::Command { path: "db.sql".into(), exit_status: 0, bytes: 7 }]);
    assert_eq!(old.describe_sources(), "command:pg_dump db", "old snapshots still show their command");
    assert!(old.v3().sources.iter().all(|r| !format!("{r:?}").contains("pg_dump")));
    assert_eq!(snap.describe_sources(), "files,command:/redis/dump.rdb,stdin:/app.sql");
}

#[test]
fn vector_configs() {
    let keys = vkeys();
    let (c1, c2) = vconfigs();
    let b1 = hx("/configs/0/bytes");
    let b2 = hx("/configs/1/bytes");
    assert_eq!(Object::Config(1).path(), text("/configs/0/path"));
    assert_eq!(Object::Config(2).path(), text("/configs/1/path"));
    assert_eq!(Object::parse("config/0000000002"), Some(Object::Config(2)));
    // Configs in the MAC framing (repositories from before signatures, format-spec §9.1) are
    // deterministic: encoding must reproduce the frozen bytes exactly, MAC included.
    assert_eq!(object::legacy::encode_config_mac(&keys, 1, &c1), b1, "config encoding changed (format-spec §9.1)");
    assert_eq!(object::legacy::encode_config_mac(&keys, 2, &c2), b2);
    assert_eq!(blake3::hash(&b1).as_bytes(), &hx32("/configs/0/blake3"));
    assert_eq!(object::decode_config(&keys, 1, &b1).unwrap(), c1);
    assert_eq!(object::decode_config(&keys, 2, &b2).unwrap(), c2);
    assert_eq!(spec::config(&keys, 1, &b1), c1);
    assert_eq!(spec::config(&keys, 2, &b2), c2);
    assert!(object::decode_config(&keys, 2, &b1).is_err(), "the MAC binds the config number");
    assert_eq!(object::decode_config(&keys.write_only(), 1, &b1).unwrap(), c1);
    let mut other = keys.clone();
    other.writer_key = Secret([0; 32]);
    assert!(object::decode_config(&other, 1, &b1).is_err());
}

#[test]
fn vector_lease_and_prune_mark() {
    let keys = vkeys();
    let path = text("/lease/path");
    let eph = hx32("/session/ephemeral_public");
    assert_eq!(Object::Lease { session: eph, seq: 0 }.path(), path);
    assert_eq!(path, format!("leases/{}-00000000", hex::encode(eph)));
    let bytes = hx("/lease/bytes");
    assert_eq!(object::encode_lease(&keys, path, &vlease()), bytes, "lease encoding changed (format-spec §10.1)");
    assert_eq!(object::decode_lease(&keys, path, &bytes).unwrap(), vlease());
    let mut r = spec::macd(spec::LEASE_MAC, &keys, b"CAIRNLSE", path, &bytes);
    assert_eq!(r.variant(), 0);
    let by_hand = Lease::V1 {
        session: r.a32(),
        seq: r.u32(),
        host: r.string(),
        pid: r.u32(),
        duration_secs: r.u64(),
        operation: r.string(),
        client_time: r.time(),
    };
    r.end();
    assert_eq!(by_hand, vlease());
    assert!(
        object::decode_lease(&keys, &Object::Lease { session: eph, seq: 1 }.path(), &bytes).is_err(),
        "the MAC binds the path"
    );

    let mpath = text("/prune_mark/path");
    let mbytes = hx("/prune_mark/bytes");
    // The MAC framing of before signatures: pinned, decodable by its own decoder, never trusted.
    assert_eq!(object::legacy::encode_prune_mark_mac(&keys, mpath, &vmark()), mbytes, "prune mark encoding changed");
    assert_eq!(object::legacy::decode_prune_mark_mac(&keys, mpath, &mbytes).unwrap(), vmark());
    let refused = object::decode_prune_mark(&keys, mpath, &mbytes).unwrap_err();
    assert!(refused.contains("MAC framing"), "{refused}");
    let mut r = spec::macd(spec::PRUNE_MAC, &keys, b"CAIRNPRN", mpath, &mbytes);
    assert_eq!(r.variant(), 0);
    let by_hand = PruneMark::V1 {
        created: r.time(),
        condemned: r.vec(|r| (r.blob_kind(), PackId(r.a32()))),
        snapshots: r.vec(|r| SnapshotId(r.a32())),
    };
    r.end();
    assert_eq!(by_hand, vmark());
    assert!(object::decode_lease(&keys, mpath, &mbytes).is_err(), "a prune mark is not a lease");
}

#[test]
fn vector_signed_config_and_prune_mark() {
    let keys = vkeys();
    let (c1, _) = vconfigs();
    let b = hx("/signed_config/bytes");
    assert_eq!(Object::Config(1).path(), text("/signed_config/path"));
    assert_eq!(&b[..8], b"CAIRNCF2");
    assert!(config::is_signed(&b));
    assert_eq!(b.len(), 8 + postcard::to_allocvec(&c1).unwrap().len() + 64, "magic ‖ postcard ‖ 64-byte signature");
    assert_eq!(&b[8..b.len() - 64], &postcard::to_allocvec(&c1).unwrap()[..], "config encoding changed (§9.1)");
    // §3.7: the signed message is CONFIG_SIG ‖ u64le(n) ‖ every byte before the signature.
    let (body, sig) = b.split_at(b.len() - 64);
    assert!(sign::verify(&keys.repo_public, crypto::context::CONFIG_SIG, &[&1u64.to_le_bytes(), body], sig));
    assert_eq!(keys.repo_public, crypto::public_key(keys.repo_secret.as_ref().unwrap()));
    assert_eq!(object::decode_config(&keys, 1, &b).unwrap(), c1);
    assert_eq!(object::decode_config(&keys.write_only(), 1, &b).unwrap(), c1, "every key verifies");
    assert!(object::decode_config(&keys, 2, &b).is_err(), "the signature binds the number");
    let mut other = keys.clone();
    other.repo_public = crypto::public_key(&Secret([9; 32]));
    assert!(object::decode_config(&other, 1, &b).is_err(), "another repository key");

    let mpath = text("/signed_prune_mark/path");
    let mb = hx("/signed_prune_mark/bytes");
    assert_eq!(&mb[..8], b"CAIRNPR2");
    let (body, sig) = mb.split_at(mb.len() - 64);
    assert_eq!(&body[8..], &postcard::to_allocvec(&vmark()).unwrap()[..], "prune mark encoding changed (§10.2)");
    assert!(sign::verify(&keys.repo_public, crypto::context::MARK_SIG, &[mpath.as_bytes(), body], sig));
    assert_eq!(object::decode_prune_mark(&keys.write_only(), mpath, &mb).unwrap(), vmark());
    assert!(object::decode_prune_mark(&keys, &Object::Mark("78".repeat(32)).path(), &mb).is_err(), "path bound");
    assert!(object::decode_wait(&keys, mpath, &mb).is_err(), "a mark is no wait");
}

#[test]
fn vector_key_files() {
    let keys = vkeys();
    for (i, want) in [(0usize, keys.clone()), (1, keys.write_only())] {
        let id = KeyId(hx32(&format!("/key_files/{i}/id")));
        let bytes = hx(&format!("/key_files/{i}/bytes"));
        let password = text(&format!("/key_files/{i}/password"));
        assert_eq!(&bytes[..8], b"CAIRNKEY");
        let kf = keyfile::decode(&bytes).unwrap();
        assert_eq!(kf.kdf(), Some(KdfParams::MINIMUM));
        let kdf = kf.kdf().unwrap();
        assert_eq!(kf.repo_id(), keys.repo_id);
        let opened =
            object::open_keyfile(&kf, &id, password.as_bytes()).unwrap().expect("the password opens the key file");
        assert_eq!(opened, want);
        assert_eq!(kf.kind() == keyfile::KeyKind::Full, want.can_read());
        // By hand: argon2id KEK, then the AEAD with kind 6 and the key id.
        let mut kek = [0u8; 32];
        let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32)).unwrap();
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into(password.as_bytes(), kf.salt(), &mut kek)
            .unwrap();
        let plain = spec::open(&kek, &spec::aad(&keys.repo_id.0, 6, &id.0), kf.sealed()).unwrap();
        assert_eq!(spec::master_keys(&plain), want);
        if i == 0 {
            assert!(object::open_keyfile(&kf, &id, b"wrong").unwrap().is_none());
            assert!(object::open_keyfile(&kf, &KeyId([0; 32]), password.as_bytes()).unwrap().is_none());
        }
    }
}

/// The secret key file vector (format-spec §4.1, `KeyFile::SecretV1`), opened by hand from the spec alone: the
/// secret's text form parsed, the KEK derived with BLAKE3, the key file decoded with the independent postcard reader,
/// the material opened with the AEAD of §3.4, and the signing public key of §4.3 derived from the KEK. Then the
/// library agrees, and refuses what the spec says does not open it.
#[test]
fn vector_secret_key_file() {
    let keys = vkeys();
    let id = KeyId(hx32("/secret_key_file/id"));
    let bytes = hx("/secret_key_file/bytes");
    let secret_text = text("/secret_key_file/secret_text");
    assert_eq!(text("/secret_key_file/kind"), "full");

    // §4.1: the text form is "cairn-secret-v1-" and 64 lowercase hex digits of the secret.
    let digits = secret_text.strip_prefix("cairn-secret-v1-").expect("the secret's prefix");
    assert_eq!(digits.len(), 64);
    assert!(digits.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
    let secret: [u8; 32] = hex::decode(digits).unwrap().try_into().unwrap();
    assert_eq!(secret, hx32("/secret_key_file/secret"));
    let salt = hx32("/secret_key_file/salt");

    // §4.1: KEK = BLAKE3-derive("cairn 2026-12 v1 key file secret", secret ‖ salt).
    let mut ikm = secret.to_vec();
    ikm.extend_from_slice(&salt);
    let kek = blake3::derive_key(spec::KEY_FILE_SECRET, &ikm);
    assert_eq!(kek, hx32("/secret_key_file/kek"));

    // §4.1: "CAIRNKEY" ‖ postcard(KeyFile), variant 1 = SecretV1: kind, repo_id, created, host, user, salt, sealed.
    assert_eq!(&bytes[..8], b"CAIRNKEY");
    let mut r = spec::Rd::new(&bytes[8..]);
    assert_eq!(r.variant(), 1, "KeyFile::SecretV1");
    assert_eq!(r.variant(), 0, "KeyKind::Full");
    assert_eq!(r.a32(), keys.repo_id.0);
    assert_eq!(r.time(), Time { secs: 1_793_491_200, nanos: 123_456_789 });
    assert_eq!(r.string(), "host.example");
    assert_eq!(r.string(), "alice");
    assert_eq!(r.a32(), salt);
    let sealed = r.bytes();
    r.end();
    assert_eq!(sealed.len(), 225 + 40, "a full key's material, sealed");
    let plain = spec::open(&kek, &spec::aad(&keys.repo_id.0, 6, &id.0), &sealed).expect("the KEK opens the material");
    assert_eq!(spec::master_keys(&plain), keys);
    // §4.3: the key's signing secret comes from the KEK, as for a password key file.
    let sign = x25519_dalek::StaticSecret::from(blake3::derive_key(spec::KEY_SIGN, &kek));
    assert_eq!(x25519_dalek::PublicKey::from(&sign).to_bytes(), hx32("/secret_key_file/key_public"));

    // The library reads the same, and opens it with the text form only.
    let kf = keyfile::decode(&bytes).unwrap();
    assert_eq!(kf.credential(), keyfile::Credential::Secret);
    assert_eq!(kf.kdf(), None);
    assert_eq!(kf.salt(), &salt);
    for credential in [secret_text.to_string(), format!("{secret_text}\n"), format!("  {secret_text}\r\n")] {
        let opened = object::open_keyfile(&kf, &id, credential.as_bytes()).unwrap();
        assert_eq!(opened, Some(keys.clone()), "{credential:?}");
    }
    for wrong in [secret_text.to_uppercase(), digits.to_string(), format!("{}0", &secret_text[..secret_text.len() - 1])]
    {
        assert!(object::open_keyfile(&kf, &id, wrong.as_bytes()).unwrap().is_none(), "{wrong:?}");
    }
    assert!(object::open_keyfile(&kf, &KeyId([0; 32]), secret_text.as_bytes()).unwrap().is_none(), "id bound");
    let password = text("/key_files/0/password");
    assert!(object::open_keyfile(&kf, &id, password.as_bytes()).unwrap().is_none(), "a password never opens it");
    // Re-encoding the decoded key file gives the stored bytes back (canonical, §2.2).
    assert_eq!(&postcard::to_allocvec(&kf).unwrap()[..], &bytes[8..]);
}

// ---------------------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------------------

fn arb_time() -> impl Strategy<Value = Time> {
    (any::<i64>(), 0u32..1_000_000_000).prop_map(|(secs, nanos)| Time { secs, nanos })
}

fn arb_id() -> impl Strategy<Value = BlobId> {
    any::<[u8; 32]>().prop_map(BlobId)
}

fn arb_name() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0), 1..12)
        .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

fn arb_content() -> impl Strategy<Value = Content> {
    prop_oneof![
        prop::collection::vec(arb_id(), 0..4).prop_map(Content::Chunks),
        (prop::collection::vec(arb_id(), 0..3), any::<u64>())
            .prop_map(|(lists, count)| Content::Indirect { lists, count }),
    ]
}

fn arb_kind() -> impl Strategy<Value = NodeKind> {
    prop_oneof![
        arb_content().prop_map(|content| NodeKind::File { content }),
        arb_id().prop_map(|tree| NodeKind::Dir { tree }),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(|target| NodeKind::Symlink { target }),
        Just(NodeKind::Fifo),
        any::<u64>().prop_map(|rdev| NodeKind::CharDevice { rdev }),
        any::<u64>().prop_map(|rdev| NodeKind::BlockDevice { rdev }),
        Just(NodeKind::Socket),
    ]
}

fn arb_node() -> impl Strategy<Value = Node> {
    (
        arb_name(),
        arb_kind(),
        (any::<u32>(), any::<u32>(), any::<u32>()),
        (".{0,8}", ".{0,8}"),
        (arb_time(), arb_time(), arb_time()),
        (any::<u64>(), any::<u64>()),
        prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..8), prop::collection::vec(any::<u8>(), 0..8)),
            0..3,
        ),
    )
        .prop_map(
            |(name, kind, (mode, uid, gid), (user, group), (mtime, atime, ctime), (size, hardlink), xattrs)| Node {
                name,
                kind,
                mode,
                uid,
                gid,
                user,
                group,
                mtime,
                atime,
                ctime,
                size,
                hardlink,
                xattrs,
            },
        )
}

fn arb_tree() -> impl Strategy<Value = TreeBlob> {
    prop_oneof![
        (prop::collection::vec(arb_node(), 0..6), prop::option::of(arb_id())).prop_map(|(mut nodes, next)| {
            tree::canonicalize(&mut nodes);
            nodes.dedup_by(|a, b| a.name == b.name);
            TreeBlob::DirV1 { nodes, next }
        }),
        prop::collection::vec(arb_id(), 0..6).prop_map(|ids| TreeBlob::ChunkListV1 { ids }),
    ]
}

fn arb_source() -> impl Strategy<Value = Source> {
    prop_oneof![
        Just(Source::Files),
        ".{0,10}".prop_map(|name| Source::Stdin { name }),
        (".{0,10}", ".{0,10}", any::<i32>()).prop_map(|(command, name, exit_status)| Source::Command {
            command,
            name,
            exit_status
        }),
    ]
}

fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
    (
        (arb_time(), ".{0,10}", ".{0,10}", any::<u32>(), any::<u32>()),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..16), 0..3),
        prop::collection::vec(".{0,8}", 0..3),
        (arb_id(), prop::option::of(any::<[u8; 32]>().prop_map(SnapshotId)), arb_source()),
        (prop::array::uniform11(any::<u64>()), arb_time(), arb_time(), ".{0,12}"),
    )
        .prop_map(
            |((time, host, user, uid, gid), paths, tags, (root, parent, source), (c, started, finished, program))| {
                Snapshot::V1(SnapshotV1 {
                    time,
                    host,
                    user,
                    uid,
                    gid,
                    paths,
                    tags,
                    root,
                    parent,
                    source,
                    summary: Summary {
                        files_new: c[0],
                        files_changed: c[1],
                        files_unchanged: c[2],
                        dirs: c[3],
                        other: c[4],
                        bytes_read: c[5],
                        bytes_processed: c[6],
                        blobs_added: c[7],
                        bytes_added: c[8],
                        bytes_added_stored: c[9],
                        errors: c[10],
                        started,
                        finished,
                    },
                    program,
                })
            },
        )
}

fn arb_blob_kind() -> impl Strategy<Value = BlobKind> {
    prop_oneof![Just(BlobKind::Data), Just(BlobKind::Tree)]
}

/// A consistent index pack: contiguous blobs, valid session references, size covering blobs and header.
fn arb_index_pack() -> impl Strategy<Value = IndexPack> {
    (
        any::<[u8; 32]>(),
        arb_blob_kind(),
        prop::collection::vec(any::<[u8; 32]>(), 1..4),
        prop::collection::vec((arb_id(), any::<u32>(), 41u32..100_000, any::<u32>(), any::<Option<u32>>()), 0..6),
        (1u32..10_000, any::<[u8; 32]>(), 0u64..1000),
    )
        .prop_map(|(id, kind, sessions, raw, (header_length, header_hash, slack))| {
            let mut off = 0u64;
            let blobs: Vec<IndexBlob> = raw
                .into_iter()
                .map(|(bid, s, length, plain_length, inner)| {
                    // Bundle members (format-spec §5.5) are data blobs within 64 MiB of body.
                    let inner = inner.filter(|_| kind == BlobKind::Data).map(|o| o % (1 << 25));
                    let b = IndexBlob {
                        kind,
                        id: bid,
                        session: s % sessions.len() as u32,
                        offset: off,
                        length,
                        plain_length: if inner.is_some() { plain_length % (1 << 25) } else { plain_length },
                        inner,
                    };
                    off += length as u64;
                    b
                })
                .collect();
            let size = off + header_length as u64 + 12 + slack;
            IndexPack { id: PackId(id), kind, size, header_length, header_hash, sessions, blobs }
        })
}

fn arb_index() -> impl Strategy<Value = IndexFile> {
    (prop::collection::vec(any::<[u8; 32]>().prop_map(IndexId), 0..3), prop::collection::vec(arb_index_pack(), 0..4))
        .prop_map(|(supersedes, packs)| IndexFile::new(supersedes, packs))
}

fn arb_pack_header() -> impl Strategy<Value = PackHeader> {
    (
        prop::collection::vec(any::<[u8; 32]>(), 1..4),
        arb_blob_kind(),
        prop::collection::vec(
            (arb_id(), any::<u32>(), any::<u32>(), any::<u32>(), prop::collection::vec((arb_id(), any::<u32>()), 0..4)),
            0..8,
        ),
    )
        .prop_map(|(sessions, kind, raw)| {
            let n = sessions.len() as u32;
            // Data packs may hold bundles (format-spec §5.5): a segment with members is one.
            let segments = raw
                .into_iter()
                .map(|(id, s, length, plain_length, members)| {
                    if kind == BlobKind::Data && !members.is_empty() {
                        PackSegment::Bundle(PackBundle {
                            kind,
                            session: s % n,
                            length,
                            members: members
                                .into_iter()
                                .map(|(id, plain_length)| BundleMember { id, plain_length })
                                .collect(),
                        })
                    } else {
                        PackSegment::Blob(PackEntry { kind, id, session: s % n, length, plain_length })
                    }
                })
                .collect();
            PackHeader::new(sessions, segments)
        })
}

fn arb_chunker() -> impl Strategy<Value = ChunkerParams> {
    (32u32..=2048, 128u32..=2_097_152, 0u8..=3).prop_flat_map(|(min_half, avg_half, normalization)| {
        let min = min_half * 2;
        let avg = (avg_half * 2).max(min);
        (Just(min), Just(avg), (avg / 2)..=8_388_608u32, Just(normalization)).prop_map(
            |(min_size, avg_size, max_half, normalization)| ChunkerParams {
                algorithm: 1,
                min_size,
                avg_size,
                max_size: max_half * 2,
                normalization,
            },
        )
    })
}

fn arb_config(repo_id: RepoId) -> impl Strategy<Value = Config> {
    (
        (any::<u32>(), any::<u32>()),
        arb_chunker(),
        (any::<u32>(), any::<i32>(), any::<[u8; 32]>()),
        prop::option::of(any::<[u8; 32]>()),
        arb_time(),
    )
        .prop_map(
            move |(
                (format_version, min_writer_version),
                chunker,
                (pack_size, compression_level, repo_public),
                previous,
                created,
            )| {
                Config::V1(ConfigV1 {
                    format_version,
                    min_writer_version,
                    repo_id,
                    chunker,
                    pack_size,
                    compression_level,
                    repo_public,
                    previous,
                    created,
                })
            },
        )
}

/// Flips bit `bit` of a copy of `bytes`.
fn flipped(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let i = bit % (b.len() * 8);
    b[i / 8] ^= 1 << (i % 8);
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn tree_blob_round_trip(t in arb_tree()) {
        let bytes = t.encode();
        prop_assert_eq!(TreeBlob::decode(&bytes).unwrap(), t.clone());
        prop_assert_eq!(spec::tree_blob(&bytes), t);
    }

    #[test]
    fn snapshot_round_trip(s in arb_snapshot()) {
        let keys = vkeys();
        let session = Session::new_writer(&keys);
        let id = SnapshotId(crypto::random_32());
        let bytes = object::encode_snapshot(&keys, &session, &id, &s);
        prop_assert_eq!(object::decode_snapshot(&keys, &id, &bytes).unwrap(), s.clone());
        let (public, body) = snapshot::split(&bytes).unwrap();
        prop_assert_eq!(public, session.public);
        prop_assert_eq!(object::decode_snapshot_body(&keys, &session, &id, body).unwrap(), s.clone());
        // §8.1 version 2: the version 1 fields, then the writer block (§4.3), read independently.
        let w = cairn::cert::Writer {
            key_id: cairn::id::KeyId(crypto::random_32()),
            signature: cairn::cert::Signature64(crypto::random_32(), crypto::random_32()),
        };
        let Snapshot::V1(v1) = &s else { panic!("arb_snapshot makes version 1") };
        for writer in [None, Some(w)] {
            let v2 = Snapshot::V2(cairn::snapshot::SnapshotV2 { base: v1.clone(), writer });
            let plain = postcard::to_allocvec(&v2).unwrap();
            prop_assert_eq!(plain[0], 1, "Snapshot::V2 is variant 1");
            prop_assert_eq!(&plain[1..], &[&postcard::to_allocvec(v1).unwrap()[..], &postcard::to_allocvec(&writer).unwrap()[..]].concat()[..]);
            prop_assert_eq!(spec::snapshot(&plain), v2.clone());
            // What its writer signed: the V2 postcard with no writer block.
            let unsigned = Snapshot::V2(cairn::snapshot::SnapshotV2 { base: v1.clone(), writer: None });
            prop_assert_eq!(v2.unsigned_bytes(), postcard::to_allocvec(&unsigned).unwrap());
            let bytes = object::encode_snapshot(&keys, &session, &id, &v2);
            prop_assert_eq!(object::decode_snapshot(&keys, &id, &bytes).unwrap(), v2.clone());
            // Read as version 3: the same fields, `source` as its records.
            prop_assert_eq!(v2.sources(), v1.source_records());
        }
        // §8.1 version 3, what writers write: read independently.
        let rewritten = (Some(w), vec![SnapshotId([1; 32]), SnapshotId([2; 32])], Some(KeyId([3; 32])));
        for (writer, replaces, origin) in [(None, vec![], None), rewritten] {
            let mut v3 = s.with_writer(writer);
            v3.v3_mut().replaces = replaces.clone();
            v3.v3_mut().origin = origin;
            v3.v3_mut().sources.push(SourceRecord::Command { path: "redis/dump.rdb".into(), exit_status: 0, bytes: 7 });
            let plain = postcard::to_allocvec(&v3).unwrap();
            prop_assert_eq!(plain[0], 2, "Snapshot::V3 is variant 2");
            prop_assert_eq!(spec::snapshot(&plain), v3.clone());
            prop_assert_eq!(v3.replaces(), &replaces[..]);
            let mut unsigned = v3.clone();
            unsigned.v3_mut().writer = None;
            prop_assert_eq!(v3.unsigned_bytes(), postcard::to_allocvec(&unsigned).unwrap());
            // The signature covers `origin` (format-spec §8.3): another origin is other signed bytes.
            prop_assert_eq!(v3.origin(), origin);
            let mut other = v3.clone();
            other.v3_mut().origin = Some(KeyId([4; 32]));
            prop_assert_ne!(other.unsigned_bytes(), v3.unsigned_bytes());
            let bytes = object::encode_snapshot(&keys, &session, &id, &v3);
            prop_assert_eq!(object::decode_snapshot(&keys, &id, &bytes).unwrap(), v3);
        }
    }

    #[test]
    fn index_round_trip(f in arb_index()) {
        let keys = vkeys();
        prop_assert!(f.validate().is_ok());
        let id = IndexId(crypto::random_32());
        let bytes = object::encode_index(&keys, &id, &f);
        prop_assert_eq!(object::decode_index(&keys, &id, &bytes).unwrap(), f.clone());
        prop_assert_eq!(spec::index_file(&postcard::to_allocvec(&f).unwrap()), f);
    }

    #[test]
    fn pack_header_round_trip(h in arb_pack_header()) {
        let keys = vkeys();
        let stored = packer::seal_header(&keys, &h);
        prop_assert_eq!(packer::open_header(&keys.repo_id, &keys.index_seal_key(), &stored).unwrap(), h.clone());
        prop_assert_eq!(spec::pack_header(&postcard::to_allocvec(&h).unwrap()), h);
    }

    #[test]
    fn pack_build_parse_round_trip(blobs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..6),
                                   tree in any::<bool>()) {
        let keys = vkeys();
        let session = Session::new_writer(&keys);
        let kind = if tree { BlobKind::Tree } else { BlobKind::Data };
        let mut b = PackBuilder::new(kind, 0);
        for plain in &blobs {
            let id = keys.content_id(plain);
            let sealed = blob::seal_blob(session.key(), &keys.repo_id, kind, &id, plain, Compression::default());
            b.add(&session.public, kind, id, &sealed, plain.len() as u32);
        }
        let p = b.finish(&keys);
        prop_assert_eq!(p.id.0, *blake3::hash(&p.bytes).as_bytes());
        let (h, index_blobs) = packer::parse_pack(&keys, &p.bytes).unwrap();
        prop_assert_eq!(&index_blobs, &p.index.blobs);
        prop_assert_eq!(h.blob_count(), blobs.len());
        let single = IndexFile::V1 { supersedes: vec![], packs: vec![p.index.clone()] };
        prop_assert!(single.validate().is_ok());
        for (ib, plain) in index_blobs.iter().zip(&blobs) {
            let sealed = &p.bytes[ib.offset as usize..(ib.offset + ib.length as u64) as usize];
            prop_assert_eq!(&blob::open_blob(session.key(), &keys.repo_id, kind, &ib.id, sealed, plain.len()).unwrap(), plain);
        }
    }

    #[test]
    fn config_round_trip(cfg in arb_config(RepoId(hx32("/keys/repo_id"))), n in 1u64..1_000_000) {
        let keys = vkeys();
        let bytes = object::encode_config(&keys, n, &cfg).unwrap();
        prop_assert!(config::is_signed(&bytes));
        prop_assert_eq!(object::decode_config(&keys, n, &bytes).unwrap(), cfg.clone());
        prop_assert_eq!(object::decode_config(&keys.write_only(), n, &bytes).unwrap(), cfg.clone());
        prop_assert_eq!(config::decode_unverified(&bytes).unwrap(), cfg.clone());
        prop_assert!(object::decode_config(&keys, n + 1, &bytes).is_err(), "the signature binds the number");
        let mac = object::legacy::encode_config_mac(&keys, n, &cfg);
        prop_assert!(!config::is_signed(&mac));
        prop_assert_eq!(object::decode_config(&keys, n, &mac).unwrap(), cfg.clone());
        prop_assert_eq!(spec::config(&keys, n, &mac), cfg);
        prop_assert!(object::decode_config(&keys, n + 1, &mac).is_err());
    }

    #[test]
    fn lease_and_mark_round_trip(seq in any::<u32>(), host in ".{0,12}", pid in any::<u32>(), t in arb_time(),
                                 condemned in prop::collection::vec((arb_blob_kind(), any::<[u8; 32]>().prop_map(PackId)), 0..5)) {
        let keys = vkeys();
        let session = crypto::random_32();
        let path = Object::Lease { session, seq }.path();
        let l = Lease::V1 { session, seq, host, pid, duration_secs: 3600, operation: "backup".into(), client_time: t };
        let bytes = object::encode_lease(&keys, &path, &l);
        prop_assert_eq!(object::decode_lease(&keys, &path, &bytes).unwrap(), l);
        let m = PruneMark::V1 { created: t, condemned, snapshots: vec![SnapshotId(session)] };
        let mpath = format!("prune/mark-{}", hex::encode(session));
        let mbytes = object::encode_prune_mark(&keys, &mpath, &m).unwrap();
        prop_assert_eq!(object::decode_prune_mark(&keys.write_only(), &mpath, &mbytes).unwrap(), m.clone());
        prop_assert!(object::encode_prune_mark(&keys.write_only(), &mpath, &m).is_err(), "write-only keys cannot sign");
        prop_assert!(object::decode_prune_mark(&keys, &format!("{mpath}0"), &mbytes).is_err(), "the signature binds the path");
    }

    /// A key file opened with a generated secret (format-spec §4.1, `KeyFile::SecretV1`) round trips through the
    /// library and the independent reader, opens with the secret's text form and with nothing else.
    #[test]
    fn secret_key_file_round_trip(secret in any::<[u8; 32]>(), other in any::<[u8; 32]>(), id in any::<[u8; 32]>(),
                                  host in ".{0,12}", user in ".{0,12}", write_only in any::<bool>()) {
        use cairn::codec::object::NewCredential;
        use cairn::keyfile::KeySecret;
        let keys = if write_only { vkeys().write_only() } else { vkeys() };
        let (secret, id) = (KeySecret::from_bytes(secret), KeyId(id));
        let text = secret.to_text();
        prop_assert_eq!(KeySecret::parse(text.as_bytes()), Some(secret.clone()));
        let (bytes, sign) = object::create_keyfile_signing(&keys, &id, NewCredential::Secret(&secret), &host, &user).unwrap();
        let kf = keyfile::decode(&bytes).unwrap();
        prop_assert_eq!(kf.credential(), keyfile::Credential::Secret);
        prop_assert_eq!(&postcard::to_allocvec(&kf).unwrap()[..], &bytes[8..]);
        // The independent reader: variant 1, then the fields of §4.1 in order.
        let mut r = spec::Rd::new(&bytes[8..]);
        prop_assert_eq!(r.variant(), 1);
        prop_assert_eq!(r.variant(), u32::from(write_only));
        prop_assert_eq!(r.a32(), keys.repo_id.0);
        prop_assert_eq!(r.time(), kf.created());
        prop_assert_eq!(r.string(), host);
        prop_assert_eq!(r.string(), user);
        let salt = r.a32();
        let sealed = r.bytes();
        r.end();
        let mut ikm = secret.as_bytes().to_vec();
        ikm.extend_from_slice(&salt);
        let kek = blake3::derive_key(spec::KEY_FILE_SECRET, &ikm);
        let plain = spec::open(&kek, &spec::aad(&keys.repo_id.0, 6, &id.0), &sealed).expect("opens by hand");
        prop_assert_eq!(spec::master_keys(&plain), keys.clone());
        prop_assert_eq!(sign.0, blake3::derive_key(spec::KEY_SIGN, &kek));
        // The library opens it with the text form and the same signing secret; another secret and the bare
        // digits do not.
        let (opened, sign2) = object::open_keyfile_signing(&kf, &id, text.as_bytes()).unwrap().expect("opens");
        prop_assert_eq!(opened, keys);
        prop_assert_eq!(sign2.0, sign.0);
        if other != *secret.as_bytes() {
            let other = KeySecret::from_bytes(other).to_text();
            prop_assert!(object::open_keyfile(&kf, &id, other.as_bytes()).unwrap().is_none());
        }
        prop_assert!(object::open_keyfile(&kf, &id, &text.as_bytes()[16..]).unwrap().is_none());
    }

    /// Random bytes, bare or behind the right magic, never decode as an authenticated object and never
    /// panic a decoder.
    #[test]
    fn random_bytes_are_rejected(bytes in prop::collection::vec(any::<u8>(), 0..600), plain_len in 0usize..1000) {
        let keys = vkeys();
        let session = vsession();
        let with = |magic: &[u8]| [magic, &bytes[..]].concat();
        prop_assert!(object::decode_snapshot(&keys, &SnapshotId([1; 32]), &bytes).is_err());
        prop_assert!(object::decode_snapshot(&keys, &SnapshotId([1; 32]), &with(b"CAIRNSNP\x01")).is_err());
        prop_assert!(object::decode_index(&keys, &IndexId([1; 32]), &bytes).is_err());
        prop_assert!(object::decode_index(&keys, &IndexId([1; 32]), &with(b"CAIRNIDX\x01")).is_err());
        prop_assert!(packer::parse_pack(&keys, &bytes).is_err());
        let mut p = bytes.clone();
        p.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        p.extend_from_slice(b"CAIRNPK1");
        prop_assert!(packer::parse_pack(&keys, &p).is_err());
        prop_assert!(packer::open_header(&keys.repo_id, &keys.index_seal_key(), &bytes).is_err());
        prop_assert!(object::decode_config(&keys, 1, &bytes).is_err());
        prop_assert!(object::decode_config(&keys, 1, &with(b"CAIRNCFG")).is_err());
        prop_assert!(object::decode_lease(&keys, "leases/x", &with(b"CAIRNLSE")).is_err());
        prop_assert!(object::decode_prune_mark(&keys, "prune/mark-x", &with(b"CAIRNPRN")).is_err());
        prop_assert!(object::decode_config(&keys, 1, &with(b"CAIRNCF2")).is_err());
        prop_assert!(object::decode_prune_mark(&keys, "prune/mark-x", &with(b"CAIRNPR2")).is_err());
        prop_assert!(object::decode_lock(&keys, "prune/lock-x", &with(b"CAIRNPL2")).is_err());
        prop_assert!(object::decode_wait(&keys, "prune/wait-x", &with(b"CAIRNPW2")).is_err());
        for kind in [BlobKind::Data, BlobKind::Tree] {
            prop_assert!(blob::open_blob(session.key(), &keys.repo_id, kind, &BlobId([1; 32]), &bytes, plain_len).is_err());
        }
        // Unauthenticated decoders may accept some inputs, but must not panic.
        let _ = TreeBlob::decode(&bytes);
        let _ = blob::decode_inner(bytes.clone(), plain_len);
        let _ = blob::decode_inner(with(&[1, 1, 0, 0, 0, 0]), plain_len);
        let _ = config::decode_unverified(&with(b"CAIRNCFG"));
        let _ = keyfile::decode(&with(b"CAIRNKEY"));
        let _ = postcard::from_bytes::<MasterKeys>(&bytes);
    }

    /// One flipped bit anywhere in a stored object is detected.
    #[test]
    fn bit_flips_are_rejected(bit in any::<usize>()) {
        let keys = vkeys();
        let session = vsession();
        let snap_id = SnapshotId(hx32("/snapshot/id"));
        prop_assert!(object::decode_snapshot(&keys, &snap_id, &flipped(&hx("/snapshot/bytes"), bit)).is_err());
        let index_id = IndexId(hx32("/index/id"));
        prop_assert!(object::decode_index(&keys, &index_id, &flipped(&hx("/index/bytes"), bit)).is_err());
        prop_assert!(object::decode_config(&keys, 1, &flipped(&hx("/configs/0/bytes"), bit)).is_err());
        prop_assert!(object::decode_config(&keys, 1, &flipped(&hx("/signed_config/bytes"), bit)).is_err());
        prop_assert!(object::decode_prune_mark(&keys, text("/signed_prune_mark/path"), &flipped(&hx("/signed_prune_mark/bytes"), bit)).is_err());
        prop_assert!(object::decode_lease(&keys, text("/lease/path"), &flipped(&hx("/lease/bytes"), bit)).is_err());
        prop_assert!(object::decode_prune_mark(&keys, text("/prune_mark/path"), &flipped(&hx("/prune_mark/bytes"), bit)).is_err());
        for i in 0..3 {
            let b = &vectors()["blobs"][i];
            let kind = if b["kind"] == "tree" { BlobKind::Tree } else { BlobKind::Data };
            let id = BlobId(hx32(&format!("/blobs/{i}/id")));
            let sealed = flipped(&hx(&format!("/blobs/{i}/sealed")), bit);
            let len = num(&format!("/blobs/{i}/plain_length")) as usize;
            prop_assert!(blob::open_blob(session.key(), &keys.repo_id, kind, &id, &sealed, len).is_err());
        }
        // A pack: its name no longer matches, and the damaged part (header, trailer or a blob) fails.
        let bytes = hx("/packs/0/bytes");
        let bad = flipped(&bytes, bit);
        prop_assert_ne!(*blake3::hash(&bad).as_bytes(), hx32("/packs/0/id"));
        match packer::parse_pack(&keys, &bad) {
            Err(_) => {}
            Ok((_, blobs)) => {
                let hit = blobs.iter().find(|b| {
                    let byte = (bit % (bytes.len() * 8)) / 8;
                    (b.offset as usize..(b.offset + b.length as u64) as usize).contains(&byte)
                });
                let b = hit.expect("a flip outside the blobs must break the header or trailer");
                let sealed = &bad[b.offset as usize..(b.offset + b.length as u64) as usize];
                prop_assert!(blob::open_blob(session.key(), &keys.repo_id, b.kind, &b.id, sealed, b.plain_length as usize).is_err());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The write-only key (format-spec §4.2, §12)
// ---------------------------------------------------------------------------------------------------------

/// Deterministic pseudo-random bytes (the BLAKE3 XOF of `seed`).
fn xof(seed: &str, len: usize) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(seed.as_bytes());
    let mut v = vec![0u8; len];
    h.finalize_xof().fill(&mut v);
    v
}

/// Every (kind, id) → pack of every index file in the repository.
fn indexed_blobs(repo: &Repository) -> Vec<(BlobKind, BlobId, PackId, [u8; 32])> {
    let mut out = Vec::new();
    for o in repo.backend().list(ObjectType::Index.dir()).unwrap() {
        let id = IndexId::from_path(&o.path).unwrap();
        for p in repo.read_index(&id).unwrap().packs() {
            for b in &p.blobs {
                out.push((b.kind, b.id, p.id, p.sessions[b.session as usize]));
            }
        }
    }
    out
}

#[test]
fn write_only_key_adds_deduplicated_backups_but_cannot_read_other_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("big.bin"), xof("big", 3 * 1024 * 1024 + 17)).unwrap();
    std::fs::write(src.join("sub/other.bin"), xof("other", 1024 * 1024)).unwrap();
    std::fs::write(src.join("small.txt"), b"hello, write-only world\n").unwrap();

    let backend = open_url("memory://format-write-only").unwrap();
    let opts =
        |name: &str| OpenOptions { cache_root: Some(tmp.path().join(name)), no_cache: false, upgrade_config: false };
    let kdf = KdfParams::MINIMUM;

    // 1. A full key makes the repository and a first backup, and adds a write-only key file.
    let full = Repository::init(backend.clone(), b"full password", &InitOptions::default(), &opts("cache-full"))
        .and_then(|r| r.readable())
        .unwrap();
    let r1 =
        backup(&full, vec![BackupSource::Paths(vec![src.clone()])], &BackupOptions::default(), &NoProgress).unwrap();
    let snap1 = r1.snapshot_id.unwrap();
    assert!(r1.summary.bytes_added >= 4 * 1024 * 1024, "{:?}", r1.summary);
    full.add_key(b"write-only password", true, kdf).unwrap();
    let full_keys = full.keys().clone();
    let before = indexed_blobs(&full);
    drop(full);

    // 2. The write-only key opens the repository with exactly the write-only material.
    let wo = Repository::open(backend.clone(), b"write-only password", &opts("cache-wo")).unwrap();
    assert!(!wo.keys().can_read());
    assert_eq!(wo.keys(), &full_keys.write_only());

    // 3. It backs up the same tree plus one new file: the existing data dedups.
    std::fs::write(src.join("new.txt"), b"only in the second backup\n").unwrap();
    let r2 = backup(&wo, vec![BackupSource::Paths(vec![src.clone()])], &BackupOptions::default(), &NoProgress).unwrap();
    let snap2 = r2.snapshot_id.unwrap();
    assert_eq!(r2.parent, None, "a write-only key cannot read earlier snapshots to pick a parent");
    assert_eq!(r2.summary.bytes_processed, r1.summary.bytes_processed + 26);
    assert!(
        r2.summary.bytes_added < 64 * 1024,
        "the second backup should add only the new file and trees, not {} bytes ({:?})",
        r2.summary.bytes_added,
        r2.summary
    );
    let after = indexed_blobs(&wo);
    let data_ids: Vec<BlobId> = after.iter().filter(|b| b.0 == BlobKind::Data).map(|b| b.1).collect();
    let distinct: HashSet<BlobId> = data_ids.iter().copied().collect();
    assert_eq!(data_ids.len(), distinct.len(), "no data blob was stored twice");
    let new_data = after.iter().filter(|b| b.0 == BlobKind::Data && !before.contains(b)).count();
    assert_eq!(new_data, 0, "new.txt (26 bytes) is inline in its tree node (format-spec §7.3): no new data blob");

    // 4. It cannot unseal anything the first session wrote.
    let (_, old_id, old_pack, old_session) = *before.iter().find(|b| b.0 == BlobKind::Data).unwrap();
    // Reading takes a ReadRepository, which a write-only key does not get: `wo.read_blob` and
    // `wo.load_snapshot` do not compile. Below that, the keys themselves cannot open anything.
    let e = wo.readable().err().expect("a write-only key got a readable handle");
    assert_eq!(e.kind(), cairn::error::ErrorKind::Key, "{e}");
    assert!(e.to_string().contains("write-only"), "{e}");
    assert!(Session::for_reading(wo.keys(), &old_session).is_err());
    let loc = wo.locate(BlobKind::Data, &old_id).unwrap().into_iter().find(|l| l.pack == old_pack).unwrap();
    let sealed = backend.read_range(&pack_path(BlobKind::Data, &old_pack), loc.offset, loc.length as u64).unwrap();
    let own = Session::new_writer(wo.keys());
    assert!(
        blob::open_blob(own.key(), &wo.keys().repo_id, BlobKind::Data, &old_id, &sealed, loc.plain_length as usize)
            .is_err(),
        "a session key of the write-only key must not open another session's blob"
    );
    for (snap, what) in [(snap1, "a snapshot"), (snap2, "its own snapshot after the session")] {
        let bytes = backend.read(&snap.path()).unwrap();
        assert!(object::decode_snapshot(wo.keys(), &snap, &bytes).is_err(), "a write-only key read {what}");
    }
    assert!(wo.add_key(b"escalate", false, kdf).is_err(), "a write-only key made a full key");
    drop(wo);

    // 5. The full key reads both snapshots, and the write-only session's data restores byte for byte.
    let full =
        Repository::open(backend.clone(), b"full password", &opts("cache-full2")).and_then(|r| r.readable()).unwrap();
    full.sync_index().unwrap();
    let snaps: Vec<SnapshotId> = full.list_snapshots().unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(snaps.len(), 2);
    assert!(snaps.contains(&snap1) && snaps.contains(&snap2));
    let root2 = full.load_snapshot(&snap2).unwrap().root();
    for (name, want) in
        [("big.bin", xof("big", 3 * 1024 * 1024 + 17)), ("new.txt", b"only in the second backup\n".to_vec())]
    {
        let mut out = Vec::new();
        cairn::restore::dump(&full, &root2, &cairn::backup::absolute(&src.join(name)).unwrap(), &mut out).unwrap();
        assert_eq!(out, want, "{name} restores from the write-only snapshot");
    }
}

// ---------------------------------------------------------------------------------------------------------
// The config chain (format-spec §9.2)
// ---------------------------------------------------------------------------------------------------------

#[test]
fn config_chain_selects_the_highest_chained_config() {
    let tmp = tempfile::tempdir().unwrap();
    let backend = open_url("memory://format-config-chain").unwrap();
    let opts = OpenOptions { cache_root: Some(tmp.path().join("cache")), no_cache: false, upgrade_config: false };
    let repo =
        Repository::init(backend.clone(), b"pw", &InitOptions::default(), &opts).and_then(|r| r.readable()).unwrap();
    let keys = repo.keys().clone();
    let key_id = repo.key_id();
    assert_eq!(repo.config_number(), 1);
    let c1 = repo.config().clone();
    drop(repo);
    let stored1 = backend.read(&Object::Config(1).path()).unwrap();
    let reopen = |name: &str| {
        let o = OpenOptions { cache_root: Some(tmp.path().join(name)), no_cache: false, upgrade_config: false };
        Repository::open_with_keys(backend.clone(), keys.clone(), key_id, &o).and_then(|r| r.readable()).unwrap()
    };

    // A signed `config/0000000000` that claims a predecessor never chains (and must not underflow).
    let mut c0 = c1.v1().clone();
    c0.previous = Some(*blake3::hash(&stored1).as_bytes());
    backend.write_new(&Object::Config(0).path(), &object::encode_config(&keys, 0, &Config::V1(c0)).unwrap()).unwrap();
    assert_eq!(reopen("c0").config_number(), 1);
    backend.delete(&Object::Config(1).path()).unwrap();
    let o = OpenOptions { cache_root: Some(tmp.path().join("c0-alone")), no_cache: false, upgrade_config: false };
    assert!(
        Repository::open_with_keys(backend.clone(), keys.clone(), key_id, &o).and_then(|r| r.readable()).is_err(),
        "nothing chains"
    );
    backend.write_new(&Object::Config(1).path(), &stored1).unwrap();

    // A valid config/2 that names the wrong predecessor is ignored.
    let mut bad = c1.v1().clone();
    bad.previous = Some([0; 32]);
    bad.pack_size = 1 << 20;
    backend.write_new(&Object::Config(2).path(), &object::encode_config(&keys, 2, &Config::V1(bad)).unwrap()).unwrap();
    assert_eq!(reopen("bad").config_number(), 1);
    backend.delete(&Object::Config(2).path()).unwrap();

    // A config/2 that chains to config/1 rules.
    let mut good = c1.v1().clone();
    good.previous = Some(*blake3::hash(&stored1).as_bytes());
    good.min_writer_version = config::WRITER_VERSION + 1;
    backend.write_new(&Object::Config(2).path(), &object::encode_config(&keys, 2, &Config::V1(good)).unwrap()).unwrap();
    let r = reopen("good");
    assert_eq!(r.config_number(), 2);
    assert!(r.check_writer_version().is_err(), "a higher min_writer_version stops older writers");

    // A config/3 signed with another repository key does not verify and is ignored.
    let mut other = keys.clone();
    other.repo_secret = Some(Secret([1; 32]));
    let mut c3 = c1.v1().clone();
    c3.previous = Some(*blake3::hash(&backend.read(&Object::Config(2).path()).unwrap()).as_bytes());
    backend.write_new(&Object::Config(3).path(), &object::encode_config(&other, 3, &Config::V1(c3)).unwrap()).unwrap();
    assert_eq!(reopen("forged").config_number(), 2);
}
