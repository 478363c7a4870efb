//! Partitioned HyperSplit: a few binary decision trees over the rule boxes.
//!
//! Each tree node splits its region in two along one dimension at one
//! threshold; a rule goes to every side it overlaps (HyperSplit, Qi et al.,
//! INFOCOM 2009). The threshold is the one that best balances the two
//! sides, the dimension the one whose split leaves the smaller larger side.
//! Leaves hold at most `leaf_size` rules in priority order, scanned
//! branch-free. Within a region, the rules after the first one that covers
//! it entirely can never win there and are cut (redundancy removal).
//!
//! Wide rules (a wildcard source, say) would be copied into most leaves of
//! a tree split on that field, so rules are first partitioned by which
//! fields are narrow (CutSplit, Li et al., INFOCOM 2018, does the same):
//! one tree per partition. A lookup walks the trees in the order of their
//! best rule and stops as soon as the next tree cannot hold a better match.

use std::time::{Duration, Instant};

use super::{FieldBox, Key, NO_MATCH};

const LEAF: u8 = u8::MAX;

/// Keys walked down a tree together by [`SplitForest::classify_batch`].
const LANES: usize = 32;

/// A node as built: an inner split (`key[dim] < thr` goes to `a`, else
/// `b`) or, with `dim == LEAF`, a leaf of `leaf_rules[a..a + b]`.
#[derive(Clone, Copy, Debug)]
struct BuildNode {
    thr: u32,
    a: u32,
    b: u32,
    dim: u8,
}

/// A node as looked up: `child[(key[dim] >= thr) as usize]` is next. A
/// leaf is a node that leads to itself (both children are the leaf, `dim`
/// 0): a walk is then the tree's depth in steps without a branch,
/// whichever leaf a key reaches. A leaf's `thr` is free for the index of
/// its first chunk ([`NO_CHUNKS`] for an empty leaf), so the scan starts
/// with no further lookup.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
struct Node {
    thr: u32,
    dim: u32,
    child: [u32; 2],
}

/// A leaf's `thr` when it holds no rule.
const NO_CHUNKS: u32 = u32::MAX;

/// How the trees are built.
#[derive(Clone, Copy, Debug)]
pub struct SplitParams {
    /// Rules a leaf may hold before it is split.
    pub leaf_size: usize,
    /// Deepest a tree may grow; a leaf there holds what is left.
    pub max_depth: usize,
    /// Rule copies (leaf entries) allowed per rule over the whole forest:
    /// past that budget, only splits that copy nothing are taken, so
    /// memory stays bounded whatever the rules.
    pub copies_per_rule: usize,
    /// A tree whose partition names a dimension to cut starts with a table
    /// indexed by that many leading bits of it (HiCuts' equal-size cut),
    /// in place of the first dozen binary steps; 0: no table.
    pub cut_bits: u32,
}

impl Default for SplitParams {
    fn default() -> Self {
        Self { leaf_size: 8, max_depth: 48, copies_per_rule: 8, cut_bits: 12 }
    }
}

/// What building cost and what it made, for the operator.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildStats {
    /// Rules classified.
    pub rules: usize,
    /// Trees (non-empty partitions).
    pub trees: usize,
    /// Inner nodes and leaves.
    pub nodes: usize,
    /// Leaves.
    pub leaves: usize,
    /// Rule references in all leaves (rules are copied into every leaf
    /// they overlap: this over `rules` is the replication factor).
    pub leaf_entries: usize,
    /// Deepest leaf.
    pub depth: usize,
    /// Bytes of the lookup structures (rules, nodes, leaf lists).
    pub bytes: usize,
    /// Wall time of the build.
    pub build_time: Duration,
}

#[derive(Clone)]
struct Tree {
    /// The root node, or with a cut the table of subtree roots at
    /// `tables[root..]`, indexed by `key[cut_dim] >> cut_shift`.
    root: u32,
    cut: Option<(u32, u32)>,
    /// Its best (lowest-numbered) rule: no match in it can beat this.
    first_rule: u32,
    /// Steps from the root to its deepest leaf.
    depth: u32,
}

/// The fast classifier; immutable once built (updates build a new one).
#[derive(Clone)]
pub struct SplitForest<const D: usize> {
    nodes: Vec<Node>,
    tables: Vec<u32>,
    chunks: Vec<Chunk<D>>,
    trees: Vec<Tree>,
    stats: BuildStats,
    /// The CPU has AVX2: batches take the AVX2 build of the lookup.
    avx2: bool,
}

/// Rules in one [`Chunk`]: one compare instruction covers them all.
const CHUNK: usize = 8;

/// Up to [`CHUNK`] rules of a leaf, in priority order, stored by dimension
/// so that matching a key against all of them is a few vector compares
/// (the compiler vectorises [`Chunk::matches`]). A leaf's rules are copies
/// laid out in its chunks, so a leaf scan reads consecutive memory.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Chunk<const D: usize> {
    lo: [[u32; CHUNK]; D],
    width: [[u32; CHUNK]; D],
    mask: [u32; CHUNK],
    value: [u32; CHUNK],
    /// Rule number of each lane; unused lanes never match.
    rule: [u32; CHUNK],
    /// The leaf's last chunk (in the alignment padding: costs no memory).
    last: bool,
}

impl<const D: usize> Chunk<D> {
    fn new(rules: &[FieldBox<D>], ids: &[u32]) -> Self {
        // An unused lane: no extra word has bit 0 clear under mask 0 yet
        // equal to 1.
        let mut c = Chunk {
            lo: [[0; CHUNK]; D],
            width: [[0; CHUNK]; D],
            mask: [0; CHUNK],
            value: [1; CHUNK],
            rule: [NO_MATCH; CHUNK],
            last: false,
        };
        for (j, &id) in ids.iter().enumerate() {
            let r = &rules[id as usize];
            for d in 0..D {
                c.lo[d][j] = r.lo[d];
                c.width[d][j] = r.width[d];
            }
            (c.mask[j], c.value[j], c.rule[j]) = (r.mask, r.value, id);
        }
        c
    }

    /// Bit `j` set when lane `j` holds `k`.
    #[inline(always)]
    fn matches(&self, k: &Key<D>) -> u32 {
        let mut ok: [u32; CHUNK] = std::array::from_fn(|j| ((k.extra & self.mask[j]) == self.value[j]) as u32);
        for (d, &v) in k.dims.iter().enumerate() {
            let (lo, width) = (&self.lo[d], &self.width[d]);
            for (j, o) in ok.iter_mut().enumerate() {
                *o &= (v.wrapping_sub(lo[j]) <= width[j]) as u32;
            }
        }
        let mut bits = 0;
        for (j, &o) in ok.iter().enumerate() {
            bits |= o << j;
        }
        bits
    }

    /// [`Self::matches`] in AVX2: the 8 lanes of a dimension are one
    /// register; `key - lo <= width` (unsigned) is `min(key - lo, width)
    /// == key - lo`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    fn matches_avx2(&self, k: &Key<D>) -> u32 {
        use std::arch::x86_64::*;
        // SAFETY (loads): every row is [u32; 8], 32 bytes, and the chunk is
        // 64-byte aligned with rows at multiples of 32 bytes.
        let row = |r: &[u32; CHUNK]| unsafe { _mm256_load_si256(r.as_ptr().cast()) };
        let extra = _mm256_set1_epi32(k.extra as i32);
        let mut ok = _mm256_cmpeq_epi32(_mm256_and_si256(extra, row(&self.mask)), row(&self.value));
        for (d, &v) in k.dims.iter().enumerate() {
            let diff = _mm256_sub_epi32(_mm256_set1_epi32(v as i32), row(&self.lo[d]));
            ok = _mm256_and_si256(ok, _mm256_cmpeq_epi32(_mm256_min_epu32(diff, row(&self.width[d])), diff));
        }
        _mm256_movemask_ps(_mm256_castsi256_ps(ok)) as u32
    }
}

impl<const D: usize> SplitForest<D> {
    /// Builds the trees; rule `i` has priority `i` (0 first). `partition`
    /// names each rule's partition (a small number; rules alike in which
    /// fields are wide share a tree) and the dimension its tree is first
    /// cut on, if any (one the partition's rules are narrow in).
    pub fn build(
        rules: Vec<FieldBox<D>>,
        partition: impl Fn(&FieldBox<D>) -> (usize, Option<usize>),
        params: SplitParams,
    ) -> Self {
        let start = Instant::now();
        let mut groups: Vec<(Vec<u32>, Option<usize>)> = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let (g, cut) = partition(r);
            if groups.len() <= g {
                groups.resize_with(g + 1, || (Vec::new(), None));
            }
            groups[g].0.push(i as u32);
            groups[g].1 = cut;
        }
        let mut b = Builder {
            rules: &rules,
            nodes: Vec::new(),
            leaf_rules: Vec::new(),
            params,
            depth: 0,
            copies: 0,
            copy_budget: rules.len().saturating_mul(params.copies_per_rule.saturating_sub(1)),
        };
        let mut tables = Vec::new();
        let mut trees: Vec<Tree> = groups
            .into_iter()
            .filter(|g| !g.0.is_empty())
            .map(|(g, cut)| {
                let first_rule = g[0];
                b.depth = 0;
                match cut.filter(|_| params.cut_bits > 0) {
                    None => {
                        let root = b.node(g, [0; D], [u32::MAX; D], 0);
                        Tree { root, cut: None, first_rule, depth: b.depth as u32 }
                    }
                    Some(d) => {
                        let root = tables.len() as u32;
                        let shift = 32 - params.cut_bits.min(24);
                        b.cut(&g, d, shift, &mut tables);
                        Tree { root, cut: Some((d as u32, shift)), first_rule, depth: b.depth as u32 }
                    }
                }
            })
            .collect();
        trees.sort_by_key(|t| t.first_rule);
        let (built, leaf_rules) = (b.nodes, b.leaf_rules);
        // Leaves point at their rule copies, CHUNK at a time.
        let (mut nodes, mut leaves, mut chunks) = (Vec::with_capacity(built.len()), 0, Vec::<Chunk<D>>::new());
        for (at, n) in built.iter().enumerate() {
            if n.dim == LEAF {
                let ids = &leaf_rules[n.a as usize..(n.a + n.b) as usize];
                let first = chunks.len() as u32;
                chunks.extend(ids.chunks(CHUNK).map(|ids| Chunk::new(&rules, ids)));
                if let Some(c) = chunks.last_mut().filter(|_| !ids.is_empty()) {
                    c.last = true;
                }
                leaves += 1;
                let thr = if ids.is_empty() { NO_CHUNKS } else { first };
                nodes.push(Node { thr, dim: 0, child: [at as u32; 2] });
            } else {
                nodes.push(Node { thr: n.thr, dim: n.dim as u32, child: [n.a, n.b] });
            }
        }
        let stats = BuildStats {
            rules: rules.len(),
            trees: trees.len(),
            nodes: nodes.len(),
            leaves,
            leaf_entries: leaf_rules.len(),
            depth: trees.iter().map(|t| t.depth as usize).max().unwrap_or(0),
            bytes: nodes.len() * size_of::<Node>()
                + tables.len() * size_of::<u32>()
                + chunks.len() * size_of::<Chunk<D>>(),
            build_time: start.elapsed(),
        };
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        Self { nodes, tables, chunks, trees, stats, avx2 }
    }

    /// What the build cost and made.
    pub fn stats(&self) -> BuildStats {
        self.stats
    }

    /// The first (lowest-numbered) rule holding `k`.
    #[inline]
    pub fn classify(&self, k: &Key<D>) -> Option<u32> {
        let mut best = NO_MATCH;
        for t in &self.trees {
            if t.first_rule >= best {
                break;
            }
            let mut n = self.root(t, k);
            for _ in 0..t.depth {
                n = self.step(n, k);
            }
            best = self.scan::<false>(n, k, best);
        }
        (best != NO_MATCH).then_some(best)
    }

    /// Classifies every key of a batch into `out` ([`NO_MATCH`] for none).
    ///
    /// Keys go down each tree [`LANES`] at a time, level by level: one
    /// key's walk is a chain of dependent loads, several keys' walks are
    /// independent and overlap in the CPU.
    ///
    /// On x86-64 CPUs with AVX2 (checked once, at build) the same code runs
    /// compiled for AVX2: a leaf chunk's 8 rules are then one 256-bit
    /// compare per dimension instead of two SSE2 ones plus sign fixes for
    /// the unsigned compare (1.4-1.5x on ClassBench 10k sets; AVX-512 gave
    /// nothing more, as rte_acl's best method here is).
    pub fn classify_batch(&self, keys: &[Key<D>], out: &mut [u32]) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is set only when the CPU has AVX2.
            return unsafe { self.classify_batch_avx2(keys, out) };
        }
        self.classify_batch_any::<false>(keys, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn classify_batch_avx2(&self, keys: &[Key<D>], out: &mut [u32]) {
        self.classify_batch_any::<true>(keys, out)
    }

    /// [`Self::classify_batch`] without AVX2 whatever the CPU, for tests
    /// of the portable path.
    #[doc(hidden)]
    pub fn classify_batch_portable(&self, keys: &[Key<D>], out: &mut [u32]) {
        self.classify_batch_any::<false>(keys, out)
    }

    /// [`Self::classify_batch`], inlined into each variant so that it is
    /// compiled for that variant's instructions; `AVX2` only from
    /// [`Self::classify_batch_avx2`].
    #[inline(always)]
    fn classify_batch_any<const AVX2: bool>(&self, keys: &[Key<D>], out: &mut [u32]) {
        for (ks, os) in keys.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let n = ks.len();
            let mut best = [NO_MATCH; LANES];
            for t in &self.trees {
                // Trees go by their best rule: once no key can improve,
                // no later tree can help. (Walking only the keys that can
                // improve, through an index, measured 5-19 % slower than
                // walking all of them.)
                if best[..n].iter().all(|&b| t.first_rule >= b) {
                    break;
                }
                let mut node = [0; LANES];
                for (i, k) in ks.iter().enumerate() {
                    node[i] = self.root(t, k);
                }
                for _ in 0..t.depth {
                    for (i, k) in ks.iter().enumerate() {
                        node[i] = self.step(node[i], k);
                    }
                }
                for (i, k) in ks.iter().enumerate() {
                    best[i] = self.scan::<AVX2>(node[i], k, best[i]);
                }
            }
            os.copy_from_slice(&best[..n]);
        }
    }

    /// Per tree, for `keys`: its depth, the keys that walk it (the others
    /// stop earlier: a better rule was found), their mean steps until a
    /// leaf, and chunks scanned. For tuning; one line per tree.
    pub fn profile(&self, keys: &[Key<D>]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut best = vec![NO_MATCH; keys.len()];
        for t in &self.trees {
            let (mut walked, mut steps, mut chunks, mut empty) = (0u64, 0u64, 0u64, 0u64);
            for (k, b) in keys.iter().zip(&mut best) {
                if t.first_rule >= *b {
                    continue;
                }
                walked += 1;
                let mut n = self.root(t, k);
                while self.nodes[n as usize].child[0] != n {
                    n = self.step(n, k);
                    steps += 1;
                }
                let first = self.nodes[n as usize].thr;
                if first == NO_CHUNKS {
                    empty += 1;
                } else {
                    chunks += 1 + self.chunks[first as usize..].iter().take_while(|c| !c.last).count() as u64;
                }
                *b = self.scan::<false>(n, k, *b);
            }
            lines.push(format!(
                "tree first rule {} cut {:?} depth {}: walked by {walked} keys, mean steps {:.1}, mean chunks {:.2}, empty leaves reached {empty}",
                t.first_rule,
                t.cut,
                t.depth,
                steps as f64 / walked.max(1) as f64,
                chunks as f64 / walked.max(1) as f64
            ));
        }
        lines
    }

    /// Where `k` starts in tree `t`: its root, or the subtree its cut
    /// table names.
    #[inline(always)]
    fn root(&self, t: &Tree, k: &Key<D>) -> u32 {
        match t.cut {
            None => t.root,
            Some((d, shift)) => self.tables[t.root as usize + (k.dims[d as usize] >> shift) as usize],
        }
    }

    /// One step down from node `n` (a leaf stays where it is).
    #[inline(always)]
    fn step(&self, n: u32, k: &Key<D>) -> u32 {
        debug_assert!((n as usize) < self.nodes.len());
        // SAFETY: node indices come from the builder (children of nodes it
        // pushed) and dimensions are below D (a split picks `d in 0..D`;
        // leaves have 0); checked by `debug_assert`s here and in tests.
        unsafe {
            let nd = self.nodes.get_unchecked(n as usize);
            debug_assert!((nd.dim as usize) < D);
            *nd.child.get_unchecked((*k.dims.get_unchecked(nd.dim as usize) >= nd.thr) as usize)
        }
    }

    /// The first rule of leaf node `n` holding `k`, if better than `best`.
    /// `AVX2`: match chunks with AVX2 instructions (only on CPUs that
    /// have them, see [`Self::classify_batch`]).
    #[inline(always)]
    fn scan<const AVX2: bool>(&self, n: u32, k: &Key<D>, best: u32) -> u32 {
        let mut at = self.nodes[n as usize].thr;
        if at == NO_CHUNKS {
            return best;
        }
        loop {
            let c = &self.chunks[at as usize];
            if c.rule[0] >= best {
                return best;
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 is true only on the path taken when the CPU has
            // AVX2.
            let hits = if AVX2 { unsafe { c.matches_avx2(k) } } else { c.matches(k) };
            #[cfg(not(target_arch = "x86_64"))]
            let hits = c.matches(k);
            if hits != 0 {
                return c.rule[hits.trailing_zeros() as usize].min(best);
            }
            if c.last {
                return best;
            }
            at += 1;
        }
    }
}

struct Builder<'a, const D: usize> {
    rules: &'a [FieldBox<D>],
    nodes: Vec<BuildNode>,
    leaf_rules: Vec<u32>,
    params: SplitParams,
    depth: usize,
    /// Rule copies made by splits so far, and how many may be made.
    copies: usize,
    copy_budget: usize,
}

impl<const D: usize> Builder<'_, D> {
    /// The subtree for the rules `set` (in priority order, each overlapping
    /// the region `lo..=hi`); returns its node index.
    fn node(&mut self, mut set: Vec<u32>, lo: [u32; D], hi: [u32; D], depth: usize) -> u32 {
        self.depth = self.depth.max(depth);
        // Redundancy removal: nothing after a rule covering the whole
        // region can match first anywhere in it.
        if let Some(p) = set.iter().position(|&r| covers(&self.rules[r as usize], &lo, &hi)) {
            set.truncate(p + 1);
        }
        let split = if set.len() <= self.params.leaf_size || depth >= self.params.max_depth {
            None
        } else {
            self.best_split(&set, &lo, &hi)
        };
        let Some((d, t)) = split else {
            let at = self.nodes.len() as u32;
            self.nodes.push(BuildNode { thr: 0, a: self.leaf_rules.len() as u32, b: set.len() as u32, dim: LEAF });
            self.leaf_rules.extend_from_slice(&set);
            return at;
        };
        let rules = self.rules;
        let left: Vec<u32> = set.iter().copied().filter(|&r| rules[r as usize].lo[d] < t).collect();
        let right: Vec<u32> = set.iter().copied().filter(|&r| rules[r as usize].hi(d) >= t).collect();
        self.copies += left.len() + right.len() - set.len();
        drop(set);
        let at = self.nodes.len();
        self.nodes.push(BuildNode { thr: t, a: 0, b: 0, dim: d as u8 });
        let (mut left_hi, mut right_lo) = (hi, lo);
        left_hi[d] = t - 1;
        right_lo[d] = t;
        let a = self.node(left, lo, left_hi, depth + 1);
        let b = self.node(right, right_lo, hi, depth + 1);
        self.nodes[at].a = a;
        self.nodes[at].b = b;
        at as u32
    }

    /// The table of subtree roots for `set` cut on dimension `d` into
    /// slices of `1 << shift` values, appended to `tables`. Slices whose
    /// rules all span them in `d` get the same subtree for the same rules
    /// (the slice's place then changes nothing); others get their own.
    fn cut(&mut self, set: &[u32], d: usize, shift: u32, tables: &mut Vec<u32>) {
        let mut shared: rustc_hash::FxHashMap<Vec<u32>, u32> = Default::default();
        for slice in 0..=(u32::MAX >> shift) {
            let (mut lo, mut hi) = ([0; D], [u32::MAX; D]);
            lo[d] = slice << shift;
            hi[d] = lo[d] | ((1u64 << shift) - 1) as u32;
            let rules = self.rules;
            let inside: Vec<u32> = set
                .iter()
                .copied()
                .filter(|&r| rules[r as usize].lo[d] <= hi[d] && rules[r as usize].hi(d) >= lo[d])
                .collect();
            let spans = inside.iter().all(|&r| rules[r as usize].lo[d] <= lo[d] && rules[r as usize].hi(d) >= hi[d]);
            let root = match (spans, shared.get(&inside)) {
                (true, Some(&n)) => n,
                _ => {
                    let n = self.node(inside.clone(), lo, hi, 0);
                    if spans {
                        shared.insert(inside, n);
                    }
                    n
                }
            };
            tables.push(root);
        }
    }

    /// The split (dimension, threshold) whose larger side holds the fewest
    /// rules (ties: fewer copies in all), if any leaves both sides smaller
    /// than `set` and copies at most half of its rules to both sides
    /// (none once the forest's copy budget is spent).
    /// The copy bound keeps memory near linear in the rules even for sets
    /// of wide, overlapping rules (random ones made 1,600 copies per rule
    /// without it); a region no split can cut within it stays one larger
    /// leaf. On ClassBench 10k sets it also made lookups faster (smaller
    /// trees stay in cache).
    fn best_split(&self, set: &[u32], lo: &[u32; D], hi: &[u32; D]) -> Option<(usize, u32)> {
        let n = set.len();
        let max_copies = if self.copies < self.copy_budget { n / 2 } else { 0 };
        let mut best: Option<((usize, usize), usize, u32)> = None;
        let (mut lows, mut highs) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for d in 0..D {
            if lo[d] == hi[d] {
                continue;
            }
            lows.clear();
            highs.clear();
            for &r in set {
                let r = &self.rules[r as usize];
                lows.push(r.lo[d].max(lo[d]));
                highs.push(r.hi(d).min(hi[d]));
            }
            lows.sort_unstable();
            highs.sort_unstable();
            // Candidate thresholds: where a rule starts or just after it
            // ends, strictly inside the region.
            let starts = lows.iter().copied().filter(|&v| v > lo[d]);
            let ends = highs.iter().filter(|&&v| v < hi[d]).map(|&v| v + 1);
            let mut last = None;
            for t in starts.chain(ends) {
                if last == Some(t) {
                    continue;
                }
                last = Some(t);
                let left = lows.partition_point(|&v| v < t);
                let right = n - highs.partition_point(|&v| v < t);
                let cost = (left.max(right), left + right);
                if cost.0 < n && cost.1 <= n + max_copies && best.is_none_or(|(c, _, _)| cost < c) {
                    best = Some((cost, d, t));
                }
            }
        }
        best.map(|(_, d, t)| (d, t))
    }
}

/// Does `r` hold every key of the region `lo..=hi`, whatever the extra word?
fn covers<const D: usize>(r: &FieldBox<D>, lo: &[u32; D], hi: &[u32; D]) -> bool {
    r.mask == 0 && (0..D).all(|d| r.lo[d] <= lo[d] && r.hi(d) >= hi[d])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two cut slices see the same two rules, but the first rule covers
    /// only the lower slice entirely: the upper slice must not reuse the
    /// lower one's subtree, where the second rule was cut as unreachable.
    #[test]
    fn slices_share_a_subtree_only_when_their_rules_span_them() {
        let wide = FieldBox::new([0; 2], [u32::MAX; 2]);
        let r0 = FieldBox::new([0, 0], [(1 << 31) + 10, u32::MAX]);
        let params = SplitParams { cut_bits: 1, ..SplitParams::default() };
        let f = SplitForest::build(vec![r0, wide], |_| (0, Some(0)), params);
        let key = |v: u32| Key { dims: [v, 7], extra: 0 };
        assert_eq!(f.classify(&key(5)), Some(0));
        assert_eq!(f.classify(&key((1 << 31) + 5)), Some(0));
        assert_eq!(f.classify(&key((1 << 31) + 11)), Some(1), "the second rule, in the upper slice");
    }
}
