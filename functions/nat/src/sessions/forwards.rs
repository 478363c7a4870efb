//! Port forwards (static mappings) in a worker's table: added when the
//! table is made and whenever a new set is published (a reload, `nfv ctl
//! nat forward`), removed likewise. A forward's outside port leaves the
//! dynamic ports of this worker's share; a dynamic mapping on either of
//! its endpoints is ended first (its sessions removed and counted): the
//! operator's forward wins.

use super::{Forward, NatTable, proto_slot};

impl NatTable {
    /// Adds forward `f`; returns how many sessions of dynamic mappings it
    /// ended.
    pub fn add_forward(&mut self, f: Forward) -> usize {
        let (p, in_addr, in_port, out_addr, out_port) = f;
        let mut ended = 0;
        if let Some(m) = self.find_mapping_outside(p, out_addr, out_port) {
            ended += self.end_mapping(m);
        }
        if let Some(m) = self.find_mapping_inside(p, in_addr, in_port) {
            ended += self.end_mapping(m);
        }
        if let Some(i) = self.pool.iter().position(|&a| a == out_addr) {
            let map = &mut self.ports[i][proto_slot(p)];
            if map.owns(out_port) {
                map.take(out_port);
            }
        }
        self.add_mapping(p, in_addr, in_port, out_addr, out_port, true);
        self.stats.forward_ended += ended as u64;
        ended
    }

    /// Removes forward `f` and its sessions (its port goes back to the
    /// dynamic ones); returns how many sessions ended.
    pub fn remove_forward(&mut self, f: Forward) -> usize {
        let (p, _, _, out_addr, out_port) = f;
        match self.find_mapping_outside(p, out_addr, out_port) {
            Some(m) if self.mappings[m as usize].fixed => self.end_mapping(m),
            _ => 0,
        }
    }

    /// Ends mapping `id`: every session, then the mapping itself (a
    /// dynamic one goes with its last session).
    fn end_mapping(&mut self, id: u32) -> usize {
        let mut ended = 0;
        // By count: a dynamic mapping is freed with its last session, and
        // its `first` then links the free list.
        while self.mappings[id as usize].sessions > 0 {
            self.remove(self.mappings[id as usize].first);
            ended += 1;
        }
        if self.mappings[id as usize].fixed {
            self.remove_mapping(id);
        }
        ended
    }
}
