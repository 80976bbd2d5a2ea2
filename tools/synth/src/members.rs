//! Membership bookkeeping of one room: who is joined, who has left.
//!
//! Users are numbered locally (`0..`); both sets support O(1) random choice
//! and removal (swap-remove with a position table).

use crate::rng::Rng;

/// A local user's current membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// `join`.
    Joined,
    /// `leave` (also stands for kicks and bans).
    Left,
}

/// Membership of one room's users.
#[derive(Debug, Default)]
pub(crate) struct Members {
    status: Vec<Membership>,
    /// Position of each user in `joined` or `left`, by its status.
    pos: Vec<u32>,
    joined: Vec<u32>,
    left: Vec<u32>,
}

impl Members {
    /// Number of users ever seen.
    pub(crate) fn users(&self) -> u32 {
        self.status.len() as u32
    }

    /// Number of users currently joined.
    pub(crate) fn joined_count(&self) -> usize {
        self.joined.len()
    }

    /// Number of users who have left.
    #[cfg(test)]
    pub(crate) fn left_count(&self) -> usize {
        self.left.len()
    }

    /// Currently joined users, in no meaningful (but deterministic) order.
    pub(crate) fn joined(&self) -> &[u32] {
        &self.joined
    }

    /// A user's membership, if it was ever seen.
    pub(crate) fn status(&self, user: u32) -> Option<Membership> {
        self.status.get(user as usize).copied()
    }

    /// A random joined user, if any.
    pub(crate) fn random_joined(&self, rng: &mut Rng) -> Option<u32> {
        (!self.joined.is_empty()).then(|| self.joined[rng.index(self.joined.len())])
    }

    /// A random user who has left, if any.
    pub(crate) fn random_left(&self, rng: &mut Rng) -> Option<u32> {
        (!self.left.is_empty()).then(|| self.left[rng.index(self.left.len())])
    }

    /// Adds the next new user, joined; returns its number.
    pub(crate) fn add_joined(&mut self) -> u32 {
        let user = self.status.len() as u32;
        self.status.push(Membership::Joined);
        self.pos.push(self.joined.len() as u32);
        self.joined.push(user);
        user
    }

    /// Sets a known user's membership.
    pub(crate) fn set(&mut self, user: u32, to: Membership) {
        let u = user as usize;
        let from = self.status[u];
        if from == to {
            return;
        }
        let p = self.pos[u] as usize;
        let (src, dst) = match from {
            Membership::Joined => (&mut self.joined, &mut self.left),
            Membership::Left => (&mut self.left, &mut self.joined),
        };
        src.swap_remove(p);
        if let Some(&moved) = src.get(p) {
            self.pos[moved as usize] = p as u32;
        }
        self.pos[u] = dst.len() as u32;
        dst.push(user);
        self.status[u] = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_leave_rejoin() {
        let mut m = Members::default();
        let a = m.add_joined();
        let b = m.add_joined();
        let c = m.add_joined();
        m.set(a, Membership::Left);
        assert_eq!(m.joined_count(), 2);
        assert_eq!(m.left_count(), 1);
        m.set(c, Membership::Left);
        m.set(a, Membership::Joined);
        assert_eq!(m.joined().len(), 2);
        assert!(m.joined().contains(&a) && m.joined().contains(&b));
        assert_eq!(m.status(c), Some(Membership::Left));
        let mut r = Rng::new(0, 0);
        assert_eq!(m.random_left(&mut r), Some(c));
    }
}
