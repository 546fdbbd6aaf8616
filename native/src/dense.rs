//! A map from interned texts (small dense numbers) to indexes, kept as a vector: one read
//! per look-up, in a table as long as the texts (a few bytes a subject), where a hash map's
//! probe would leave the caches on a long history.

/// `sym -> index`, with the hash map's `get`, `insert` and `[&sym]`.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct SymIx {
    at: Vec<usize>, // per sym: its index, or usize::MAX
}

impl SymIx {
    pub(crate) fn get(&self, sym: &u32) -> Option<&usize> {
        self.at.get(*sym as usize).filter(|&&i| i != usize::MAX)
    }

    pub(crate) fn insert(&mut self, sym: u32, i: usize) {
        let s = sym as usize;
        if s >= self.at.len() {
            self.at.resize(s + 1, usize::MAX);
        }
        self.at[s] = i;
    }
}

impl std::ops::Index<&u32> for SymIx {
    type Output = usize;

    fn index(&self, sym: &u32) -> &usize {
        self.get(sym).expect("a subject of the evaluation")
    }
}
