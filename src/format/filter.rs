//! Include and exclude patterns for backup and restore. Pure: matches paths, touches nothing.
//!
//! A pattern without `/` matches a name at any depth (`*.log`); a pattern with `/` matches the
//! whole absolute path (`/var/cache/**`, or `var/*/tmp` anywhere as `**/var/*/tmp`). `*` does
//! not cross `/`; `**` does. A pattern that matches a directory covers everything below it.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::path::Path;

/// A compiled set of patterns.
#[derive(Clone, Debug, Default)]
pub struct Patterns {
    names: Option<GlobSet>,
    paths: Option<GlobSet>,
    count: usize,
}

impl Patterns {
    /// Compiles patterns; `case_insensitive` per pattern.
    pub fn new<'a>(patterns: impl IntoIterator<Item = (&'a str, bool)>) -> Result<Self, String> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        let (mut n_names, mut n_paths) = (0, 0);
        for (p, ci) in patterns {
            let p = p.trim_end_matches('/');
            if p.is_empty() {
                continue;
            }
            if p.contains('/') {
                let full = if p.starts_with('/') { p.to_string() } else { format!("**/{p}") };
                let g = GlobBuilder::new(&full)
                    .literal_separator(true)
                    .case_insensitive(ci)
                    .build()
                    .map_err(|e| format!("pattern {p:?}: {e}"))?;
                paths.add(g);
                n_paths += 1;
            } else {
                let g = GlobBuilder::new(p)
                    .literal_separator(true)
                    .case_insensitive(ci)
                    .build()
                    .map_err(|e| format!("pattern {p:?}: {e}"))?;
                names.add(g);
                n_names += 1;
            }
        }
        Ok(Patterns {
            names: if n_names > 0 { Some(names.build().map_err(|e| e.to_string())?) } else { None },
            paths: if n_paths > 0 { Some(paths.build().map_err(|e| e.to_string())?) } else { None },
            count: n_names + n_paths,
        })
    }

    /// True when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Does `path` (absolute) itself match?
    pub fn matches(&self, path: &Path) -> bool {
        if let (Some(n), Some(name)) = (&self.names, path.file_name()) {
            if n.is_match(Path::new(name)) {
                return true;
            }
        }
        if let Some(p) = &self.paths {
            if p.is_match(path) {
                return true;
            }
        }
        false
    }

    /// Does `path` or any of its ancestors match?
    pub fn matches_or_ancestor(&self, path: &Path) -> bool {
        path.ancestors().any(|a| a.as_os_str().len() > 1 && self.matches(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_path_patterns() {
        let p = Patterns::new([("*.log", false), ("/var/cache", false), ("tmp/*.o", false)]).unwrap();
        assert!(p.matches(Path::new("/a/b/x.log")));
        assert!(!p.matches(Path::new("/a/b/x.log.gz")));
        assert!(p.matches(Path::new("/var/cache")));
        assert!(p.matches_or_ancestor(Path::new("/var/cache/apt/x")));
        assert!(p.matches(Path::new("/src/tmp/a.o")));
        assert!(!p.matches(Path::new("/src/tmp/sub/a.o")));
        let ci = Patterns::new([("*.JPG", true)]).unwrap();
        assert!(ci.matches(Path::new("/x/a.jpg")));
    }
}
