//! Human-readable quantities: the one grammar for sizes and the one grammar for durations that every
//! flag and the retention policy file use (docs/cli-contract.md, "Sizes and durations"), and their
//! display in messages. Pure text in, numbers out: no I/O, no clock.

use std::fmt;
use std::str::FromStr;

/// `1.50 GiB`; plain bytes below 1 KiB.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// `3h 20min`, `5min`, `40s`: written in the grammar [`DurationSpec`] reads.
pub fn human_secs(s: i64) -> String {
    let (h, m) = (s / 3600, (s % 3600) / 60);
    if h > 0 {
        format!("{h}h {m}min")
    } else if m > 0 {
        format!("{m}min")
    } else {
        format!("{s}s")
    }
}

/// Parses a size: a number (fractions allowed) and an optional binary unit, `K`, `M`, `G`, `T`, `P`
/// (also written `KiB`, `KB`, ...; case does not matter): `100`, `512K`, `10M`, `1.5G`, `2GiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("{s:?} is not a size: write a number of bytes with an optional unit, e.g. 512K, 10M, 1.5G");
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.to_ascii_uppercase();
    let shift = match unit.strip_suffix("IB").or_else(|| unit.strip_suffix('B')).unwrap_or(&unit) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        _ => return Err(bad()),
    };
    let num = num.trim();
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(1u64 << shift).ok_or_else(|| format!("{s:?} is too large"));
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let v = n * (1u64 << shift) as f64;
    if !v.is_finite() || v >= u64::MAX as f64 {
        return Err(format!("{s:?} is too large"));
    }
    Ok(v as u64)
}

/// A duration as written: whole numbers of years, months, weeks, days, hours, minutes and seconds,
/// e.g. `7y`, `1y6mo`, `90d`, `36h`, `90min`, `30s`, `0`.
///
/// Units: `y`/`year(s)`, `mo`/`month(s)`, `w`/`week(s)`, `d`/`day(s)`, `h`/`hour(s)`, `min`/`minute(s)`,
/// `s`/`sec`/`second(s)`. A bare `m` is refused, because `6m` reads as six minutes to some and six
/// months to others: the message says to write `6min` or `6mo`. Years and months are calendar units
/// (their length depends on the date); [`DurationSpec::fixed_secs`] refuses them where a fixed
/// length is needed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DurationSpec {
    /// Years.
    pub years: u32,
    /// Months.
    pub months: u32,
    /// Weeks.
    pub weeks: u32,
    /// Days.
    pub days: u32,
    /// Hours.
    pub hours: u32,
    /// Minutes.
    pub minutes: u32,
    /// Seconds.
    pub seconds: u32,
}

/// The units of [`DurationSpec`] as written in its output, largest first.
const DURATION_UNITS: [&str; 7] = ["y", "mo", "w", "d", "h", "min", "s"];

impl DurationSpec {
    /// The slot for a unit as written, or `None` for an unknown unit.
    fn slot(&mut self, unit: &str) -> Option<&mut u32> {
        Some(match unit {
            "y" | "year" | "years" => &mut self.years,
            "mo" | "month" | "months" => &mut self.months,
            "w" | "week" | "weeks" => &mut self.weeks,
            "d" | "day" | "days" => &mut self.days,
            "h" | "hour" | "hours" => &mut self.hours,
            "min" | "mins" | "minute" | "minutes" => &mut self.minutes,
            "s" | "sec" | "secs" | "second" | "seconds" => &mut self.seconds,
            _ => return None,
        })
    }

    fn parts(&self) -> [u32; 7] {
        [self.years, self.months, self.weeks, self.days, self.hours, self.minutes, self.seconds]
    }

    /// True when every part is zero.
    pub fn is_zero(&self) -> bool {
        self.parts().iter().all(|&n| n == 0)
    }

    /// The length in seconds, for durations of fixed length; an error naming the duration when it
    /// has years or months.
    pub fn fixed_secs(&self) -> Result<i64, String> {
        if self.years > 0 || self.months > 0 {
            return Err(format!(
                "{self}: years and months have no fixed length here; write days or weeks (e.g. 180d, 26w)"
            ));
        }
        let secs = i64::from(self.weeks) * 7 * 86_400
            + i64::from(self.days) * 86_400
            + i64::from(self.hours) * 3600
            + i64::from(self.minutes) * 60
            + i64::from(self.seconds);
        Ok(secs)
    }
}

impl FromStr for DurationSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let bad = || format!("{s:?} is not a duration: write e.g. 7y, 1y6mo, 90d, 2w, 36h, 90min or 30s (or 0)");
        if t == "0" {
            return Ok(DurationSpec::default());
        }
        let mut d = DurationSpec::default();
        let mut rest = t;
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad());
            }
            let n: u32 = rest[..digits].parse().map_err(|_| format!("{s:?}: the number is too large"))?;
            rest = &rest[digits..];
            let letters = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
            let unit = rest[..letters].to_ascii_lowercase();
            rest = &rest[letters..];
            if unit == "m" {
                return Err(format!("{s:?}: the unit `m` is ambiguous: write {n}min for minutes or {n}mo for months"));
            }
            let slot = d.slot(&unit).ok_or_else(bad)?;
            *slot = slot.checked_add(n).ok_or_else(|| format!("{s:?}: the number is too large"))?;
        }
        Ok(d)
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        for (n, u) in self.parts().into_iter().zip(DURATION_UNITS) {
            if n > 0 {
                write!(f, "{n}{u}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_secs(86_399), "23h 59min");
        assert_eq!(human_secs(59), "59s");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10M").unwrap(), 10 << 20);
        assert_eq!(parse_size("1K").unwrap(), 1024);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("7").unwrap(), 7);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("2gb").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        for bad in ["x", "", "M", "-1K", "10X", "1e3", "20000000P"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        let d: DurationSpec = "1y6mo2w3d4h5min6s".parse().unwrap();
        assert_eq!(d, DurationSpec { years: 1, months: 6, weeks: 2, days: 3, hours: 4, minutes: 5, seconds: 6 });
        assert_eq!(d.to_string(), "1y6mo2w3d4h5min6s");
        assert_eq!("90 minutes".replace(' ', "").parse::<DurationSpec>().unwrap().fixed_secs(), Ok(5400));
        assert_eq!("24h".parse::<DurationSpec>().unwrap().fixed_secs(), Ok(86_400));
        assert_eq!("0".parse::<DurationSpec>().unwrap().fixed_secs(), Ok(0));
        assert_eq!("2w".parse::<DurationSpec>().unwrap().fixed_secs(), Ok(14 * 86_400));
        assert!("6mo".parse::<DurationSpec>().unwrap().fixed_secs().is_err());
        for bad in ["", "soon", "h", "7", "1y6", "-1d", "1.5h", "3x"] {
            assert!(bad.parse::<DurationSpec>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bare_m_is_refused_with_both_readings() {
        let e = "6m".parse::<DurationSpec>().unwrap_err();
        assert!(e.contains("6min") && e.contains("6mo"), "{e}");
        assert!("1y6m".parse::<DurationSpec>().is_err());
    }
}
