//! The first look at a storage location, before any password is asked for: is there a
//! repository (a config or a key file) or nothing yet. Lists two prefixes; reads nothing else.

use crate::backend::DynBackend;
use crate::error::Result;

/// True when the location holds a repository's config or key files; false when it holds neither
/// (nothing is there yet). A storage failure (an unreachable server, refused credentials) is an
/// [`crate::Error::Backend`] error.
pub fn has_repository(backend: &DynBackend) -> Result<bool> {
    Ok(!backend.list("config/")?.is_empty() || !backend.list("keys/")?.is_empty())
}
