//! Points in time as the format stores them: seconds and nanoseconds since the Unix epoch.
//! Pure data; reading the clock is the one thing it does besides arithmetic and formatting.

use serde::{Deserialize, Serialize};

/// A point in time: seconds and nanoseconds since the Unix epoch (UTC).
///
/// Serialized as `{secs, nanos}` in the stored (binary) formats and as RFC 3339 text in
/// human-readable ones (`--json`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    /// Seconds since 1970-01-01T00:00:00Z (negative before).
    pub secs: i64,
    /// Nanoseconds, 0..1e9.
    pub nanos: u32,
}

impl Time {
    /// From nanoseconds since the epoch.
    pub fn from_nanos(ns: i128) -> Self {
        Time { secs: ns.div_euclid(1_000_000_000) as i64, nanos: ns.rem_euclid(1_000_000_000) as u32 }
    }
    /// As nanoseconds since the epoch.
    pub fn as_nanos(&self) -> i128 {
        self.secs as i128 * 1_000_000_000 + self.nanos as i128
    }
    /// The current time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Time { secs: d.as_secs() as i64, nanos: d.subsec_nanos() }
    }
    /// RFC 3339 in UTC with nanoseconds where there are any.
    pub fn to_rfc3339(&self) -> String {
        match jiff::Timestamp::new(self.secs, self.nanos.min(999_999_999) as i32) {
            Ok(t) => t.to_string(),
            Err(_) => format!("@{}.{:09}", self.secs, self.nanos),
        }
    }
}

/// The stored layout of [`Time`].
#[derive(Serialize, Deserialize)]
struct TimeFields {
    secs: i64,
    nanos: u32,
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            TimeFields { secs: self.secs, nanos: self.nanos }.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            let t: jiff::Timestamp = s.parse().map_err(serde::de::Error::custom)?;
            Ok(Time { secs: t.as_second(), nanos: t.subsec_nanosecond().max(0) as u32 })
        } else {
            TimeFields::deserialize(d).map(|f| Time { secs: f.secs, nanos: f.nanos })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_nanos_round_trip() {
        for ns in [0i128, 1, -1, 1_700_000_000_123_456_789, -5_000_000_001] {
            assert_eq!(Time::from_nanos(ns).as_nanos(), ns);
        }
    }
}
