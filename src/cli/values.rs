//! The typed value parsers of the command line: sizes and durations in the library's one grammar
//! (`cairn::units`), percentages, times, ids and key prefixes, `SNAPSHOT[:PATH]`. Each returns the
//! value a command uses, or a message saying what to write instead (clap makes it exit 2).

use cairn::id::{BlobId, IndexId};
use cairn::select::{split_path_spec, SnapshotSpec};
use cairn::tree::Time;
use cairn::units::DurationSpec;
use std::path::PathBuf;
use std::str::FromStr;

/// A size (`--exclude-larger-than`, `--max-repack-size`), in the one grammar of `units::parse_size`.
pub fn size(s: &str) -> Result<u64, String> {
    cairn::units::parse_size(s)
}

/// A size or `unlimited` (`u64::MAX`).
pub fn size_limit(s: &str) -> Result<u64, String> {
    if s.trim() == "unlimited" {
        return Ok(u64::MAX);
    }
    size(s).map_err(|e| format!("{e}, or `unlimited`"))
}

/// A percentage `0%` to `100%`, as a fraction 0.0..=1.0.
pub fn percent(s: &str) -> Result<f64, String> {
    let bad = || format!("{s:?} is not a percentage: write e.g. 5% (0% to 100%)");
    let v: f64 = s.trim().trim_end_matches('%').trim().parse().map_err(|_| bad())?;
    if !(0.0..=100.0).contains(&v) {
        return Err(bad());
    }
    Ok(v / 100.0)
}

/// A duration of fixed length (no years or months), in the one duration grammar.
#[derive(Clone, Copy, Debug)]
pub struct FixedDuration {
    /// As written (normalised).
    pub spec: DurationSpec,
    /// Its length.
    pub secs: i64,
}

impl FromStr for FixedDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let spec: DurationSpec = s.parse()?;
        Ok(FixedDuration { spec, secs: spec.fixed_secs()? })
    }
}

/// A point in time: RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS]]` in UTC.
pub fn time(s: &str) -> Result<Time, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a time (RFC 3339, or YYYY-MM-DD[ HH:MM[:SS]] in UTC)");
    let t = match s.parse::<jiff::Timestamp>() {
        Ok(t) => t,
        Err(_) => {
            let civil = s
                .parse::<jiff::civil::DateTime>()
                .ok()
                .or_else(|| s.parse::<jiff::civil::Date>().ok().map(|d| d.to_datetime(jiff::civil::Time::midnight())))
                .ok_or_else(bad)?;
            jiff::tz::TimeZone::UTC.to_timestamp(civil).map_err(|_| bad())?
        }
    };
    Ok(Time { secs: t.as_second(), nanos: t.subsec_nanosecond().max(0) as u32 })
}

/// A time zone name (`Europe/Berlin`, `UTC`).
pub fn time_zone(s: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::TimeZone::get(s).map_err(|e| format!("{s:?}: {e}"))
}

/// A full 64-digit hex id.
fn hex_id(s: &str) -> Result<[u8; 32], String> {
    cairn::id::parse_hex32(&s.to_ascii_lowercase()).ok_or_else(|| format!("{s:?} is not a 64-digit hex id"))
}

/// A blob id.
pub fn blob_id(s: &str) -> Result<BlobId, String> {
    hex_id(s).map(BlobId)
}

/// An index file id.
pub fn index_id(s: &str) -> Result<IndexId, String> {
    hex_id(s).map(IndexId)
}

/// A key id or a prefix of one: 1 to 64 hex digits, stored lowercase.
#[derive(Clone, Debug)]
pub struct KeyPrefix(pub String);

impl FromStr for KeyPrefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(KeyPrefix(s.to_ascii_lowercase()))
        } else {
            Err(format!("{s:?} is not a key id or a prefix of one (hex digits)"))
        }
    }
}

/// `SNAPSHOT` or `SNAPSHOT:PATH` (a relative PATH is taken from the root).
#[derive(Clone, Debug)]
pub struct SnapshotPath {
    /// The snapshot.
    pub spec: SnapshotSpec,
    /// The subtree, if any.
    pub path: Option<PathBuf>,
}

impl FromStr for SnapshotPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (spec, path) = split_path_spec(s);
        Ok(SnapshotPath { spec: spec.parse()?, path })
    }
}

/// `--writer KEY`: a key id prefix (hex, any case; kept lowercase) or `unattributed`.
pub fn writer_spec(s: &str) -> Result<String, String> {
    let l = s.to_ascii_lowercase();
    if l == "unattributed" || (!l.is_empty() && l.len() <= 64 && l.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Ok(l);
    }
    Err(format!("{s:?} is not a key id prefix (hex digits) or `unattributed`"))
}

/// The limits of a walk that keeps its entries (`restore`, `ls`): the reference's
/// ([`cairn::tree::Limits::expanding`]), with `--max-tree-memory` as the expansion floor when given.
pub fn tree_limits(max_tree_memory: Option<u64>) -> cairn::tree::Limits {
    let mut l = cairn::tree::Limits::expanding();
    if let (Some(max), Some(x)) = (max_tree_memory, l.expansion.as_mut()) {
        x.floor = max;
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn values() {
        assert_eq!(percent("5%"), Ok(0.05));
        assert!(percent("150%").is_err());
        assert_eq!(size_limit("unlimited"), Ok(u64::MAX));
        assert_eq!(size_limit("2G"), Ok(2 << 30));
        assert_eq!("90min".parse::<FixedDuration>().map(|d| d.secs), Ok(5400));
        assert!("6m".parse::<FixedDuration>().is_err());
        assert!("6mo".parse::<FixedDuration>().is_err());
        assert_eq!(time("2024-03-01").map(|t| t.secs), Ok(1_709_251_200));
        assert_eq!(time("2024-03-01T12:00:00+01:00").map(|t| t.secs), Ok(1_709_290_800));
        assert!(time("yesterday").is_err());
        assert!("xyz".parse::<KeyPrefix>().is_err());
    }
}
