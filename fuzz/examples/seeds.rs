//! Writes the seed corpora under `fuzz/seeds/<target>/`: small valid encodings of every decoded
//! type, in the input layout of each target, so the fuzzer starts past the first bytes.
//!
//! Regenerate after a format change: `cd fuzz && cargo run --example seeds` (run from `fuzz/`).

#[path = "../fuzz_targets/common.rs"]
mod common;

use cairn::codec::object;
use cairn::blob;
use cairn::chunker::ChunkerParams;
use cairn::compress::Compression;
use cairn::config::{self, Config, ConfigV1};
use cairn::crypto::{self, KdfParams, Secret};
use cairn::cert::KeyCert;
use cairn::id::{BlobId, BlobKind, IndexId, KeyId, PackId, SnapshotId};
use cairn::index::{IndexFile, IndexPack};
use cairn::keyfile::{KeyFile, KeyFileSecretV1, KeyFileV1, KeyKind, KeySecret};
use cairn::lease::{Lease, PruneMark};
use cairn::codec::packer::PackBuilder;
use cairn::pack::PackHeader;
use cairn::snapshot::{Snapshot, SnapshotV1, Source, SourceRecord, Summary};
use cairn::tree::{Content, Node, NodeKind, Time, TreeBlob};
use std::path::Path;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("seeds").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// postcard bytes of a value.
macro_rules! pc {
    ($v:expr) => {
        postcard::to_allocvec($v).unwrap()
    };
}

fn t(secs: i64) -> Time {
    Time { secs, nanos: 123 }
}

fn node(name: &[u8], kind: NodeKind) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        user: "u".into(),
        group: "g".into(),
        mtime: t(1_700_000_000),
        atime: t(1_700_000_001),
        ctime: t(1_700_000_002),
        size: 3,
        hardlink: 0,
        xattrs: vec![(b"user.a".to_vec(), b"1".to_vec())],
    }
}

fn main() {
    let keys = common::keys();
    let sess = [0x42u8; 32];

    // A small pack of three blobs, and its header and index record.
    let mut b = PackBuilder::new(BlobKind::Data, 0);
    for (i, plain) in [&b"abc"[..], &[7u8; 300][..], b""].iter().enumerate() {
        let id = keys.content_id(plain);
        let s = blob::seal_blob(&Secret([0x99; 32]), &keys.repo_id, BlobKind::Data, &id, plain, Compression::default());
        b.add(&[i as u8 % 2; 32], BlobKind::Data, id, &s, plain.len() as u32);
    }
    let p = b.finish(&keys);
    let header = cairn::codec::packer::parse_pack(&keys, &p.bytes).unwrap().0;
    write("pack_header", "header", &pc!(&header));
    // A pack with a bundle (format-spec §5.5): a version 2 header.
    let mut b = PackBuilder::new(BlobKind::Data, 0);
    let members: Vec<&[u8]> = vec![b"first member ", b"second member ", b"third"];
    let list = members
        .iter()
        .map(|m| cairn::pack::BundleMember { id: keys.content_id(m), plain_length: m.len() as u32 })
        .collect();
    let s = blob::seal_bundle(&Secret([0x99; 32]), &keys.repo_id, &members.concat(), Compression::default());
    b.add_bundle(&sess, list, &s);
    let pb = b.finish(&keys);
    write("pack_header", "header_v2", &pc!(&cairn::codec::packer::parse_pack(&keys, &pb.bytes).unwrap().0));
    write("pack_header", "pack_v2", &pb.bytes);
    write("index", "index_v2", &pc!(&cairn::index::IndexFile::new(vec![], vec![pb.index.clone()])));
    write("pack_header", "empty", &pc!(&PackHeader::V1 { sessions: vec![], entries: vec![] }));
    write("pack_header", "pack", &p.bytes);

    // Blob framings: `plain length ‖ framed plaintext`.
    let key = Secret([0x99; 32]);
    let id = BlobId([0x88; 32]);
    let text: Vec<u8> = b"the quick brown fox ".iter().cycle().take(600).copied().collect();
    for (name, plain, c) in [("raw", &b"abc"[..], Compression::Off), ("zstd", &text[..], Compression::Zstd(3))] {
        let s = blob::seal_blob(&key, &keys.repo_id, BlobKind::Data, &id, plain, c);
        let aad = crypto::aad(&keys.repo_id, blob::object_kind(BlobKind::Data), &id.0);
        let inner = crypto::open(&key, &aad, &s).unwrap();
        let mut seed = (plain.len() as u32).to_le_bytes().to_vec();
        seed.extend_from_slice(&inner);
        write("blob", name, &seed);
    }
    let mut padded = 2u32.to_le_bytes().to_vec();
    padded.extend_from_slice(&[1, 0, 3, 0, 0, 0, b'h', b'i', 0, 0, 0]);
    write("blob", "padded", &padded);

    // Index.
    let mut ip: IndexPack = p.index.clone();
    ip.id = PackId([0xab; 32]);
    let idx = IndexFile::V1 { supersedes: vec![IndexId([1; 32])], packs: vec![p.index.clone(), ip] };
    assert!(idx.validate().is_ok());
    write("index", "index", &pc!(&idx));

    // Trees.
    let dir = TreeBlob::DirV1 {
        nodes: vec![
            node(b"a", NodeKind::File { content: Content::Chunks(vec![BlobId([2; 32])]) }),
            node(b"b", NodeKind::Dir { tree: BlobId([3; 32]) }),
            node(b"c", NodeKind::Symlink { target: b"a".to_vec() }),
            node(b"d", NodeKind::File { content: Content::Indirect { lists: vec![BlobId([4; 32])], count: 2000 } }),
            node(b"e", NodeKind::CharDevice { rdev: 0x0501 }),
            node(b"f", NodeKind::Fifo),
            node(b"g\xff", NodeKind::Socket),
            node(b"h", NodeKind::BlockDevice { rdev: 8 }),
        ],
        next: Some(BlobId([5; 32])),
    };
    write("tree", "dir", &pc!(&dir));
    let inline = |name: &[u8], b: &[u8]| Node {
        size: b.len() as u64,
        ..node(name, NodeKind::File { content: Content::Inline(b.to_vec()) })
    };
    let dir2 = TreeBlob::DirV1 { nodes: vec![inline(b"a", b"tiny file\n"), inline(b"b", &[0; 64])], next: None };
    write("tree", "inline", &pc!(&dir2));
    write("tree", "chunklist", &pc!(&TreeBlob::ChunkListV1 { ids: vec![BlobId([6; 32]), BlobId([7; 32])] }));

    // Snapshots.
    for (name, source) in [
        ("files", Source::Files),
        ("stdin", Source::Stdin { name: "in".into() }),
        ("command", Source::Command { command: "pg_dump".into(), name: "db.sql".into(), exit_status: 0 }),
    ] {
        let s = Snapshot::V1(SnapshotV1 {
            time: t(1_700_000_000),
            host: "h".into(),
            user: "u".into(),
            uid: 1000,
            gid: 1000,
            paths: vec![b"/home".to_vec()],
            tags: vec!["daily".into()],
            root: BlobId([8; 32]),
            parent: Some(SnapshotId([9; 32])),
            source,
            summary: Summary { files_new: 1, started: t(1), finished: t(2), ..Summary::default() },
            program: "cairn 0.1.0".into(),
        });
        write("snapshot", name, &pc!(&s));
    }
    // Version 3: paths, a command and standard input at nested paths, one replaced snapshot, an origin.
    let mut v3 = Snapshot::V1(SnapshotV1 {
        time: t(1_700_000_000),
        host: "h".into(),
        user: "u".into(),
        uid: 1000,
        gid: 1000,
        paths: vec![b"/etc/app".to_vec(), b"/redis/dump.rdb".to_vec()],
        tags: vec!["daily".into()],
        root: BlobId([8; 32]),
        parent: None,
        source: Source::Files,
        summary: Summary { files_new: 1, started: t(1), finished: t(2), ..Summary::default() },
        program: "cairn 0.1.0".into(),
    })
    .with_writer(None);
    v3.v3_mut().sources = vec![
        SourceRecord::Paths { path: b"/etc/app".to_vec() },
        SourceRecord::Command { path: "redis/dump.rdb".into(), exit_status: 0, bytes: 42 },
        SourceRecord::Stdin { path: "in/x".into(), bytes: 7 },
    ];
    v3.v3_mut().replaces = vec![SnapshotId([9; 32])];
    v3.v3_mut().origin = Some(KeyId([7; 32]));
    write("snapshot", "v3", &pc!(&v3));

    // Config: the postcard body (the target adds the magic and MAC), and a whole stored object.
    let cfg = Config::V1(ConfigV1 {
        format_version: config::FORMAT_VERSION,
        min_writer_version: config::WRITER_VERSION,
        repo_id: keys.repo_id,
        chunker: ChunkerParams::default(),
        pack_size: config::DEFAULT_PACK_SIZE,
        compression_level: 3,
        repo_public: keys.repo_public,
        previous: Some([1; 32]),
        created: t(1_700_000_000),
    });
    write("config", "body", &pc!(&cfg));
    write("config", "stored", &object::legacy::encode_config_mac(&keys, 1, &cfg));

    // Key files: the postcard body of a key file, and key material.
    let kf = KeyFile::V1(KeyFileV1 {
        kind: KeyKind::Full,
        repo_id: keys.repo_id,
        created: t(1_700_000_000),
        host: "h".into(),
        user: "u".into(),
        kdf: KdfParams::MINIMUM,
        salt: [1; 32],
        sealed: vec![0; 40],
    });
    write("keyfile", "file", &pc!(&kf));
    let secret_kf = KeyFile::SecretV1(KeyFileSecretV1 {
        kind: KeyKind::WriteOnly,
        repo_id: keys.repo_id,
        created: t(1_700_000_000),
        host: "h".into(),
        user: "u".into(),
        salt: [2; 32],
        sealed: vec![0; 40],
    });
    write("keyfile", "secret_file", &pc!(&secret_kf));
    write("keyfile", "secret_text", format!("{}\n", *KeySecret::from_bytes([0x5a; 32]).to_text()).as_bytes());
    write("keyfile", "full", &pc!(&keys));
    write("keyfile", "write_only", &pc!(&keys.write_only()));

    // Key certificates (postcard bodies; the fuzz target signs them for `certs/<12…12>`).
    for (name, hosts) in [("any_host", vec![]), ("bound", vec!["web-1".to_string(), "web-2".to_string()])] {
        let cert = KeyCert::V1 {
            key_id: KeyId([0x12; 32]),
            kind: KeyKind::WriteOnly,
            hosts,
            key_public: [9; 32],
            created: t(1_700_000_000),
        };
        write("cert", name, &pc!(&cert));
    }

    // Ledger entry bodies (postcard; the fuzz target seals them as an entry's body).
    {
        use cairn::ledger::{EntryBody, Event, Removed, Replaced};
        let events = [
            ("init", Event::Init { existing: vec![SnapshotId([3; 32])] }),
            ("backup", Event::Backup { snapshot: SnapshotId([3; 32]), sources: vec!["/srv".into()], files: 2, bytes: 9, bytes_added: 4 }),
            ("forget", Event::Forget { removed: vec![Removed { snapshot: SnapshotId([3; 32]), rule: "explicit".into() }] }),
            ("prune", Event::Prune { packs_deleted: vec![PackId([1; 32])], bytes_returned: 100 }),
            ("copy", Event::Copy { from: keys.repo_id, copied: vec![Replaced { old: SnapshotId([3; 32]), new: SnapshotId([4; 32]) }] }),
            (
                "check-data",
                Event::CheckData {
                    errors: 1,
                    warnings: 2,
                    report_hash: cairn::id::Digest([5; 32]),
                    data_packs: 30,
                    data_packs_read: 1,
                    share: cairn::ledger::ReadShare::Rotation { days: 30, day: 20_000 },
                },
            ),
        ];
        for (name, event) in events {
            write("ledger", name, &pc!(&EntryBody::V1 { host: "h".into(), user: "u".into(), event }));
        }
    }

    // Leases and prune marks (postcard bodies).
    let lease = Lease::V1 {
        session: sess,
        seq: 3,
        host: "h".into(),
        pid: 42,
        duration_secs: 3600,
        operation: "backup".into(),
        client_time: t(1_700_000_000),
    };
    write("lease", "lease", &pc!(&lease));
    let mark = PruneMark::V1 {
        created: t(1_700_000_000),
        condemned: vec![(BlobKind::Data, PackId([1; 32])), (BlobKind::Tree, PackId([2; 32]))],
        snapshots: vec![SnapshotId([3; 32])],
    };
    write("lease", "prune_mark", &pc!(&mark));

    // Chunker: default parameters as the raw prefix, then text and a run of zeros.
    let d = ChunkerParams::default();
    let mut seed = Vec::new();
    for v in [d.algorithm, d.min_size, d.avg_size, d.max_size] {
        seed.extend_from_slice(&v.to_le_bytes());
    }
    seed.push(d.normalization);
    seed.extend_from_slice(&text);
    write("chunker", "text", &seed);
    let mut zeros = vec![1u8, 0, 0, 0, 0, 0, 0];
    zeros.extend_from_slice(&[0u8; 1500]);
    write("chunker", "zeros", &zeros);
    println!("seeds written under seeds/");
}
