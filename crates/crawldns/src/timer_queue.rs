//! A queue of timers that is cheap when they come in order.
//!
//! Most of a resolver's deadlines are "now + the same timeout", so each is
//! later than the one before: those go to the back of a deque, O(1) in and
//! out. The few that are not (a re-armed checkpoint, a backed-off retry,
//! a budget's end) go to a heap. The earliest is the earlier of the two
//! fronts. No clock: times are the caller's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Timers `(when, what)`, earliest first.
#[derive(Debug)]
pub(crate) struct TimerQueue<T: Ord> {
    in_order: VecDeque<T>,
    out_of_order: BinaryHeap<Reverse<T>>,
}

impl<T: Ord + Copy> TimerQueue<T> {
    pub fn new() -> Self {
        Self {
            in_order: VecDeque::new(),
            out_of_order: BinaryHeap::new(),
        }
    }

    /// Adds an out-of-the-ordinary `timer` (a second wait, a budget's
    /// end): to the heap, so that a late one never stands at the deque's
    /// back and sends every ordinary timer after it to the heap too.
    pub fn push_other(&mut self, timer: T) {
        self.out_of_order.push(Reverse(timer));
    }

    /// Adds `timer` (ordered by its first field: when).
    pub fn push(&mut self, timer: T) {
        match self.in_order.back() {
            Some(last) if timer < *last => self.out_of_order.push(Reverse(timer)),
            _ => self.in_order.push_back(timer),
        }
    }

    /// The earliest timer.
    pub fn peek(&self) -> Option<T> {
        match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(a), Some(Reverse(b))) => Some(*a.min(b)),
            (Some(a), None) => Some(*a),
            (None, Some(Reverse(b))) => Some(*b),
            (None, None) => None,
        }
    }

    /// Removes and returns the earliest timer.
    pub fn pop(&mut self) -> Option<T> {
        let from_heap = match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(a), Some(Reverse(b))) => b < a,
            (None, Some(_)) => true,
            _ => false,
        };
        if from_heap {
            self.out_of_order.pop().map(|Reverse(t)| t)
        } else {
            self.in_order.pop_front()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_come_out_earliest_first_in_order_or_not() {
        let mut q = TimerQueue::new();
        for t in [10, 20, 20, 30, 15, 5, 40, 25] {
            q.push((t, 0u32));
        }
        let mut out = Vec::new();
        while let Some((t, _)) = q.pop() {
            out.push(t);
        }
        assert_eq!(out, [5, 10, 15, 20, 20, 25, 30, 40]);
        assert_eq!(q.peek(), None);
    }

    #[test]
    fn a_late_other_timer_does_not_push_the_ordinary_ones_to_the_heap() {
        let mut q = TimerQueue::new();
        q.push((10, 0u32));
        q.push_other((1000, 1));
        for t in 11..20 {
            q.push((t, 2));
        }
        assert_eq!(q.out_of_order.len(), 1);
        let order: Vec<u32> = std::iter::from_fn(|| q.pop()).map(|(t, _)| t).collect();
        assert_eq!(order, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 1000]);
    }

    #[test]
    fn in_order_timers_never_touch_the_heap() {
        let mut q = TimerQueue::new();
        for t in 0..1000u32 {
            q.push((t, t));
        }
        assert!(q.out_of_order.is_empty());
        assert_eq!(q.peek(), Some((0, 0)));
    }
}
