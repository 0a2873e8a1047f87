//! The write side of a session (format-spec §5.4, §5.5, §10.1, §11): dedups blobs, gathers small data blobs into
//! bundles, seals and verifies them, packs them into at least two open data packs in random order, uploads packs concurrently, writes index
//! files after their packs, keeps the writer lease alive, and commits snapshots last.

use crate::backend::Staged;
use crate::blob;
use crate::codec::object;
use crate::codec::packer::PackLayout;
use crate::compress::Compression;
use crate::crypto::Session;
use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind, IndexId, PackId, SnapshotId};
use crate::index::{IndexFile, IndexPack};
use crate::layout::{pack_path, ObjectType, StoredId};
use crate::pack::BundleMember;
use crate::repository::writer_lease::LeaseKeeper;
use crate::repository::{ReadRepository, Repository};
use crate::snapshot::Snapshot;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Packs per index file.
pub const PACKS_PER_INDEX: usize = 64;
/// Blob entries per index file: once the packs gathered for an index file name this many blobs,
/// the file is written, whatever the pack count (format-spec §6.2, §11 step 4), by a session,
/// a prune sweep and `repair index` alike ([`IndexPart`]). Bounds the entries a writer holds,
/// and what every reader holds to ingest one file (its decoding and the cache's write batch),
/// to a few megabytes whatever the number of small blobs.
pub const BLOBS_PER_INDEX: usize = 1 << 15;
/// Blobs per pack: a pack is finished at this many blobs even below its size (format-spec §5.4),
/// so its header entries, held until it is finished, stay bounded for the smallest blobs.
pub const BLOBS_PER_PACK: usize = 1 << 15;
/// Open data packs blobs are spread across.
const OPEN_DATA_PACKS: usize = 2;
/// Data blobs shorter than this are gathered into bundles (format-spec §5.5): the default
/// chunker's minimum chunk, so whole small files and the last chunks of larger ones.
pub const BUNDLE_MEMBER_MAX: usize = 256 << 10;
/// A bundle is sealed once its body reaches this many bytes,
pub const BUNDLE_TARGET: usize = 1 << 20;
/// or once it has this many members (or the session's blobs per pack, when fewer), so that a pack
/// finished at its blob count holds at most that many blobs.
pub const BUNDLE_MAX_MEMBERS: usize = 4096;

/// Tunables of a writing session.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Compression.
    pub compression: Compression,
    /// What is checked of each sealed blob before it joins a pack (format-spec §5.4).
    pub verify: Verification,
    /// Concurrent uploads (at least; the backend may ask for more, see `Backend::upload_concurrency`).
    pub uploaders: usize,
    /// Dry run: count, store nothing.
    pub dry_run: bool,
    /// Before relying on a blob stored by another session, read its stored copy once and
    /// verify it opens; store the blob anew when no copy does (format-spec §12: any key can
    /// write index entries). Needs a full key.
    pub verify_dedup: bool,
    /// A pack is finished at this many blobs even below its size (default [`BLOBS_PER_PACK`]).
    pub blobs_per_pack: usize,
    /// An index file is written once the stored packs waiting for one name this many blobs
    /// (default [`BLOBS_PER_INDEX`]).
    pub blobs_per_index: usize,
    /// Tests only: every compressed payload has one byte changed before it is checked and sealed,
    /// as a faulty compressor would hand it over (what verification before upload is for).
    #[doc(hidden)]
    pub test_faulty_compressor: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression: Compression::default(),
            verify: Verification::default(),
            uploaders: 2,
            dry_run: false,
            verify_dedup: false,
            blobs_per_pack: BLOBS_PER_PACK,
            blobs_per_index: BLOBS_PER_INDEX,
            test_faulty_compressor: false,
        }
    }
}

/// What a writer checks of a sealed blob or bundle before it may join a pack (format-spec §5.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verification {
    /// Every sealed segment is opened again (AEAD, framing, decompression) and every id
    /// recomputed from what it gives back.
    #[default]
    Full,
    /// Every compressed payload is decompressed and compared with the plaintext before it is
    /// sealed; tree blobs, and one data segment in [`OPEN_AGAIN_EVERY`], are opened again in full.
    Compression,
    /// Nothing is checked.
    Off,
}

impl std::str::FromStr for Verification {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "full" => Ok(Verification::Full),
            "compression" => Ok(Verification::Compression),
            "off" | "none" => Ok(Verification::Off),
            v => Err(format!("verification must be full, compression or off, not {v:?}")),
        }
    }
}

/// Under [`Verification::Compression`], one sealed data segment in this many (the session's
/// first among them) is also opened again in full.
pub const OPEN_AGAIN_EVERY: u64 = 64;

/// Counters of what a session stored.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// New blobs.
    pub blobs_added: AtomicU64,
    /// Plain bytes of new blobs.
    pub bytes_added: AtomicU64,
    /// Sealed bytes of new blobs.
    pub bytes_added_stored: AtomicU64,
    /// Packs uploaded.
    pub packs: AtomicU64,
    /// Stored copies read back before dedup relied on them (`verify_dedup`).
    pub dedup_verified: AtomicU64,
    /// Blobs stored anew because no indexed copy read back (`verify_dedup`).
    pub dedup_rejected: AtomicU64,
}

struct Shared {
    backend: crate::backend::DynBackend,
    keys: crate::crypto::MasterKeys,
    cache: Arc<crate::cache::Cache>,
    /// Stored packs waiting for their index file.
    pending: Mutex<IndexPart>,
    /// Held while an index file is written: one at a time, so the uploaders never hold two
    /// index files' encodings and cache writes at once.
    indexing: Mutex<()>,
    /// New blobs of this session that no index file ingested into the cache names yet: the
    /// others are found in the cache's blob map, so this holds at most the blobs of the open
    /// packs, of the packs being uploaded and of the pending index entries.
    seen: Mutex<HashSet<(BlobKind, BlobId)>>,
    error: Mutex<Option<Error>>,
    stats: WriterStats,
    pack_size: usize,
    blobs_per_index: usize,
}

/// A writing session on a repository.
pub struct Writer<'r> {
    repo: &'r Repository,
    shared: Arc<Shared>,
    session: Session,
    opts: WriterOptions,
    open: Mutex<OpenPacks>,
    /// The bundle being filled, when this session writes bundles.
    bundle: Option<Mutex<OpenBundle>>,
    condemned: HashSet<PackId>,
    /// With `verify_dedup`: the full key's handle, and each blob's verdict this session.
    reader: Option<ReadRepository>,
    dedup_checked: Mutex<HashMap<(BlobKind, BlobId), bool>>,
    upload_tx: Option<Sender<SealedPack>>,
    uploaders: Vec<JoinHandle<()>>,
    lease: Option<LeaseKeeper>,
    pack_size: usize,
    /// Data segments sealed so far (which of them [`Verification::Compression`] opens again).
    sealed_segments: AtomicU64,
}

struct OpenPacks {
    data: Vec<OpenPack>,
    tree: OpenPack,
}

/// A pack being filled: its blobs go to a staged object as they are added (a temporary file
/// beside the packs on local disk, an unnamed one in the cache directory for a remote service,
/// see [`crate::backend::Backend::stage`]), so a full pack is not held in memory; only its
/// header entries and running hash are.
struct OpenPack {
    layout: PackLayout,
    staged: Option<Staged>,
}

/// A bundle being filled (format-spec §5.5): its members and their plaintexts back to back.
#[derive(Default)]
struct OpenBundle {
    members: Vec<BundleMember>,
    body: Vec<u8>,
}

/// A finished pack waiting for an uploader: its id and index record, and its bytes, staged.
struct SealedPack {
    id: PackId,
    index: IndexPack,
    staged: Staged,
}

impl OpenPack {
    fn new(kind: BlobKind) -> Self {
        OpenPack { layout: PackLayout::new(kind), staged: None }
    }

    /// Appends a sealed blob, staging the pack on the first one.
    fn add(
        &mut self,
        sh: &Shared,
        session: &[u8; 32],
        kind: BlobKind,
        id: BlobId,
        sealed: &[u8],
        plain: u32,
    ) -> Result<()> {
        self.write(sh, kind, sealed)?;
        self.layout.add(session, kind, id, sealed, plain);
        Ok(())
    }

    /// Appends a sealed bundle of data blobs.
    fn add_bundle(&mut self, sh: &Shared, session: &[u8; 32], members: Vec<BundleMember>, sealed: &[u8]) -> Result<()> {
        self.write(sh, BlobKind::Data, sealed)?;
        self.layout.add_bundle(session, members, sealed);
        Ok(())
    }

    /// Writes a segment's bytes to the staged pack, staging it first.
    fn write(&mut self, sh: &Shared, kind: BlobKind, sealed: &[u8]) -> Result<()> {
        let staged = match &mut self.staged {
            Some(s) => s,
            None => {
                let capacity = if kind == BlobKind::Data { sh.pack_size + (4 << 20) } else { 0 };
                // A backend that cannot stage beside its packs stages in the cache directory.
                let spill = crate::backend::Spill::Dir(sh.cache.dir());
                self.staged.insert(sh.backend.stage(ObjectType::pack(kind).dir(), capacity, spill)?)
            }
        };
        staged.write(sealed)
    }

    /// Appends the header and trailer; `None` for a pack without blobs.
    fn seal(self, keys: &crate::crypto::MasterKeys) -> Result<Option<SealedPack>> {
        let Some(mut staged) = self.staged else { return Ok(None) };
        let tail = self.layout.finish(keys);
        staged.write(&tail.bytes)?;
        Ok(Some(SealedPack { id: tail.id, index: tail.index, staged }))
    }
}

fn random_index(n: usize) -> usize {
    let mut b = [0u8; 1];
    let _ = getrandom::getrandom(&mut b);
    b[0] as usize % n
}

/// The packs gathered for the next index file, by the rule every writer of index files follows
/// (format-spec §6.2): the file is full at [`PACKS_PER_INDEX`] packs, or at the pack that takes
/// the blobs it names to `max_blobs` or more ([`BLOBS_PER_INDEX`] but in tests).
#[derive(Debug, Default)]
pub struct IndexPart {
    packs: Vec<IndexPack>,
    blobs: usize,
}

impl IndexPart {
    /// Adds `pack`; when that fills the part, gives back its packs (to be written as one index
    /// file) and starts an empty part.
    pub fn push(&mut self, pack: IndexPack, max_blobs: usize) -> Option<Vec<IndexPack>> {
        self.blobs += pack.blobs.len();
        self.packs.push(pack);
        (self.packs.len() >= PACKS_PER_INDEX || self.blobs >= max_blobs).then(|| self.take())
    }

    /// The packs gathered so far (the last, partial file), leaving the part empty.
    pub fn take(&mut self) -> Vec<IndexPack> {
        self.blobs = 0;
        std::mem::take(&mut self.packs)
    }

    /// True when no pack is gathered.
    pub fn is_empty(&self) -> bool {
        self.packs.is_empty()
    }

    /// Splits `packs` into index files by the rule, in order.
    pub fn split(packs: Vec<IndexPack>, max_blobs: usize) -> Vec<Vec<IndexPack>> {
        let mut part = IndexPart::default();
        let mut out: Vec<Vec<IndexPack>> = packs.into_iter().filter_map(|p| part.push(p, max_blobs)).collect();
        if !part.is_empty() {
            out.push(part.take());
        }
        out
    }
}

impl Shared {
    fn fail(&self, e: Error) {
        let mut g = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(e);
        }
    }

    fn upload(&self, p: SealedPack) -> Result<()> {
        let path = pack_path(p.index.kind, &p.id);
        // The pack was written as its blobs were sealed; this names it (locally, a rename of the
        // staged file) or sends it (see `Backend::write_staged`).
        match self.backend.write_staged(&path, p.staged) {
            Ok(()) => {}
            // Same name = same bytes (the name is their hash).
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(e),
        }
        self.stats.packs.fetch_add(1, Ordering::Relaxed);
        let full = self.pending.lock().unwrap_or_else(|p| p.into_inner()).push(p.index, self.blobs_per_index);
        if let Some(packs) = full {
            self.write_index(packs)?;
        }
        Ok(())
    }

    fn write_index(&self, packs: Vec<IndexPack>) -> Result<()> {
        let _one = self.indexing.lock().unwrap_or_else(|p| p.into_inner());
        // The packs this index names must be durable before it exists (format-spec §11).
        self.backend.sync()?;
        let (_, packs) = write_index(&self.backend, &self.keys, &self.cache, Vec::new(), packs)?;
        // The cache's blob map now names these blobs: dedup finds them there.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for b in packs.iter().flat_map(|p| &p.blobs) {
            seen.remove(&(b.kind, b.id));
        }
        let keep = seen.len().max(self.blobs_per_index);
        seen.shrink_to(keep);
        Ok(())
    }
}

/// Writes a new index file naming `packs` (and superseding `supersedes`), then records it in
/// the cache. The caller has made sure the packs are durable (format-spec §11).
pub fn write_index_file(
    backend: &crate::backend::DynBackend,
    keys: &crate::crypto::MasterKeys,
    cache: &crate::cache::Cache,
    supersedes: Vec<IndexId>,
    packs: Vec<IndexPack>,
) -> Result<IndexId> {
    write_index(backend, keys, cache, supersedes, packs).map(|(id, _)| id)
}

/// [`write_index_file`], giving the packs back.
fn write_index(
    backend: &crate::backend::DynBackend,
    keys: &crate::crypto::MasterKeys,
    cache: &crate::cache::Cache,
    supersedes: Vec<IndexId>,
    packs: Vec<IndexPack>,
) -> Result<(IndexId, Vec<IndexPack>)> {
    let id = IndexId(crate::crypto::random_32());
    let f = IndexFile::new(supersedes, packs);
    backend.write_new(&id.path(), &object::encode_index(keys, &id, &f))?;
    cache.ingest_index(&id, f.packs())?;
    Ok((id, f.into_packs()))
}

impl<'r> Writer<'r> {
    /// Starts a session: checks the writer version, takes a lease, loads the condemned set and
    /// brings the cache up to date.
    pub fn new(repo: &'r Repository, opts: WriterOptions, operation: &str) -> Result<Self> {
        repo.check_writer_version()?;
        let reader = if opts.verify_dedup { Some(repo.readable()?) } else { None };
        let session = Session::new_writer(repo.keys());
        let lease = if opts.dry_run { None } else { Some(LeaseKeeper::start(repo, &session, operation)?) };
        let condemned = repo.sync_for_writing()?;
        let pack_size = repo.config().pack_size().clamp(1 << 20, 256 << 20) as usize;
        let shared = Arc::new(Shared {
            backend: repo.backend().clone(),
            keys: repo.keys().clone(),
            cache: repo.cache_arc(),
            pending: Mutex::new(IndexPart::default()),
            indexing: Mutex::new(()),
            seen: Mutex::new(HashSet::new()),
            error: Mutex::new(None),
            stats: WriterStats::default(),
            pack_size,
            blobs_per_index: opts.blobs_per_index.max(1),
        });
        let (tx, rx): (Sender<SealedPack>, Receiver<SealedPack>) = bounded(0);
        let mut uploaders = Vec::new();
        if !opts.dry_run {
            // Remote backends ask for more uploads in flight than local disk (a PUT waits on the network).
            for _ in 0..opts.uploaders.max(shared.backend.upload_concurrency()).max(1) {
                let rx = rx.clone();
                let sh = shared.clone();
                uploaders.push(std::thread::spawn(move || {
                    for p in rx {
                        if let Err(e) = sh.upload(p) {
                            sh.fail(e);
                        }
                    }
                }));
            }
        }
        let bundle = (repo.config().bundles_allowed() && opts.compression != Compression::Off)
            .then(|| Mutex::new(OpenBundle::default()));
        Ok(Writer {
            repo,
            shared,
            session,
            bundle,
            open: Mutex::new(OpenPacks {
                data: (0..OPEN_DATA_PACKS).map(|_| OpenPack::new(BlobKind::Data)).collect(),
                tree: OpenPack::new(BlobKind::Tree),
            }),
            condemned,
            reader,
            dedup_checked: Mutex::new(HashMap::new()),
            upload_tx: Some(tx),
            uploaders,
            lease,
            pack_size,
            opts,
            sealed_segments: AtomicU64::new(0),
        })
    }

    /// This session's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.shared.stats
    }

    /// New blobs of this session that no index file written yet names: the session holds them
    /// in memory until one does.
    pub fn unindexed_blobs(&self) -> usize {
        self.shared.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The session (its public key goes into the snapshot).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// True when every blob the cache's blob map names counts as stored in this session: no pack
    /// is condemned (format-spec §10.3) and dedup is not verified by reading copies back.
    pub fn trusts_blob_map(&self) -> bool {
        self.condemned.is_empty() && self.reader.is_none()
    }

    /// True when the blob is already stored in a pack that is not condemned, or in this session.
    pub fn is_known(&self, kind: BlobKind, id: &BlobId) -> Result<bool> {
        if self.shared.seen.lock().unwrap_or_else(|p| p.into_inner()).contains(&(kind, *id)) {
            return Ok(true);
        }
        self.stored_elsewhere(kind, id)
    }

    /// True when another session stored the blob in a pack that is not condemned (format-spec
    /// §10.3); with `verify_dedup`, only when one such copy also reads back and verifies.
    fn stored_elsewhere(&self, kind: BlobKind, id: &BlobId) -> Result<bool> {
        let locs = self.repo.locate(kind, id)?;
        let candidates = locs.iter().filter(|l| !self.condemned.contains(&l.pack));
        let Some(reader) = &self.reader else { return Ok(candidates.count() > 0) };
        if let Some(v) = self.dedup_checked.lock().unwrap_or_else(|p| p.into_inner()).get(&(kind, *id)) {
            return Ok(*v);
        }
        let mut ok = false;
        let mut any = false;
        for l in candidates {
            any = true;
            match reader.read_blob_at(l, id) {
                Ok(_) => {
                    ok = true;
                    break;
                }
                Err(e) => tracing::warn!("{e}; not relied on for dedup (run `cairn check --read-data`)"),
            }
        }
        let st = &self.shared.stats;
        if ok {
            st.dedup_verified.fetch_add(1, Ordering::Relaxed);
        } else if any {
            st.dedup_rejected.fetch_add(1, Ordering::Relaxed);
        }
        self.dedup_checked.lock().unwrap_or_else(|p| p.into_inner()).insert((kind, *id), ok);
        Ok(ok)
    }

    fn check_failed(&self) -> Result<()> {
        if let Some(e) = self.shared.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        Ok(())
    }

    /// Stores a blob unless it is known; returns its id and whether it was new.
    pub fn store(&self, kind: BlobKind, plain: &[u8]) -> Result<(BlobId, bool)> {
        let id = self.repo.keys().content_id(plain);
        let new = self.store_with_id(kind, id, plain)?;
        Ok((id, new))
    }

    /// [`Writer::store`] for a blob whose id the caller computed.
    pub fn store_with_id(&self, kind: BlobKind, id: BlobId, plain: &[u8]) -> Result<bool> {
        self.check_failed()?;
        if self.stored_elsewhere(kind, &id)? {
            return Ok(false);
        }
        if !self.shared.seen.lock().unwrap_or_else(|p| p.into_inner()).insert((kind, id)) {
            return Ok(false);
        }
        let st = &self.shared.stats;
        st.blobs_added.fetch_add(1, Ordering::Relaxed);
        st.bytes_added.fetch_add(plain.len() as u64, Ordering::Relaxed);
        if let Some(bundle) = self.bundle.as_ref().filter(|_| {
            kind == BlobKind::Data && plain.len() < BUNDLE_MEMBER_MAX && !crate::compress::looks_incompressible(plain)
        }) {
            let full = {
                let mut b = bundle.lock().unwrap_or_else(|p| p.into_inner());
                b.members.push(BundleMember { id, plain_length: plain.len() as u32 });
                b.body.extend_from_slice(plain);
                let most = BUNDLE_MAX_MEMBERS.min(self.opts.blobs_per_pack.max(1));
                (b.body.len() >= BUNDLE_TARGET || b.members.len() >= most).then(|| std::mem::take(&mut *b))
            };
            if let Some(b) = full {
                self.store_bundle(b)?;
            }
            return Ok(true);
        }
        let sealed = self.seal_verified(kind, id, plain)?;
        st.bytes_added_stored.fetch_add(sealed.len() as u64, Ordering::Relaxed);
        if self.opts.dry_run {
            return Ok(true);
        }
        self.add_segment(kind, 1, |pack| {
            pack.add(&self.shared, &self.session.public, kind, id, &sealed, plain.len() as u32)
        })?;
        Ok(true)
    }

    /// Compresses (where it pays) and seals one blob, checked as the session's [`Verification`]
    /// says before it may join a pack (format-spec §5.4).
    fn seal_verified(&self, kind: BlobKind, id: BlobId, plain: &[u8]) -> Result<Vec<u8>> {
        let keys = self.repo.keys();
        let compression =
            if kind == BlobKind::Tree { self.opts.compression.for_trees() } else { self.opts.compression };
        let fail = |e: String| Error::corrupt_blob(kind, id, None, format!("verification before upload failed: {e}"));
        let (key, repo_id) = (self.session.key(), &keys.repo_id);
        let compressed = self.compress(plain, compression);
        if self.opts.verify == Verification::Compression {
            blob::check_compressed(compressed.as_deref(), plain).map_err(fail)?;
        }
        let sealed = blob::seal_blob_payload(key, repo_id, kind, &id, plain, compressed.as_deref());
        if self.open_again(kind) {
            let back = blob::open_blob(key, repo_id, kind, &id, &sealed, plain.len()).map_err(fail)?;
            if keys.content_id(&back) != id {
                return Err(fail("content changed".into()));
            }
        }
        Ok(sealed)
    }

    /// `plain` compressed where it pays (`None`: stored raw); garbled as a faulty compressor
    /// would under [`WriterOptions::test_faulty_compressor`].
    fn compress(&self, plain: &[u8], compression: Compression) -> Option<Vec<u8>> {
        let mut compressed = crate::compress::compress(plain, compression);
        if let Some(c) = compressed.as_mut().filter(|_| self.opts.test_faulty_compressor) {
            let at = c.len() / 2;
            c[at] ^= 0x55;
        }
        compressed
    }

    /// True when the sealed segment of `kind` about to join a pack is to be opened again in full.
    fn open_again(&self, kind: BlobKind) -> bool {
        match self.opts.verify {
            Verification::Full => true,
            Verification::Off => false,
            Verification::Compression => {
                kind == BlobKind::Tree
                    || self.sealed_segments.fetch_add(1, Ordering::Relaxed).is_multiple_of(OPEN_AGAIN_EVERY)
            }
        }
    }

    /// Seals a bundle and adds it to an open data pack; a bundle of one blob is stored as that
    /// blob alone.
    fn store_bundle(&self, b: OpenBundle) -> Result<()> {
        let repo = self.repo;
        let keys = repo.keys();
        if b.members.len() == 1 {
            let (id, plain) = (b.members[0].id, b.members[0].plain_length);
            let sealed = self.seal_verified(BlobKind::Data, id, &b.body)?;
            self.shared.stats.bytes_added_stored.fetch_add(sealed.len() as u64, Ordering::Relaxed);
            if self.opts.dry_run {
                return Ok(());
            }
            return self.add_segment(BlobKind::Data, 1, |pack| {
                pack.add(&self.shared, &self.session.public, BlobKind::Data, id, &sealed, plain)
            });
        }
        let fail = |id: BlobId, e: String| {
            Error::corrupt_blob(BlobKind::Data, id, None, format!("verification before upload failed: {e}"))
        };
        let compressed = self.compress(&b.body, self.opts.compression);
        if self.opts.verify == Verification::Compression {
            blob::check_compressed(compressed.as_deref(), &b.body).map_err(|e| fail(b.members[0].id, e))?;
        }
        let sealed = blob::seal_bundle_payload(self.session.key(), &keys.repo_id, &b.body, compressed.as_deref());
        if self.open_again(BlobKind::Data) {
            // What a reader does with every member: open the bundle, slice, recompute the id.
            let back =
                blob::open_bundle(self.session.key(), &keys.repo_id, &sealed).map_err(|e| fail(b.members[0].id, e))?;
            let mut at = 0u32;
            for m in &b.members {
                let part = blob::bundle_member(&back, at, m.plain_length as usize).map_err(|e| fail(m.id, e))?;
                if keys.content_id(part) != m.id {
                    return Err(fail(m.id, "content changed".into()));
                }
                at += m.plain_length;
            }
            if at as usize != back.len() {
                return Err(fail(b.members[0].id, "the bundle's body changed length".into()));
            }
        }
        self.shared.stats.bytes_added_stored.fetch_add(sealed.len() as u64, Ordering::Relaxed);
        if self.opts.dry_run {
            return Ok(());
        }
        let members = b.members;
        let n = members.len();
        self.add_segment(BlobKind::Data, n, move |pack| {
            pack.add_bundle(&self.shared, &self.session.public, members, &sealed)
        })
    }

    /// Adds one segment to an open pack of `kind` (a random one of the data packs) with `add`, and
    /// sends the pack on when it is full.
    /// A segment of `n` blobs that would take a pack past its blob count goes to a new pack, the
    /// old one being sent first.
    fn add_segment(&self, kind: BlobKind, n: usize, add: impl FnOnce(&mut OpenPack) -> Result<()>) -> Result<()> {
        let most = self.opts.blobs_per_pack.max(1);
        let (before, full) = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            let (pack, limit) = match kind {
                BlobKind::Data => {
                    let i = random_index(open.data.len());
                    (&mut open.data[i], self.pack_size)
                }
                BlobKind::Tree => (&mut open.tree, self.pack_size / 4),
            };
            let before = (!pack.layout.is_empty() && pack.layout.count() + n > most)
                .then(|| std::mem::replace(pack, OpenPack::new(kind)));
            add(pack)?;
            let full = (pack.layout.len() >= limit as u64 || pack.layout.count() >= most)
                .then(|| std::mem::replace(pack, OpenPack::new(kind)));
            (before, full)
        };
        for p in [before, full].into_iter().flatten() {
            self.send(p)?;
        }
        Ok(())
    }

    fn send(&self, p: OpenPack) -> Result<()> {
        let Some(p) = p.seal(self.repo.keys())? else { return Ok(()) };
        if let Some(tx) = &self.upload_tx {
            tx.send(p).map_err(|_| Error::Internal("upload workers stopped".into()))?;
        }
        self.check_failed()
    }

    /// Uploads every open pack, waits for the uploads and writes the remaining index.
    /// After this returns, every blob stored is in storage and indexed.
    pub fn flush(&mut self) -> Result<()> {
        let open_bundle =
            self.bundle.as_ref().map(|b| std::mem::take(&mut *b.lock().unwrap_or_else(|p| p.into_inner())));
        if let Some(b) = open_bundle.filter(|b| !b.members.is_empty()) {
            self.store_bundle(b)?;
        }
        let packs: Vec<OpenPack> = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            let mut v: Vec<OpenPack> = open.data.drain(..).collect();
            v.push(std::mem::replace(&mut open.tree, OpenPack::new(BlobKind::Tree)));
            open.data = (0..OPEN_DATA_PACKS).map(|_| OpenPack::new(BlobKind::Data)).collect();
            v
        };
        for b in packs.into_iter().filter(|b| !b.layout.is_empty()) {
            if self.opts.dry_run {
                continue;
            }
            self.send(b)?;
        }
        self.upload_tx = None;
        for h in self.uploaders.drain(..) {
            let _ = h.join();
        }
        self.check_failed()?;
        let rest = self.shared.pending.lock().unwrap_or_else(|p| p.into_inner()).take();
        if !rest.is_empty() {
            self.shared.write_index(rest)?;
        }
        Ok(())
    }

    /// Flushes, then commits a snapshot if the lease is still held. The snapshot is the commit
    /// point: everything it references is stored and indexed before it is written. It is stored
    /// as version 2, signed by the key in use when [`Repository::signer`] can (format-spec §4.3).
    pub fn commit(self, snap: &Snapshot) -> Result<SnapshotId> {
        let ids = self.commit_all(&[(snap.clone(), true)])?;
        Ok(ids[0])
    }

    /// [`Writer::commit`] for several snapshots of one session (copy, repair), in order; each
    /// is signed only when its flag says so (a copy or repair of an unattributed snapshot stays
    /// unattributed).
    pub fn commit_all(self, snaps: &[(Snapshot, bool)]) -> Result<Vec<SnapshotId>> {
        let signer = self.repo.signer()?;
        self.commit_with(snaps.len(), |i, id| signer.finish(id, &snaps[i].0, snaps[i].1))
    }

    /// Commits one manifest rewritten from another (`tag`, format-spec §8.3): signed by this key
    /// when `sign`, else stored with the writer block `snap` carries, verbatim (a flagged manifest
    /// keeps its block, which no longer verifies, so it stays flagged).
    pub fn commit_rewritten(self, snap: &Snapshot, sign: bool) -> Result<SnapshotId> {
        let signer = self.repo.signer()?;
        let ids = self.commit_with(1, |_, id| if sign { signer.finish(id, snap, true) } else { snap.clone() })?;
        Ok(ids[0])
    }

    /// Flushes, then stores `n` snapshots, the `i`th as `make(i, its id)` returns it.
    fn commit_with(mut self, n: usize, make: impl Fn(usize, &SnapshotId) -> Snapshot) -> Result<Vec<SnapshotId>> {
        self.flush()?;
        let repo = self.repo;
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            if let Some(l) = &self.lease {
                l.check()?;
            }
            let id = SnapshotId(crate::crypto::random_32());
            let bytes = object::encode_snapshot(repo.keys(), &self.session, &id, &make(i, &id));
            repo.backend().write_new(&id.path(), &bytes)?;
            ids.push(id);
        }
        if let Some(l) = self.lease.take() {
            l.release();
        }
        Ok(ids)
    }

    /// Treats the blobs of `packs` as absent from now on, so they are stored again (prune's
    /// repack, format-spec §10.6).
    pub fn condemn(&mut self, packs: impl IntoIterator<Item = PackId>) {
        self.condemned.extend(packs);
    }

    /// Flushes and ends the session without a snapshot (prune's repack): every blob stored is
    /// in storage and indexed when this returns.
    pub fn finish(mut self) -> Result<()> {
        self.flush()?;
        if let Some(l) = self.lease.take() {
            l.release();
        }
        Ok(())
    }

    /// Ends the session without a snapshot: what was uploaded stays as unreferenced packs for
    /// prune to collect.
    pub fn abandon(mut self) {
        self.upload_tx = None;
        for h in self.uploaders.drain(..) {
            let _ = h.join();
        }
        if let Some(l) = self.lease.take() {
            l.release();
        }
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        self.upload_tx = None;
        for h in self.uploaders.drain(..) {
            let _ = h.join();
        }
    }
}
