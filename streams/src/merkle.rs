//! Merkle trees over event hashes, RFC 6962 style: a leaf is `SHA-256(0x00 ‖ event hash)`, a
//! node `SHA-256(0x01 ‖ left ‖ right)`, and a level with an odd count carries its last node up
//! unchanged. A signed root commits to every event of a range; an inclusion proof shows one
//! event is among them without the others' content.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf(event_hash: &[u8]) -> Hash {
    let mut d = Sha256::new();
    d.update([0u8]);
    d.update(event_hash);
    d.finalize().into()
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut d = Sha256::new();
    d.update([1u8]);
    d.update(left);
    d.update(right);
    d.finalize().into()
}

fn next_level(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => node(l, r),
            [only] => *only,
            _ => unreachable!("chunks(2) yields one or two"),
        })
        .collect()
}

/// The root of `leaves` (already hashed with [`leaf`]); all zeros for none.
pub fn root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return [0; 32];
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// The siblings from leaf `index` up to the root; `None` when out of range. Builds the tree:
/// for many proofs of one tree, build a [`Tree`] once.
pub fn proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    Tree::new(leaves.to_vec()).proof(index)
}

/// Every level of a tree, built once (O(N) hashes), so each inclusion proof is a walk of
/// O(log N) lookups: an export proves thousands of events of one checkpoint from one tree.
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    pub fn new(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while let Some(top) = levels.last().filter(|l| l.len() > 1) {
            let next = next_level(top);
            levels.push(next);
        }
        Self { levels }
    }

    pub fn root(&self) -> Hash {
        self.levels
            .last()
            .and_then(|top| top.first().copied())
            .unwrap_or([0; 32])
    }

    /// The siblings from leaf `index` up to the root; `None` when out of range.
    pub fn proof(&self, index: usize) -> Option<Vec<Hash>> {
        let leaves = self.levels.first()?;
        if index >= leaves.len() {
            return None;
        }
        let mut siblings = Vec::with_capacity(self.levels.len());
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(i ^ 1) {
                siblings.push(*sibling);
            }
            i /= 2;
        }
        Some(siblings)
    }
}

/// Whether `leaf` at `index` of a tree of `count` leaves hashes up to `root` through `proof`.
pub fn verify(leaf: &Hash, index: usize, count: usize, proof: &[Hash], root: &Hash) -> bool {
    if index >= count {
        return false;
    }
    let (mut hash, mut i, mut width, mut siblings) = (*leaf, index, count, proof.iter());
    while width > 1 {
        let sibling = i ^ 1;
        if sibling < width {
            let Some(s) = siblings.next() else {
                return false;
            };
            hash = if i % 2 == 0 {
                node(&hash, s)
            } else {
                node(s, &hash)
            };
        }
        i /= 2;
        width = width.div_ceil(2);
    }
    siblings.next().is_none() && hash == *root
}

/// The bytes a checkpoint signature covers: the range, its event count and its root.
pub fn checkpoint_message(from: u64, to: u64, count: u64, root: &Hash) -> Vec<u8> {
    let mut m = b"aegis-checkpoint-v1".to_vec();
    m.extend_from_slice(&from.to_be_bytes());
    m.extend_from_slice(&to.to_be_bytes());
    m.extend_from_slice(&count.to_be_bytes());
    m.extend_from_slice(root);
    m
}

/// What an access checkpoint signs: the decision log's sequences `from..=to`, its batch
/// count and Merkle root, under a label of its own so it can never pass for an event-log one.
pub fn access_checkpoint_message(from: u64, to: u64, count: u64, root: &Hash) -> Vec<u8> {
    let mut m = b"aegis-access-checkpoint-v1".to_vec();
    m.extend_from_slice(&from.to_be_bytes());
    m.extend_from_slice(&to.to_be_bytes());
    m.extend_from_slice(&count.to_be_bytes());
    m.extend_from_slice(root);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf(&[i as u8; 32])).collect()
    }

    #[test]
    fn every_leaf_proves_into_the_root_for_every_size() {
        for n in 1..=17 {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let p = proof(&l, i).expect("in range");
                assert!(verify(&l[i], i, n, &p, &r), "n={n} i={i}");
                // The proof is bound to its position and its leaf.
                if n > 1 {
                    assert!(!verify(&l[i], (i + 1) % n, n, &p, &r), "n={n} i={i} moved");
                    assert!(
                        !verify(&leaf(b"other"), i, n, &p, &r),
                        "n={n} i={i} swapped"
                    );
                }
            }
        }
    }

    #[test]
    fn a_tree_built_once_gives_the_same_root_and_proofs() {
        for n in 0..=33 {
            let l = leaves(n);
            let tree = Tree::new(l.clone());
            assert_eq!(tree.root(), root(&l), "n={n}");
            for (i, one) in l.iter().enumerate() {
                let p = tree.proof(i).expect("in range");
                assert!(verify(one, i, n, &p, &tree.root()), "n={n} i={i}");
            }
            assert_eq!(tree.proof(n), None);
        }
    }

    #[test]
    fn the_root_changes_with_any_leaf_and_with_order() {
        let l = leaves(5);
        let mut altered = l.clone();
        altered[3] = leaf(b"forged");
        assert_ne!(root(&l), root(&altered));
        let mut swapped = l.clone();
        swapped.swap(0, 1);
        assert_ne!(root(&l), root(&swapped));
        assert_eq!(proof(&l, 5), None);
    }
}
