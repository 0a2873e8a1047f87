//! Tree blobs (format-spec §7): `TreeBlob::decode` on the input as a tree blob's plaintext, what
//! listings compute from a decoded tree (inline content within its limit and equal to the size,
//! §7.3; a walk's accounting of it, §7.5), the canonical round trip, and the input sealed as a
//! tree blob with a fixed key and opened the way a reader does (`open_blob`, then `decode`).
#![no_main]

mod common;

use cairn::blob;
use cairn::compress::Compression;
use cairn::crypto::Secret;
use cairn::id::{BlobId, BlobKind};
use cairn::tree::{Content, NodeKind, TreeBlob, MAX_INLINE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoded = TreeBlob::decode(data);
    if let Ok(t) = &decoded {
        if let TreeBlob::DirV1 { nodes, .. } = t {
            for n in nodes {
                let _ = n.type_name();
                let _ = (n.mtime.to_rfc3339(), n.atime.to_rfc3339(), n.ctime.to_rfc3339());
                let _ = (n.mtime.as_nanos(), String::from_utf8_lossy(&n.name));
                if let NodeKind::Symlink { target } = &n.kind {
                    let _ = String::from_utf8_lossy(target);
                }
                if let NodeKind::File { content: Content::Inline(b) } = &n.kind {
                    assert!(b.len() <= MAX_INLINE && b.len() as u64 == n.size, "inline content past §7.3 decoded");
                    assert!(cairn::tree::entry_bytes(1, n) >= b.len() as u64, "inline bytes not counted (§7.5)");
                }
            }
        }
        let bytes = t.encode();
        assert_eq!(TreeBlob::decode(&bytes).as_ref(), Ok(t), "tree round trip");
    }

    // As a reader gets it: a sealed tree blob.
    let keys = common::keys();
    let key = Secret([0x99; 32]);
    let id = keys.content_id(data);
    let sealed = blob::seal_blob(&key, &keys.repo_id, BlobKind::Tree, &id, data, Compression::default());
    let opened = blob::open_blob(&key, &keys.repo_id, BlobKind::Tree, &id, &sealed, data.len())
        .expect("a blob just sealed opens");
    assert_eq!(opened, data);
    common::assert_same("tree", &decoded, &TreeBlob::decode(&opened));
    let _ = BlobId::from_hex(&String::from_utf8_lossy(data));
});
