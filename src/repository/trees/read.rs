//! Reading trees from a repository (format-spec §7): one tree blob with its plaintext, and the
//! repository as a [`TreeSource`] for the reader and the walker of [`crate::treeread`] and
//! [`crate::treewalk`].

use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind};
use crate::repository::ReadRepository;
use crate::tree::TreeBlob;
use crate::treeread::TreeSource;

impl ReadRepository {
    /// Reads a tree blob.
    pub fn read_tree_blob(&self, id: &BlobId) -> Result<TreeBlob> {
        read_tree(self, id).map(|(_, t)| t)
    }
}

/// Reads a tree blob: its plaintext (as stored, for a copy that keeps its id) and what it
/// decodes to.
pub fn read_tree(repo: &ReadRepository, id: &BlobId) -> Result<(Vec<u8>, TreeBlob)> {
    let plain = repo.read_blob(BlobKind::Tree, id)?;
    let tree = TreeBlob::decode(&plain).map_err(|e| Error::corrupt_blob(BlobKind::Tree, *id, None, e))?;
    Ok((plain, tree))
}

impl TreeSource for ReadRepository {
    fn load_tree(&self, id: &BlobId) -> Result<(Vec<u8>, TreeBlob)> {
        read_tree(self, id)
    }
}
