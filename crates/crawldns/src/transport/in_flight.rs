//! The outstanding queries of one stream connection (RFC 7766 §6.2.1.1):
//! IDs unique on the connection, answers matched by ID and then by the exact
//! question, in any order. No I/O and no randomness of its own: the caller
//! passes the ID source, so tests are exact.

use std::collections::HashMap;

use hickory_proto::op::Message;

use crate::wire::{judge, peek_id, Question, Verdict};

/// How many IDs to draw before giving up on finding a free one (with at most
/// a few hundred in flight out of 65,536, one draw almost always does).
const ID_DRAWS: usize = 64;

/// Outstanding queries, each with what its asker waits on (`W`).
#[derive(Debug)]
pub struct InFlight<W> {
    entries: HashMap<u16, (Question, W)>,
    capacity: usize,
}

/// What a frame read from the connection meant.
#[derive(Debug)]
pub enum Matched<W> {
    /// The answer to an outstanding question: its waiter and the message.
    Answer(W, Message),
    /// Its ID and question match an outstanding one, but it does not parse.
    Malformed(W),
    /// It answers nothing outstanding (unknown ID, or another question):
    /// dropped.
    Unmatched,
}

impl<W> InFlight<W> {
    /// An empty table holding at most `capacity` queries.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Queries outstanding.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether no further query fits.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.capacity
    }

    /// Adds a query under an ID drawn from `next_id` that no outstanding
    /// query uses. Gives the waiter back when the table is full (or, in
    /// theory, no free ID was drawn).
    pub fn insert(
        &mut self,
        question: Question,
        waiter: W,
        next_id: &mut impl FnMut() -> u16,
    ) -> Result<u16, W> {
        if self.is_full() {
            return Err(waiter);
        }
        for _ in 0..ID_DRAWS {
            let id = next_id();
            if let std::collections::hash_map::Entry::Vacant(slot) = self.entries.entry(id) {
                slot.insert((question, waiter));
                return Ok(id);
            }
        }
        Err(waiter)
    }

    /// Forgets the query sent under `id` (its asker gave up), returning its
    /// waiter.
    pub fn remove(&mut self, id: u16) -> Option<W> {
        self.entries.remove(&id).map(|(_, waiter)| waiter)
    }

    /// Matches a frame read from the connection. The connection is not open
    /// to off-path forgery, so the name's case need not match unless
    /// `exact_case`.
    pub fn on_frame(&mut self, bytes: &[u8], exact_case: bool) -> Matched<W> {
        let Some(id) = peek_id(bytes) else {
            return Matched::Unmatched;
        };
        let Some((question, _)) = self.entries.get(&id) else {
            return Matched::Unmatched;
        };
        let verdict = judge(bytes, question, exact_case);
        match verdict {
            Verdict::Mismatch => Matched::Unmatched,
            Verdict::Answer(message) => match self.entries.remove(&id) {
                Some((_, waiter)) => Matched::Answer(waiter, message),
                None => Matched::Unmatched,
            },
            Verdict::Malformed => match self.entries.remove(&id) {
                Some((_, waiter)) => Matched::Malformed(waiter),
                None => Matched::Unmatched,
            },
        }
    }

    /// Empties the table (the connection closed), giving back every waiter.
    pub fn drain(&mut self) -> Vec<W> {
        self.entries
            .drain()
            .map(|(_, (_, waiter))| waiter)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};

    fn question(name: &str) -> Question {
        Question::new(name, RecordType::A, false).unwrap()
    }

    fn answer(id: u16, name: &str) -> Vec<u8> {
        let mut m = Message::response(id, hickory_proto::op::OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    }

    /// An ID source that replays a fixed list.
    fn ids(list: &[u16]) -> impl FnMut() -> u16 + '_ {
        let mut next = list.iter().copied().cycle();
        move || next.next().unwrap_or(0)
    }

    #[test]
    fn answers_match_out_of_order_by_id_and_question() {
        let mut table = InFlight::new(8);
        let mut next = ids(&[7, 9]);
        assert_eq!(table.insert(question("a.test"), "a", &mut next), Ok(7));
        assert_eq!(table.insert(question("b.test"), "b", &mut next), Ok(9));
        // b's answer first, then a's.
        assert!(matches!(
            table.on_frame(&answer(9, "b.test"), false),
            Matched::Answer("b", _)
        ));
        assert!(matches!(
            table.on_frame(&answer(7, "A.TEST"), false),
            Matched::Answer("a", _)
        ));
        assert!(table.is_empty());
    }

    #[test]
    fn a_right_id_with_another_question_is_dropped_and_the_query_waits() {
        let mut table = InFlight::new(8);
        let mut next = ids(&[7]);
        table.insert(question("a.test"), "a", &mut next).unwrap();
        assert!(matches!(
            table.on_frame(&answer(7, "other.test"), false),
            Matched::Unmatched
        ));
        assert!(matches!(
            table.on_frame(&answer(8, "a.test"), false),
            Matched::Unmatched
        ));
        assert!(matches!(table.on_frame(&[0x00], false), Matched::Unmatched));
        assert_eq!(table.len(), 1);
        assert!(matches!(
            table.on_frame(&answer(7, "a.test"), true),
            Matched::Answer("a", _)
        ));
    }

    #[test]
    fn ids_in_use_are_drawn_again() {
        let mut table = InFlight::new(8);
        let mut next = ids(&[5, 5, 5, 6]);
        assert_eq!(table.insert(question("a.test"), 1, &mut next), Ok(5));
        assert_eq!(table.insert(question("b.test"), 2, &mut next), Ok(6));
        // Only 5 and 6 ever come: no third ID can be found.
        let mut only = ids(&[5, 6]);
        assert_eq!(table.insert(question("c.test"), 3, &mut only), Err(3));
    }

    #[test]
    fn capacity_bounds_the_table_and_remove_frees_a_slot() {
        let mut table = InFlight::new(2);
        let mut next = ids(&[1, 2, 3]);
        table.insert(question("a.test"), 'a', &mut next).unwrap();
        table.insert(question("b.test"), 'b', &mut next).unwrap();
        assert!(table.is_full());
        assert_eq!(table.insert(question("c.test"), 'c', &mut next), Err('c'));
        assert_eq!(table.remove(1), Some('a'));
        assert_eq!(table.remove(1), None);
        assert_eq!(table.insert(question("c.test"), 'c', &mut next), Ok(3));
        let mut left = table.drain();
        left.sort_unstable();
        assert_eq!(left, vec!['b', 'c']);
        assert!(table.is_empty());
    }

    #[test]
    fn a_matching_frame_that_does_not_parse_is_malformed() {
        let mut table = InFlight::new(2);
        let mut next = ids(&[0x1234]);
        table.insert(question("a.test"), 'a', &mut next).unwrap();
        let mut bytes = answer(0x1234, "a.test");
        // Claim one answer record that is not there.
        bytes[7] = 1;
        assert!(matches!(
            table.on_frame(&bytes, false),
            Matched::Malformed('a')
        ));
    }
}
