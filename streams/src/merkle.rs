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

/// The siblings from leaf `index` up to the root; `None` when out of range.
pub fn proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut siblings = Vec::new();
    let (mut level, mut i) = (leaves.to_vec(), index);
    while level.len() > 1 {
        let sibling = i ^ 1;
        if sibling < level.len() {
            siblings.push(level[sibling]);
        }
        level = next_level(&level);
        i /= 2;
    }
    Some(siblings)
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
