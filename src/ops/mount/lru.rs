//! A least-recently-used map bounded by bytes: the blob cache of `mount` (decrypted data blobs) and
//! its cache of directory listings. An entry larger than the whole budget is not kept.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// A map from `K` to shared `V`s whose costs sum to at most a budget; inserting past it drops the
/// least recently used entries first.
pub struct Lru<K, V> {
    budget: u64,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    /// Each key's value, cost and last use.
    map: HashMap<K, (Arc<V>, u64, u64)>,
    /// Last use → key, oldest first.
    order: BTreeMap<u64, K>,
    tick: u64,
    bytes: u64,
}

impl<K: Clone + Eq + Hash, V> Lru<K, V> {
    /// An empty cache that holds at most `budget` bytes of cost.
    pub fn new(budget: u64) -> Self {
        Lru { budget, inner: Mutex::new(Inner { map: HashMap::new(), order: BTreeMap::new(), tick: 0, bytes: 0 }) }
    }

    /// The value of `k`, now the most recently used.
    pub fn get(&self, k: &K) -> Option<Arc<V>> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *g;
        inner.tick += 1;
        let tick = inner.tick;
        let (v, _, used) = inner.map.get_mut(k)?;
        inner.order.remove(used);
        *used = tick;
        inner.order.insert(tick, k.clone());
        Some(v.clone())
    }

    /// Keeps `v` under `k` at `cost` bytes, dropping the least recently used entries to stay within
    /// the budget; returns `v` shared.
    pub fn insert(&self, k: K, v: V, cost: u64) -> Arc<V> {
        let v = Arc::new(v);
        if cost > self.budget {
            return v;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *g;
        if let Some((_, c, used)) = inner.map.remove(&k) {
            inner.order.remove(&used);
            inner.bytes -= c;
        }
        while inner.bytes + cost > self.budget {
            let Some((_, old)) = inner.order.pop_first() else { break };
            if let Some((_, c, _)) = inner.map.remove(&old) {
                inner.bytes -= c;
            }
        }
        inner.tick += 1;
        let tick = inner.tick;
        inner.order.insert(tick, k.clone());
        inner.map.insert(k, (v.clone(), cost, tick));
        inner.bytes += cost;
        v
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).map.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_leave_first_and_the_budget_holds() {
        let c: Lru<u32, Vec<u8>> = Lru::new(100);
        c.insert(1, vec![1; 40], 40);
        c.insert(2, vec![2; 40], 40);
        assert!(c.get(&1).is_some(), "1 is now the most recently used");
        c.insert(3, vec![3; 40], 40);
        assert!(c.get(&2).is_none(), "2 was the least recently used");
        assert_eq!((c.get(&1).unwrap()[0], c.get(&3).unwrap()[0]), (1, 3));
        assert_eq!((c.len(), c.bytes()), (2, 80));
        // Larger than the whole budget: handed back, not kept, nothing dropped for it.
        assert_eq!(c.insert(4, vec![4; 101], 101).len(), 101);
        assert_eq!((c.len(), c.bytes()), (2, 80));
        // Replacing a key counts its new cost only.
        c.insert(3, vec![3; 60], 60);
        assert_eq!((c.len(), c.bytes()), (2, 100));
        c.insert(5, vec![5; 10], 10);
        assert!(c.get(&1).is_none());
        assert_eq!(c.bytes(), 70);
    }
}
