//! The ledger as a DAG (format-spec §13.4, §13.6): its heads, the reading order, and the one-line
//! head an operator anchors outside the repository. Pure: no I/O, no keys.

use crate::id::{EntryId, RepoId};
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The heads of a set of entries: those no entry of the set names as a parent, sorted.
pub fn heads<'a>(entries: impl IntoIterator<Item = (&'a EntryId, &'a [EntryId])> + Clone) -> Vec<EntryId> {
    let named: HashSet<EntryId> = entries.clone().into_iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let mut out: Vec<EntryId> = entries.into_iter().map(|(id, _)| *id).filter(|id| !named.contains(id)).collect();
    out.sort();
    out.dedup();
    out
}

/// The reading order (format-spec §13.4): parents before children; among entries whose parents
/// are all placed, the earliest time first, then the smallest id. A parent outside the set is
/// ignored; entries left in a cycle (impossible with honest ids) follow in (time, id) order.
pub fn order(entries: &[(EntryId, Time, Vec<EntryId>)]) -> Vec<EntryId> {
    let present: HashSet<EntryId> = entries.iter().map(|e| e.0).collect();
    let mut waiting: HashMap<EntryId, usize> = HashMap::new();
    let mut children: HashMap<EntryId, Vec<usize>> = HashMap::new();
    let mut ready: BTreeSet<(Time, EntryId, usize)> = BTreeSet::new();
    for (i, (id, time, parents)) in entries.iter().enumerate() {
        let ps: BTreeSet<&EntryId> = parents.iter().filter(|p| present.contains(p) && *p != id).collect();
        for p in &ps {
            children.entry(**p).or_default().push(i);
        }
        if ps.is_empty() {
            ready.insert((*time, *id, i));
        } else {
            waiting.insert(*id, ps.len());
        }
    }
    let mut out = Vec::with_capacity(entries.len());
    let mut placed: HashSet<EntryId> = HashSet::new();
    while let Some(first) = ready.pop_first() {
        let (_, id, _) = first;
        if !placed.insert(id) {
            continue;
        }
        out.push(id);
        for &c in children.get(&id).map(Vec::as_slice).unwrap_or(&[]) {
            let (cid, ctime, _) = &entries[c];
            if let Some(n) = waiting.get_mut(cid) {
                *n -= 1;
                if *n == 0 {
                    waiting.remove(cid);
                    ready.insert((*ctime, *cid, c));
                }
            }
        }
    }
    let mut rest: BTreeMap<(Time, EntryId), ()> = BTreeMap::new();
    for (id, time, _) in entries {
        if !placed.contains(id) {
            rest.insert((*time, *id), ());
        }
    }
    for ((_, id), ()) in rest {
        if placed.insert(id) {
            out.push(id);
        }
    }
    out
}

/// The word a head line starts with.
pub const HEAD_WORD: &str = "cairn-ledger-head";

/// The digest of a head line: the first 16 hex digits of `BLAKE3("cairn ledger head v1" ‖ repo id
/// ‖ count as u64le ‖ heads, sorted)`.
pub fn head_digest(repo: &RepoId, count: u64, heads: &[EntryId]) -> String {
    let mut sorted = heads.to_vec();
    sorted.sort();
    let mut h = blake3::Hasher::new();
    h.update(b"cairn ledger head v1");
    h.update(&repo.0);
    h.update(&count.to_le_bytes());
    for id in &sorted {
        h.update(&id.0);
    }
    h.finalize().to_hex()[..16].to_string()
}

/// The one-line head (format-spec §13.6): `cairn-ledger-head <entries> <head,head,...|-> <digest>`.
pub fn head_line(repo: &RepoId, count: u64, heads: &[EntryId]) -> String {
    let mut sorted = heads.to_vec();
    sorted.sort();
    let list = if sorted.is_empty() {
        "-".to_string()
    } else {
        sorted.iter().map(EntryId::to_hex).collect::<Vec<_>>().join(",")
    };
    format!("{HEAD_WORD} {count} {list} {}", head_digest(repo, count, &sorted))
}

/// Parses a head line for repository `repo`: the entry count and the heads. Refuses a line of
/// another repository or with a wrong digest (a mistyped or edited anchor).
pub fn parse_head_line(repo: &RepoId, line: &str) -> Result<(u64, Vec<EntryId>), String> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let [word, count, list, digest] = parts.as_slice() else {
        return Err(format!("not a ledger head line (want `{HEAD_WORD} <entries> <heads> <digest>`)"));
    };
    if *word != HEAD_WORD {
        return Err(format!("not a ledger head line (it does not start with {HEAD_WORD})"));
    }
    let count: u64 = count.parse().map_err(|_| format!("entry count {count:?} is not a number"))?;
    let heads = if *list == "-" {
        Vec::new()
    } else {
        list.split(',')
            .map(|h| EntryId::from_hex(h).ok_or_else(|| format!("{h:?} is not an entry id")))
            .collect::<Result<Vec<_>, _>>()?
    };
    if head_digest(repo, count, &heads) != *digest {
        return Err("the head line's digest does not match (mistyped, edited, or of another repository)".into());
    }
    Ok((count, heads))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> EntryId {
        EntryId([b; 32])
    }
    fn t(s: i64) -> Time {
        Time { secs: s, nanos: 0 }
    }

    #[test]
    fn order_is_topological_then_time_then_id() {
        // 1 ← 2, 1 ← 3 (3 is earlier than 2), {2,3} ← 4; 5 is a second root, earliest of all.
        let entries = vec![
            (id(4), t(10), vec![id(2), id(3)]),
            (id(2), t(5), vec![id(1)]),
            (id(3), t(4), vec![id(1)]),
            (id(1), t(3), vec![]),
            (id(5), t(1), vec![]),
            // Its parent is missing: it is ordered as a root.
            (id(6), t(2), vec![id(9)]),
        ];
        assert_eq!(order(&entries), vec![id(5), id(6), id(1), id(3), id(2), id(4)]);
        // A child dated before its parent still follows it.
        let skew = vec![(id(2), t(1), vec![id(1)]), (id(1), t(9), vec![])];
        assert_eq!(order(&skew), vec![id(1), id(2)]);
        // Equal times: the smaller id first.
        assert_eq!(order(&[(id(8), t(1), vec![]), (id(7), t(1), vec![])]), vec![id(7), id(8)]);
    }

    #[test]
    fn heads_are_the_entries_nobody_names() {
        let e = [(id(1), vec![]), (id(2), vec![id(1)]), (id(3), vec![id(1)])];
        assert_eq!(heads(e.iter().map(|(i, p)| (i, p.as_slice()))), vec![id(2), id(3)]);
    }

    #[test]
    fn a_head_line_round_trips_and_refuses_edits() {
        let repo = RepoId([3; 32]);
        let line = head_line(&repo, 7, &[id(2), id(1)]);
        assert!(line.starts_with(&format!("cairn-ledger-head 7 {},{} ", id(1), id(2))), "{line}");
        assert_eq!(parse_head_line(&repo, &line), Ok((7, vec![id(1), id(2)])));
        assert_eq!(parse_head_line(&repo, &head_line(&repo, 0, &[])), Ok((0, vec![])));
        assert!(parse_head_line(&RepoId([4; 32]), &line).is_err(), "another repository");
        assert!(parse_head_line(&repo, &line.replace(" 7 ", " 6 ")).is_err(), "count edited");
        let dropped = head_line(&repo, 7, &[id(1)]);
        let forged = format!("{} {}", &dropped[..dropped.rfind(' ').unwrap()], &line[line.rfind(' ').unwrap() + 1..]);
        assert!(parse_head_line(&repo, &forged).is_err(), "a head dropped");
        for bad in ["", "cairn-ledger-head", "x 1 - 0000000000000000", "cairn-ledger-head 1 zz 00"] {
            assert!(parse_head_line(&repo, bad).is_err(), "{bad:?}");
        }
    }
}
