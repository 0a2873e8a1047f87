//! The copies a sweep relies on (format-spec §10.6 sweep step 2): before a condemned pack that
//! holds a blob some snapshot references is deleted, a copy of that blob outside the condemned
//! packs is read and verified with the full key. An index entry alone is not proof: a write-only
//! key can write index files and pack headers that claim any blob (§12).

use super::BadCopy;
use crate::cache::Location;
use crate::id::{BlobId, BlobKind};
use crate::index::IndexPack;
use crate::repository::ReadRepository;
use std::collections::{HashMap, HashSet};

/// The indexed locations of blobs outside the condemned packs, and what reading them showed.
pub(super) struct Copies<'a> {
    repo: &'a ReadRepository,
    outside: HashMap<(BlobKind, BlobId), Vec<Location>>,
    verdict: HashMap<(BlobKind, BlobId), bool>,
    /// Copies read and verified.
    pub verified: u64,
    /// Locations that did not give the blob they claim.
    pub bad: Vec<BadCopy>,
}

impl<'a> Copies<'a> {
    /// No copies yet: [`Copies::add`] notes them pack by pack.
    pub fn new(repo: &'a ReadRepository) -> Self {
        Copies { repo, outside: HashMap::new(), verdict: HashMap::new(), verified: 0, bad: Vec::new() }
    }

    /// Notes the copies pack `ip` (outside the condemned set) holds of the `wanted` blobs (the
    /// referenced blobs of the condemned packs): only those are ever asked about, and a map of
    /// every blob would cost memory in proportion to the repository.
    pub fn add(&mut self, ip: &IndexPack, wanted: &HashSet<(BlobKind, BlobId)>) {
        for b in ip.blobs.iter().filter(|b| wanted.contains(&(b.kind, b.id))) {
            if let Some(loc) = Location::of(ip, b) {
                self.outside.entry((b.kind, b.id)).or_default().push(loc);
            }
        }
    }

    /// True when some copy outside the condemned packs is indexed (not yet verified).
    pub fn indexed(&self, kind: BlobKind, id: &BlobId) -> bool {
        self.outside.contains_key(&(kind, *id))
    }

    /// True when a copy outside the condemned packs reads, opens and verifies. Each blob is
    /// settled once; every location that fails on the way is recorded.
    pub fn good(&mut self, kind: BlobKind, id: &BlobId) -> bool {
        if let Some(v) = self.verdict.get(&(kind, *id)) {
            return *v;
        }
        let mut ok = false;
        for loc in self.outside.get(&(kind, *id)).map(Vec::as_slice).unwrap_or_default() {
            match self.repo.read_blob_at(loc, id) {
                Ok(_) => {
                    self.verified += 1;
                    ok = true;
                    break;
                }
                Err(e) => self.bad.push(BadCopy { kind, blob: *id, pack: loc.pack, error: e.to_string() }),
            }
        }
        self.verdict.insert((kind, *id), ok);
        ok
    }
}
