//! The object layout (format-spec §1.1): the type of every stored object and the one place
//! object paths are formatted and parsed. Pure data: no I/O, no keys. No other code writes an
//! object path by hand; it names an [`Object`] (or a [`StoredId`]) and asks for its path.

use crate::id::{parse_hex32, BlobKind, IndexId, KeyId, PackId, SnapshotId};
use std::fmt;

/// The folder of the audit ledger (format-spec §13): `ledger/<entry id>`.
pub const LEDGER_DIR: &str = "ledger/";

/// The kind of a stored object: which folder it lives in and how its name is built.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
#[non_exhaustive]
pub enum ObjectType {
    /// `config/<n, 10 digits>`: one link of the config chain (format-spec §9).
    Config,
    /// `keys/<key id>`: a key file (format-spec §4).
    Key,
    /// `snapshots/<snapshot id>`: a snapshot, the commit point of a backup (format-spec §8).
    Snapshot,
    /// `index/<index id>`: an index file (format-spec §6).
    Index,
    /// `data/<hh>/<pack id>`: a pack of data blobs (format-spec §5).
    DataPack,
    /// `tree/<hh>/<pack id>`: a pack of tree blobs (format-spec §5).
    TreePack,
    /// `leases/<session>-<seq, 8 digits>`: a writer lease (format-spec §10.1).
    Lease,
    /// `prune/lock-<n, 20 digits>`: a link of the maintenance lock chain (format-spec §10.4).
    Lock,
    /// `prune/mark-<suffix>`: a prune mark (format-spec §10.2).
    Mark,
    /// `prune/wait-<suffix of its mark>`: the sessions a mark waits for (format-spec §10.5).
    Wait,
    /// `prune/clock-<64 hex>`: a probe object that reads the backend's clock (format-spec §10.6).
    Clock,
}

impl ObjectType {
    /// Every object type, in the order of the object table.
    pub const ALL: [ObjectType; 11] = [
        ObjectType::Config,
        ObjectType::Key,
        ObjectType::Snapshot,
        ObjectType::Index,
        ObjectType::DataPack,
        ObjectType::TreePack,
        ObjectType::Lease,
        ObjectType::Lock,
        ObjectType::Mark,
        ObjectType::Wait,
        ObjectType::Clock,
    ];

    /// What the type is called in messages ("snapshot", "data pack", ...).
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Config => "config",
            ObjectType::Key => "key",
            ObjectType::Snapshot => "snapshot",
            ObjectType::Index => "index",
            ObjectType::DataPack => "data pack",
            ObjectType::TreePack => "tree pack",
            ObjectType::Lease => "lease",
            ObjectType::Lock => "maintenance lock",
            ObjectType::Mark => "prune mark",
            ObjectType::Wait => "prune wait",
            ObjectType::Clock => "clock probe",
        }
    }

    /// The folder the type's objects live in, with its trailing `/`: what a listing of them
    /// lists. The prune state types share `prune/`.
    pub fn dir(self) -> &'static str {
        match self {
            ObjectType::Config => "config/",
            ObjectType::Key => "keys/",
            ObjectType::Snapshot => "snapshots/",
            ObjectType::Index => "index/",
            ObjectType::DataPack => "data/",
            ObjectType::TreePack => "tree/",
            ObjectType::Lease => "leases/",
            ObjectType::Lock | ObjectType::Mark | ObjectType::Wait | ObjectType::Clock => "prune/",
        }
    }

    /// The start every path of this type has (`snapshots/`, `prune/mark-`, ...).
    pub fn prefix(self) -> &'static str {
        match self {
            ObjectType::Lock => "prune/lock-",
            ObjectType::Mark => "prune/mark-",
            ObjectType::Wait => "prune/wait-",
            ObjectType::Clock => "prune/clock-",
            t => t.dir(),
        }
    }

    /// The type whose prefix `path` starts with, without checking the rest of the name (a
    /// backend uses this to tell packs from other objects; [`Object::parse`] checks names).
    pub fn of_path(path: &str) -> Option<ObjectType> {
        ObjectType::ALL.into_iter().find(|t| path.starts_with(t.prefix()))
    }

    /// The pack type that holds blobs of `kind`.
    pub fn pack(kind: BlobKind) -> ObjectType {
        match kind {
            BlobKind::Data => ObjectType::DataPack,
            BlobKind::Tree => ObjectType::TreePack,
        }
    }

    /// The blob kind a pack type holds; `None` for other types.
    pub fn blob_kind(self) -> Option<BlobKind> {
        match self {
            ObjectType::DataPack => Some(BlobKind::Data),
            ObjectType::TreePack => Some(BlobKind::Tree),
            _ => None,
        }
    }

    /// The fan-out folders of a pack type (`data/00` … `data/ff`, without a trailing `/`); empty
    /// for other types.
    pub fn fan_out_dirs(self) -> Vec<String> {
        if self.blob_kind().is_none() {
            return Vec::new();
        }
        (0..=255u8).map(|b| format!("{}{b:02x}", self.dir())).collect()
    }

    /// Parses `path` as an object of this type; `None` when it is not one.
    pub fn parse(self, path: &str) -> Option<Object> {
        Object::parse(path).filter(|o| o.object_type() == self)
    }

    /// The largest object of this type a reader accepts, in bytes (format-spec §12.6, "Object
    /// size limits"); `None` for packs, which are read by range. A reader MUST refuse a larger
    /// object as corrupt without reading it whole; writers stay far below these limits.
    pub fn max_size(self) -> Option<u64> {
        const MIB: u64 = 1 << 20;
        match self {
            ObjectType::Config | ObjectType::Key | ObjectType::Lease | ObjectType::Lock | ObjectType::Clock => {
                Some(MIB)
            }
            ObjectType::Wait => Some(16 * MIB),
            ObjectType::Snapshot => Some(64 * MIB),
            ObjectType::Index | ObjectType::Mark => Some(256 * MIB),
            ObjectType::DataPack | ObjectType::TreePack => None,
        }
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One stored object: its type and what names it within the type.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Object {
    /// Config number `n` of the chain, from 1.
    Config(u64),
    /// A key file.
    Key(KeyId),
    /// A snapshot.
    Snapshot(SnapshotId),
    /// An index file.
    Index(IndexId),
    /// A pack of blobs of one kind.
    Pack(BlobKind, PackId),
    /// A lease of a writer session.
    Lease {
        /// The session public key.
        session: [u8; 32],
        /// The sequence number within the session.
        seq: u32,
    },
    /// Link `n` of the maintenance lock chain.
    Lock(u64),
    /// A prune mark, by its suffix (any name component; prune writes 64 hex digits).
    Mark(String),
    /// The wait of the mark with this suffix.
    Wait(String),
    /// A clock probe.
    Clock([u8; 32]),
}

impl Object {
    /// The object's type.
    pub fn object_type(&self) -> ObjectType {
        match self {
            Object::Config(_) => ObjectType::Config,
            Object::Key(_) => ObjectType::Key,
            Object::Snapshot(_) => ObjectType::Snapshot,
            Object::Index(_) => ObjectType::Index,
            Object::Pack(kind, _) => ObjectType::pack(*kind),
            Object::Lease { .. } => ObjectType::Lease,
            Object::Lock(_) => ObjectType::Lock,
            Object::Mark(_) => ObjectType::Mark,
            Object::Wait(_) => ObjectType::Wait,
            Object::Clock(_) => ObjectType::Clock,
        }
    }

    /// The object's path relative to the repository root (format-spec §1.1).
    pub fn path(&self) -> String {
        let p = self.object_type().prefix();
        match self {
            Object::Config(n) => format!("{p}{n:010}"),
            Object::Key(id) => format!("{p}{id}"),
            Object::Snapshot(id) => format!("{p}{id}"),
            Object::Index(id) => format!("{p}{id}"),
            Object::Pack(_, id) => {
                let h = id.to_hex();
                format!("{p}{}/{h}", &h[..2])
            }
            Object::Lease { session, seq } => format!("{p}{}-{seq:08}", hex::encode(session)),
            Object::Lock(n) => format!("{p}{n:020}"),
            Object::Mark(suffix) | Object::Wait(suffix) => format!("{p}{suffix}"),
            Object::Clock(r) => format!("{p}{}", hex::encode(r)),
        }
    }

    /// What names the object within its type, for messages: the id, number or suffix (for a
    /// pack its id, without the fan-out folder).
    pub fn name(&self) -> String {
        match self {
            Object::Pack(_, id) => id.to_hex(),
            o => o.path()[o.object_type().prefix().len()..].to_string(),
        }
    }

    /// The object a path names, or `None` when the path is not the exact name of one (wrong
    /// folder, upper-case or short hex, a pack in the wrong fan-out folder, unpadded numbers,
    /// `.`/`..`/empty components, a NUL byte). Every accepted path is the one [`Object::path`]
    /// gives back.
    pub fn parse(path: &str) -> Option<Object> {
        if !is_valid_path(path) {
            return None;
        }
        let t = ObjectType::of_path(path)?;
        let rest = &path[t.prefix().len()..];
        let o = match t {
            ObjectType::Config => Object::Config(digits(rest, 10)?),
            ObjectType::Key => Object::Key(KeyId(parse_hex32(rest)?)),
            ObjectType::Snapshot => Object::Snapshot(SnapshotId(parse_hex32(rest)?)),
            ObjectType::Index => Object::Index(IndexId(parse_hex32(rest)?)),
            ObjectType::DataPack | ObjectType::TreePack => {
                let (_, name) = rest.split_once('/')?;
                Object::Pack(t.blob_kind()?, PackId(parse_hex32(name)?))
            }
            ObjectType::Lease => {
                let (session, seq) = rest.split_once('-')?;
                Object::Lease { session: parse_hex32(session)?, seq: u32::try_from(digits(seq, 8)?).ok()? }
            }
            ObjectType::Lock => Object::Lock(digits(rest, 20)?),
            ObjectType::Mark => Object::Mark(suffix(rest)?),
            ObjectType::Wait => Object::Wait(suffix(rest)?),
            ObjectType::Clock => Object::Clock(parse_hex32(rest)?),
        };
        // The canonical form only: this rejects upper-case hex, a pack in another fan-out
        // folder and numbers written with other padding.
        (o.path() == path).then_some(o)
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// The path of a pack: `data/<hh>/<pack id>` or `tree/<hh>/<pack id>`.
pub fn pack_path(kind: BlobKind, id: &PackId) -> String {
    Object::Pack(kind, *id).path()
}

/// True for a path that may name an object (format-spec §1): non-empty `/`-separated
/// components, none `.` or `..`, no leading `/`, no NUL byte.
pub fn is_valid_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\0')
        && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// An id type that names exactly one object type: key, snapshot and index ids.
pub trait StoredId: Copy + Sized {
    /// The type of the objects these ids name.
    const TYPE: ObjectType;
    /// The object this id names.
    fn object(self) -> Object;
    /// The id of `o`, when it is of [`StoredId::TYPE`].
    fn from_object(o: Object) -> Option<Self>;
    /// The path of the object this id names.
    fn path(self) -> String {
        self.object().path()
    }
    /// The id a path names, when it is a valid name of [`StoredId::TYPE`].
    fn from_path(path: &str) -> Option<Self> {
        Object::parse(path).and_then(Self::from_object)
    }
}

macro_rules! stored_id {
    ($id:ident, $variant:ident) => {
        impl StoredId for $id {
            const TYPE: ObjectType = ObjectType::$variant;
            fn object(self) -> Object {
                Object::$variant(self)
            }
            fn from_object(o: Object) -> Option<Self> {
                match o {
                    Object::$variant(id) => Some(id),
                    _ => None,
                }
            }
        }
    };
}
stored_id!(KeyId, Key);
stored_id!(SnapshotId, Snapshot);
stored_id!(IndexId, Index);

/// Exactly `width` or more decimal digits, written with exactly the padding `{:0width$}` gives.
fn digits(s: &str, width: usize) -> Option<u64> {
    if s.len() < width || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A mark suffix: one non-empty name component (the path checks did the rest).
fn suffix(s: &str) -> Option<String> {
    (!s.is_empty() && !s.contains('/')).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn samples() -> Vec<Object> {
        vec![
            Object::Config(1),
            Object::Config(9_999_999_999),
            Object::Key(KeyId([0x11; 32])),
            Object::Snapshot(SnapshotId([0x22; 32])),
            Object::Index(IndexId([0x33; 32])),
            Object::Pack(BlobKind::Data, PackId([0xab; 32])),
            Object::Pack(BlobKind::Tree, PackId([0x0c; 32])),
            Object::Lease { session: [0x44; 32], seq: 0 },
            Object::Lease { session: [0x44; 32], seq: u32::MAX },
            Object::Lock(u64::MAX),
            Object::Lock(0),
            Object::Mark("77".repeat(32)),
            Object::Wait("x".into()),
            Object::Clock([0x55; 32]),
        ]
    }

    #[test]
    fn every_type_round_trips() {
        let objects = samples();
        for t in ObjectType::ALL {
            assert!(objects.iter().any(|o| o.object_type() == t), "no sample of {t}");
        }
        for o in objects {
            let p = o.path();
            assert_eq!(Object::parse(&p), Some(o.clone()), "{p}");
            assert_eq!(ObjectType::of_path(&p), Some(o.object_type()), "{p}");
            assert!(p.starts_with(o.object_type().prefix()) && p.starts_with(o.object_type().dir()), "{p}");
            assert_eq!(o.object_type().parse(&p), Some(o.clone()));
            assert!(is_valid_path(&p));
            assert!(p.ends_with(&o.name()), "{p}");
        }
    }

    #[test]
    fn paths_are_the_spec_names() {
        let id = PackId([0xab; 32]);
        assert_eq!(pack_path(BlobKind::Data, &id), format!("data/ab/{}", "ab".repeat(32)));
        assert_eq!(pack_path(BlobKind::Tree, &id), format!("tree/ab/{}", "ab".repeat(32)));
        assert_eq!(Object::Config(2).path(), "config/0000000002");
        assert_eq!(Object::Lock(7).path(), "prune/lock-00000000000000000007");
        assert_eq!(Object::Lease { session: [0; 32], seq: 3 }.path(), format!("leases/{}-00000003", "00".repeat(32)));
        assert_eq!(SnapshotId([1; 32]).path(), format!("snapshots/{}", "01".repeat(32)));
        assert_eq!(IndexId::from_path(&IndexId([2; 32]).path()), Some(IndexId([2; 32])));
        assert_eq!(KeyId::from_path(&IndexId([2; 32]).path()), None);
        assert_eq!(ObjectType::DataPack.fan_out_dirs().len(), 256);
        assert_eq!(ObjectType::TreePack.fan_out_dirs()[255], "tree/ff");
        assert!(ObjectType::Index.fan_out_dirs().is_empty());
    }

    #[test]
    fn hostile_and_foreign_paths_are_refused() {
        let h = "ab".repeat(32);
        for p in [
            String::new(),
            "/".into(),
            format!("/snapshots/{h}"),
            format!("snapshots/{h}/"),
            format!("snapshots//{h}"),
            format!("snapshots/../{h}"),
            format!("snapshots/./{h}"),
            format!("snapshots/{}", h.to_uppercase()),
            format!("snapshots/{}", &h[..63]),
            format!("snapshots/{h}0"),
            format!("snapshots/{h}\0"),
            format!("data/cd/{h}"),
            format!("data/{h}"),
            format!("data/ab/{h}/x"),
            "config/1".into(),
            "config/00000000001".into(),
            "config/+000000001".into(),
            format!("leases/{h}-1"),
            format!("leases/{h}-+0000001"),
            format!("leases/{h}-99999999999"),
            format!("leases/{h}"),
            "prune/lock-1".into(),
            "prune/lock-99999999999999999999".into(),
            "prune/mark-".into(),
            "prune/mark-a/b".into(),
            "prune/other".into(),
            format!("keys/.tmp-{h}"),
            "ledger/x".into(),
            format!("snapshot/{h}"),
        ] {
            assert_eq!(Object::parse(&p), None, "{p:?}");
        }
        // Any mark suffix is a mark (format-spec §10.2), even one that is not hex.
        assert_eq!(Object::parse("prune/mark-x.y"), Some(Object::Mark("x.y".into())));
    }

    proptest! {
        #[test]
        fn parse_accepts_only_canonical_paths(s in "[a-z/.0-9-]{0,90}") {
            if let Some(o) = Object::parse(&s) {
                prop_assert_eq!(o.path(), s);
            }
        }

        #[test]
        fn ids_round_trip(b in any::<[u8; 32]>(), n in any::<u64>(), seq in any::<u32>(), k in any::<bool>()) {
            let kind = if k { BlobKind::Data } else { BlobKind::Tree };
            for o in [
                Object::Key(KeyId(b)), Object::Snapshot(SnapshotId(b)), Object::Index(IndexId(b)),
                Object::Pack(kind, PackId(b)), Object::Lease { session: b, seq }, Object::Lock(n),
                Object::Clock(b), Object::Mark(hex::encode(b)), Object::Wait(hex::encode(b)),
                Object::Config(n % 10_000_000_000),
            ] {
                prop_assert_eq!(Object::parse(&o.path()), Some(o));
            }
        }
    }
}
