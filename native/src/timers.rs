//! The timer queue of one evaluation: deadlines, renewals, ticks and metric closes, popped in
//! the order `(instant key, sequence number)` as a binary heap pops them.
//!
//! A long history keeps hundreds of thousands of deadlines pending (a met duty's deadline
//! stays queued until it passes), and a heap's every push and pop walks a path through all of
//! them: on a history ten times longer that walk leaves the caches and the cost per event
//! grows. Most deadlines are pushed in order: one kind of duty, due a fixed time after
//! events that come in time order. Each kind gets its own lane, a FIFO read at its front;
//! a small heap orders the lanes by their fronts. An entry pushed before its lane's last
//! one goes to a plain heap instead, so the order popped is exactly the heap's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

pub(crate) type Item = Reverse<(i64, u64, usize)>; // (key, sequence, what fires)

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Timers {
    lanes: Vec<VecDeque<Item>>,
    heads: BinaryHeap<(Item, usize)>, // each non-empty lane's front, and the lane
    spill: BinaryHeap<Item>,          // what came out of order in its lane, or has no lane
}

impl Timers {
    /// An entry without a lane (the few renewals, ticks and closes).
    pub(crate) fn push(&mut self, item: Item) {
        self.spill.push(item);
    }

    /// An entry of `lane`; the sequence numbers only grow, so an entry whose key is not
    /// below the lane's last one is in order in it.
    pub(crate) fn push_in(&mut self, item: Item, lane: usize) {
        if lane >= self.lanes.len() {
            self.lanes.resize_with(lane + 1, VecDeque::new);
        }
        let q = &mut self.lanes[lane];
        match q.back() {
            Some(last) if last.0 > item.0 => self.spill.push(item),
            Some(_) => q.push_back(item),
            None => {
                q.push_back(item);
                self.heads.push((item, lane));
            }
        }
    }

    fn lane_first(&self) -> Option<bool> {
        match (self.heads.peek(), self.spill.peek()) {
            (None, None) => None,
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (Some(h), Some(s)) => Some(h.0 > *s), // `Reverse`: the greater is the earlier
        }
    }

    /// The earliest entry.
    pub(crate) fn peek(&self) -> Option<&Item> {
        match self.lane_first()? {
            true => self.heads.peek().map(|h| &h.0),
            false => self.spill.peek(),
        }
    }

    /// Remove the earliest entry.
    pub(crate) fn pop(&mut self) -> Option<Item> {
        if !self.lane_first()? {
            return self.spill.pop();
        }
        let (item, lane) = self.heads.pop()?;
        let q = &mut self.lanes[lane];
        q.pop_front();
        if let Some(&front) = q.front() {
            self.heads.push((front, lane));
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any mix of lanes and keys pops in the heap's order.
    #[test]
    fn pops_as_a_heap() {
        let mut t = Timers::default();
        let mut h = BinaryHeap::new();
        let mut x: u64 = 12345;
        for seq in 0..5000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let key = (seq as i64) / 3 + ((x >> 33) % 40) as i64;
            let item = Reverse((key, seq, (x >> 20) as usize % 7));
            match (x >> 40) % 5 {
                0 => t.push(item),
                l => t.push_in(item, l as usize),
            }
            h.push(item);
            if (x >> 50) % 3 == 0 {
                assert_eq!(t.peek(), h.peek());
                assert_eq!(t.pop(), h.pop());
            }
        }
        while let Some(item) = h.pop() {
            assert_eq!(t.pop(), Some(item));
        }
        assert_eq!(t.pop(), None);
    }
}
