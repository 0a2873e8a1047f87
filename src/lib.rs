//! cairn: a content-addressed, deduplicating, encrypted backup repository.
//!
//! The source folders are the layers, bottom up; a module uses only its own layer and the layers
//! below it (`scripts/check-layers.sh` checks this):
//! 1. [`format`]: the stored format as data, no I/O and no crypto: [`error`], [`id`], [`time`],
//!    [`units`], the object layout [`layout`] (every object path is made and parsed there),
//!    [`tree`], the tree reader [`treeread`] and walker [`treewalk`] over any source of tree blobs,
//!    [`snapshot`], [`config`], [`keyfile`], [`lease`], [`index`], [`pack`], [`filter`].
//! 2. [`codec`]: bytes in, bytes out: [`crypto`], [`compress`], [`chunker`], [`blob`], and the
//!    sealed or MACed encoding of every stored object: one envelope ([`codec::envelope`]) that
//!    [`codec::object`] (configs, snapshots, index files, key files, leases) and
//!    [`codec::packer`] (packs and their headers) go through.
//! 3. [`backend`]: storage services.
//! 4. [`repository`]: an open repository (open, index sync, reads, snapshots, keys), reading,
//!    walking and writing [`trees`], the write side [`writer`], the local [`cache`], and the
//!    [`probe`] of a location before opening.
//! 5. [`ops`]: [`backup`], [`restore`], [`browse`], [`copy`], [`forget`], [`prune`], [`check`],
//!    [`repair`], key management [`keys`], snapshot selection [`select`], the size scan for
//!    progress [`scan`]; the pure retention policy [`retention`]; the file-metadata calls [`fsmeta`].
//! 6. the `cairn` binary (`src/main.rs`, `src/cli/`), which is not part of the library.
//!
//! Every concept module is re-exported at the crate root (`cairn::id`, `cairn::backup`, ...).
//!
//! Without the default `cache` feature only the format, codec and backend layers build, with the
//! retention policy and `fsmeta` (no RocksDB): that is what the fuzz targets link.
//!
//! The normative description of every stored byte is `format-spec/` in the source tree.
#![warn(missing_docs)]

pub mod backend;
pub mod codec;
pub mod format;
pub mod ops;
#[cfg(feature = "cache")]
pub mod repository;

pub use codec::{blob, chunker, compress, crypto};
pub use format::{
    cert, config, error, filter, id, index, keyfile, layout, lease, ledger, pack, snapshot, time, tree, treeread,
    treewalk, units,
};
#[cfg(feature = "cache")]
pub use ops::status;
#[cfg(feature = "cache")]
pub use ops::{
    backup, browse, check, copy, diff, find, forget, keys, mount, prune, repair, report, restore, rewrite, scan,
    select, stats, tag,
};
pub use ops::{fsmeta, retention};
#[cfg(feature = "cache")]
pub use repository::{cache, filescache, probe, trees, writer};

pub use error::{Error, Result};
