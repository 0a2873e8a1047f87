//! Retention: which snapshots of one group a policy keeps, and which rule keeps each.
//! A pure function of the snapshots, the policy and a time zone: no I/O, no clock, no repository.
//!
//! The rules follow the long-standing semantics users know from restic: snapshots are taken
//! newest first; a bucket rule (`hourly`, `daily`, …) keeps the newest snapshot of each of the
//! last N calendar buckets that hold any snapshot; `within` keeps everything no older than the
//! duration before the group's newest snapshot (not before "now", so a host that stopped backing
//! up does not lose its history to the clock); `within-daily` and friends keep the newest of each
//! bucket inside that window; `tags` keeps every snapshot that carries one of the tags. A snapshot
//! is kept when any rule keeps it. Calendar buckets are civil times in the given time zone, so
//! DST changes, leap years and time zones behave as a person reading a calendar expects.

use crate::id::SnapshotId;
use crate::time::Time;
use crate::units::DurationSpec;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use std::fmt;

/// A calendar duration: `7y`, `1y6mo`, `2w`, `90d`, `36h` (written in the one duration grammar,
/// [`crate::units::DurationSpec`]; retention counts in hours and longer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CalendarDuration {
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
}

impl std::str::FromStr for CalendarDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let d: DurationSpec = s.parse()?;
        if d.minutes > 0 || d.seconds > 0 {
            return Err(format!("{s:?}: retention counts in hours or longer (units: y mo w d h)"));
        }
        if d.years > 10_000 || d.months > 120_000 || d.weeks > 600_000 || d.days > 4_000_000 || d.hours > 90_000_000 {
            return Err(format!("{s:?} is longer than any calendar cairn handles"));
        }
        Ok(CalendarDuration { years: d.years, months: d.months, weeks: d.weeks, days: d.days, hours: d.hours })
    }
}

impl fmt::Display for CalendarDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == CalendarDuration::default() {
            return f.write_str("0h");
        }
        let d = DurationSpec {
            years: self.years,
            months: self.months,
            weeks: self.weeks,
            days: self.days,
            hours: self.hours,
            ..DurationSpec::default()
        };
        d.fmt(f)
    }
}

impl CalendarDuration {
    /// `t` minus this duration, in civil time in `tz` (so `1d` across a DST change is one
    /// calendar day, and `1y` from 29 February lands on 28 February).
    pub fn before(&self, t: Time, tz: &TimeZone) -> Time {
        let Ok(ts) = Timestamp::new(t.secs, t.nanos.min(999_999_999) as i32) else { return Time::default() };
        let span = Span::new()
            .years(i64::from(self.years))
            .months(i64::from(self.months))
            .weeks(i64::from(self.weeks))
            .days(i64::from(self.days))
            .hours(i64::from(self.hours));
        match ts.to_zoned_datetime(tz.clone()).checked_sub(span) {
            Ok(z) => {
                let r = z.timestamp();
                Time { secs: r.as_second(), nanos: r.subsec_nanosecond().max(0) as u32 }
            }
            // Before the earliest representable time: the window covers everything.
            Err(_) => Time { secs: i64::MIN / 2, nanos: 0 },
        }
    }
}

/// A calendar bucket: (year, month or ISO week, day, hour), unused parts zero.
pub type Bucket = (i32, i32, i32, i32);

/// A calendar bucket size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    /// A clock hour.
    Hourly,
    /// A calendar day.
    Daily,
    /// An ISO 8601 week (Monday to Sunday).
    Weekly,
    /// A calendar month.
    Monthly,
    /// A calendar year.
    Yearly,
}

impl Period {
    /// All periods, shortest first.
    pub const ALL: [Period; 5] = [Period::Hourly, Period::Daily, Period::Weekly, Period::Monthly, Period::Yearly];

    /// The word used in reasons and flags.
    pub fn name(self) -> &'static str {
        match self {
            Period::Hourly => "hourly",
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
            Period::Yearly => "yearly",
        }
    }

    /// The bucket `t` falls in, in civil time in `tz`.
    pub fn bucket(self, t: Time, tz: &TimeZone) -> Bucket {
        let Ok(ts) = Timestamp::new(t.secs, t.nanos.min(999_999_999) as i32) else { return (i32::MIN, 0, 0, 0) };
        let z = ts.to_zoned_datetime(tz.clone());
        let (y, m, d, h) = (i32::from(z.year()), i32::from(z.month()), i32::from(z.day()), i32::from(z.hour()));
        match self {
            Period::Hourly => (y, m, d, h),
            Period::Daily => (y, m, d, 0),
            Period::Weekly => {
                let w = z.iso_week_date();
                (i32::from(w.year()), i32::from(w.week()), 0, 0)
            }
            Period::Monthly => (y, m, 0, 0),
            Period::Yearly => (y, 0, 0, 0),
        }
    }
}

/// How many buckets a rule keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// The last N buckets.
    Last(u32),
    /// Every bucket.
    Unlimited,
}

impl std::str::FromStr for Count {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "unlimited" | "all" | "-1" => Ok(Count::Unlimited),
            n => {
                n.parse::<u32>().map(Count::Last).map_err(|_| format!("{s:?} is not a count (a number or `unlimited`)"))
            }
        }
    }
}

impl Count {
    fn allows(self, used: u64) -> bool {
        match self {
            Count::Unlimited => true,
            Count::Last(n) => used < u64::from(n),
        }
    }
}

/// A retention policy for one group of snapshots. The empty policy keeps nothing on its own;
/// callers refuse to apply it (see [`Policy::is_empty`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Keep the newest N snapshots.
    pub last: Option<Count>,
    /// Keep the newest snapshot of each of the last N buckets of a period.
    pub periods: Vec<(Period, Count)>,
    /// Keep everything within this duration of the newest snapshot.
    pub within: Option<CalendarDuration>,
    /// Keep the newest snapshot of every bucket of a period within a duration of the newest snapshot.
    pub within_periods: Vec<(Period, CalendarDuration)>,
    /// Keep every snapshot that carries any of these tags.
    pub tags: Vec<String>,
}

impl Policy {
    /// True when no rule is set.
    pub fn is_empty(&self) -> bool {
        self.last.is_none()
            && self.periods.is_empty()
            && self.within.is_none()
            && self.within_periods.is_empty()
            && self.tags.is_empty()
    }

    /// A one-line description, e.g. `last 3, daily 7, within 90d`.
    pub fn describe(&self) -> String {
        let count = |c: Count| match c {
            Count::Last(n) => n.to_string(),
            Count::Unlimited => "unlimited".into(),
        };
        let mut v = Vec::new();
        if let Some(c) = self.last {
            v.push(format!("last {}", count(c)));
        }
        for (p, c) in &self.periods {
            v.push(format!("{} {}", p.name(), count(*c)));
        }
        if let Some(d) = self.within {
            v.push(format!("within {d}"));
        }
        for (p, d) in &self.within_periods {
            v.push(format!("within-{} {d}", p.name()));
        }
        for t in &self.tags {
            v.push(format!("tag {t}"));
        }
        if v.is_empty() {
            "no rule".into()
        } else {
            v.join(", ")
        }
    }
}

/// One snapshot as the policy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Its id (ties in time are broken by id, so the outcome never depends on input order).
    pub id: SnapshotId,
    /// When it was taken.
    pub time: Time,
    /// Its tags.
    pub tags: Vec<String>,
}

/// The verdict on one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The snapshot.
    pub id: SnapshotId,
    /// When it was taken.
    pub time: Time,
    /// Kept?
    pub keep: bool,
    /// The rules that keep it (empty when removed), e.g. `daily 3/7`, `within 90d`, `tag audit`.
    pub reasons: Vec<String>,
}

/// Applies `policy` to one group of snapshots. Returns a decision per snapshot, newest first.
pub fn apply(items: &[Item], policy: &Policy, tz: &TimeZone) -> Vec<Decision> {
    let mut order: Vec<&Item> = items.iter().collect();
    order.sort_by(|a, b| b.time.cmp(&a.time).then(b.id.cmp(&a.id)));
    let Some(newest) = order.first().map(|i| i.time) else { return Vec::new() };

    let within_from = policy.within.map(|d| (d, d.before(newest, tz)));
    let within_periods: Vec<(Period, CalendarDuration, Time)> =
        policy.within_periods.iter().map(|(p, d)| (*p, *d, d.before(newest, tz))).collect();
    // Per bucket rule: how many buckets it has used, and the bucket of the last snapshot it kept.
    let mut used: Vec<(u64, Option<Bucket>)> = vec![(0, None); policy.periods.len()];
    let mut used_within: Vec<Option<Bucket>> = vec![None; within_periods.len()];
    let mut last_used = 0u64;

    let mut out = Vec::with_capacity(order.len());
    for item in order {
        let mut reasons = Vec::new();
        if let Some(c) = policy.last {
            if c.allows(last_used) {
                last_used += 1;
                reasons.push(format!("last {last_used}"));
            }
        }
        for (i, (period, count)) in policy.periods.iter().enumerate() {
            let b = period.bucket(item.time, tz);
            let (n, last) = &mut used[i];
            if count.allows(*n) && *last != Some(b) {
                *n += 1;
                *last = Some(b);
                reasons.push(format!("{} {}", period.name(), n));
            }
        }
        if let Some((d, from)) = within_from {
            if item.time >= from {
                reasons.push(format!("within {d}"));
            }
        }
        for (i, (period, d, from)) in within_periods.iter().enumerate() {
            if item.time < *from {
                continue;
            }
            let b = period.bucket(item.time, tz);
            if used_within[i] != Some(b) {
                used_within[i] = Some(b);
                reasons.push(format!("within-{} {d}", period.name()));
            }
        }
        for t in &policy.tags {
            if item.tags.contains(t) {
                reasons.push(format!("tag {t}"));
            }
        }
        out.push(Decision { id: item.id, time: item.time, keep: !reasons.is_empty(), reasons });
    }
    out
}

/// Keep rules as a person writes them, in a policy file (`keep-daily = 30`, `keep-within = "7y"`)
/// or as `--keep-*` flags; [`KeepRules::into_policy`] checks and converts them.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeepRules {
    /// `keep-last`.
    pub keep_last: Option<CountSpec>,
    /// `keep-hourly`.
    pub keep_hourly: Option<CountSpec>,
    /// `keep-daily`.
    pub keep_daily: Option<CountSpec>,
    /// `keep-weekly`.
    pub keep_weekly: Option<CountSpec>,
    /// `keep-monthly`.
    pub keep_monthly: Option<CountSpec>,
    /// `keep-yearly`.
    pub keep_yearly: Option<CountSpec>,
    /// `keep-within`, a [`CalendarDuration`].
    pub keep_within: Option<String>,
    /// `keep-within-hourly`.
    pub keep_within_hourly: Option<String>,
    /// `keep-within-daily`.
    pub keep_within_daily: Option<String>,
    /// `keep-within-weekly`.
    pub keep_within_weekly: Option<String>,
    /// `keep-within-monthly`.
    pub keep_within_monthly: Option<String>,
    /// `keep-within-yearly`.
    pub keep_within_yearly: Option<String>,
    /// `keep-tag`.
    #[serde(default)]
    pub keep_tag: Vec<String>,
}

/// A count as written: a number (`-1` is unlimited) or a word (`7`, `unlimited`).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum CountSpec {
    /// A TOML integer.
    N(i64),
    /// Text, parsed as a [`Count`].
    Word(String),
}

#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassToml {
    name: String,
    tags: Vec<String>,
    #[serde(flatten)]
    rules: KeepRules,
}

/// A policy file as written (docs/retention.md): `[[class]]` sections and `[default]`. Public so
/// that a larger TOML document (a job profile) can hold one as a table and report its unknown keys
/// with their lines; [`PolicyFile::from_toml`] checks and converts it.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyToml {
    #[serde(default)]
    class: Vec<ClassToml>,
    default: Option<KeepRules>,
}

impl KeepRules {
    /// Checks and converts the rules; errors start with `what` and name the rule. The result
    /// may be empty ([`Policy::is_empty`]); callers decide what that means.
    pub fn into_policy(self, what: &str) -> Result<Policy, String> {
        let count = |c: Option<CountSpec>, key: &str| -> Result<Option<Count>, String> {
            match c {
                None => Ok(None),
                Some(CountSpec::N(-1)) => Ok(Some(Count::Unlimited)),
                Some(CountSpec::N(n)) => u32::try_from(n)
                    .map(|n| Some(Count::Last(n)))
                    .map_err(|_| format!("{what}: {key} = {n} is not a count")),
                Some(CountSpec::Word(w)) => w.parse().map(Some).map_err(|e| format!("{what}: {key}: {e}")),
            }
        };
        let dur = |d: Option<String>, key: &str| -> Result<Option<CalendarDuration>, String> {
            d.map(|d| d.parse().map_err(|e| format!("{what}: {key}: {e}"))).transpose()
        };
        let mut p = Policy { last: count(self.keep_last, "keep-last")?, tags: self.keep_tag, ..Default::default() };
        for (period, c, key) in [
            (Period::Hourly, self.keep_hourly, "keep-hourly"),
            (Period::Daily, self.keep_daily, "keep-daily"),
            (Period::Weekly, self.keep_weekly, "keep-weekly"),
            (Period::Monthly, self.keep_monthly, "keep-monthly"),
            (Period::Yearly, self.keep_yearly, "keep-yearly"),
        ] {
            if let Some(c) = count(c, key)? {
                p.periods.push((period, c));
            }
        }
        p.within = dur(self.keep_within, "keep-within")?;
        for (period, d, key) in [
            (Period::Hourly, self.keep_within_hourly, "keep-within-hourly"),
            (Period::Daily, self.keep_within_daily, "keep-within-daily"),
            (Period::Weekly, self.keep_within_weekly, "keep-within-weekly"),
            (Period::Monthly, self.keep_within_monthly, "keep-within-monthly"),
            (Period::Yearly, self.keep_within_yearly, "keep-within-yearly"),
        ] {
            if let Some(d) = dur(d, key)? {
                p.within_periods.push((period, d));
            }
        }
        Ok(p)
    }
}

/// [`KeepRules::into_policy`] for a policy-file section, which must keep something.
fn section_policy(rules: KeepRules, what: &str) -> Result<Policy, String> {
    let p = rules.into_policy(what)?;
    if p.is_empty() {
        return Err(format!("{what}: no keep rule"));
    }
    Ok(p)
}

/// A named class of snapshots (by tag) with its own policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Class {
    /// Its name, for output.
    pub name: String,
    /// A snapshot carrying any of these tags belongs to the class.
    pub tags: Vec<String>,
    /// The rules for its snapshots.
    pub policy: Policy,
}

/// A policy file: classes by tag, and the default for snapshots no class claims (docs/retention.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFile {
    /// Classes, in file order.
    pub classes: Vec<Class>,
    /// Rules for snapshots in no class; `None` keeps them all.
    pub default: Option<Policy>,
}

impl PolicyFile {
    /// Parses the TOML text of a policy file.
    pub fn parse(text: &str) -> Result<PolicyFile, String> {
        let f: PolicyToml = toml::from_str(text).map_err(|e| e.to_string())?;
        PolicyFile::from_toml(f)
    }

    /// Checks and converts a policy as written: every class has tags and keeps something, and
    /// there is a class or a default.
    pub fn from_toml(f: PolicyToml) -> Result<PolicyFile, String> {
        let mut classes = Vec::new();
        for c in f.class {
            if c.tags.is_empty() {
                return Err(format!("class {:?}: `tags` is empty, so no snapshot could belong to it", c.name));
            }
            let policy = section_policy(c.rules, &format!("class {:?}", c.name))?;
            classes.push(Class { name: c.name, tags: c.tags, policy });
        }
        let default = f.default.map(|d| section_policy(d, "default")).transpose()?;
        if classes.is_empty() && default.is_none() {
            return Err("the policy file has neither a [[class]] nor a [default]".into());
        }
        Ok(PolicyFile { classes, default })
    }

    /// Applies the file to one group: each class's policy to the snapshots that carry its tags,
    /// the default to the rest. A snapshot in several classes is kept if any keeps it; with no
    /// default, snapshots in no class are kept (reason `no class`). Newest first.
    pub fn apply(&self, items: &[Item], tz: &TimeZone) -> Vec<Decision> {
        let mut verdicts: std::collections::BTreeMap<SnapshotId, Decision> = Default::default();
        let mut merge = |d: Decision, prefix: &str| {
            let e = verdicts.entry(d.id).or_insert(Decision { id: d.id, time: d.time, keep: false, reasons: vec![] });
            e.keep |= d.keep;
            e.reasons.extend(d.reasons.into_iter().map(|r| format!("{prefix}{r}")));
        };
        let mut unclaimed = Vec::new();
        for it in items {
            if !self.classes.iter().any(|c| c.tags.iter().any(|t| it.tags.contains(t))) {
                unclaimed.push(it.clone());
            }
        }
        for c in &self.classes {
            let members: Vec<Item> =
                items.iter().filter(|it| c.tags.iter().any(|t| it.tags.contains(t))).cloned().collect();
            for d in apply(&members, &c.policy, tz) {
                merge(d, &format!("{}: ", c.name));
            }
        }
        match &self.default {
            Some(p) => {
                for d in apply(&unclaimed, p, tz) {
                    merge(d, "");
                }
            }
            None => {
                for it in &unclaimed {
                    merge(Decision { id: it.id, time: it.time, keep: true, reasons: vec!["no class".into()] }, "");
                }
            }
        }
        let mut out: Vec<Decision> = verdicts.into_values().collect();
        out.sort_by_key(|d| std::cmp::Reverse((d.time, d.id)));
        out
    }
}

#[cfg(test)]
mod tests;
