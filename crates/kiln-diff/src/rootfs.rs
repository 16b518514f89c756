//! The root file system an image's layers build up, with OCI whiteout semantics: what a
//! container would see. Semantic comparison looks at this, not at the layers.

use std::collections::BTreeMap;

use kiln_layer::order::cmp_paths;

use crate::listing::{Entry, Kind, Listing};

/// A path of the root file system.
#[derive(Clone, Debug)]
pub struct Node {
    /// The entry that made it (for a hard link: the inode's entry, under this path).
    pub entry: Entry,
    /// Layer the content comes from, and the name it has there.
    pub source: (usize, Vec<u8>),
    /// For hard links: the path linked to.
    pub linked_to: Option<Vec<u8>>,
}

/// Paths in byte order, so that a subtree `p/...` is one range.
pub type RootFs = BTreeMap<Vec<u8>, Node>;

fn subtree_end(prefix: &[u8]) -> Vec<u8> {
    // Everything starting with "p/" sorts before "p0" ('0' follows '/').
    let mut end = prefix.to_vec();
    end.push(b'0');
    end
}

fn remove_subtree(fs: &mut RootFs, path: &[u8], keep_root: bool) {
    if !keep_root {
        fs.remove(path);
    }
    let mut start = path.to_vec();
    start.push(b'/');
    let doomed: Vec<Vec<u8>> = fs
        .range(start..subtree_end(path))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        fs.remove(&k);
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        let mut p = dir.to_vec();
        p.push(b'/');
        p.extend_from_slice(name);
        p
    }
}

/// Applies the layers in order.
pub fn merge(layers: &[Listing]) -> RootFs {
    let mut fs = RootFs::new();
    for (li, layer) in layers.iter().enumerate() {
        // Whiteouts apply to lower layers only, so they go first.
        for e in &layer.entries {
            let dir = e
                .path
                .iter()
                .rposition(|&b| b == b'/')
                .map_or(&[][..], |i| &e.path[..i]);
            match e.kind {
                Kind::Opaque => remove_subtree(&mut fs, dir, true),
                Kind::Whiteout => {
                    let base = kiln_normalize::names::base_name(&e.path);
                    let target = join(dir, &base[kiln_normalize::names::WHITEOUT_PREFIX.len()..]);
                    remove_subtree(&mut fs, &target, false);
                }
                _ => {}
            }
        }
        for e in &layer.entries {
            match e.kind {
                Kind::Opaque | Kind::Whiteout => continue,
                Kind::Dir => {}
                // A non-directory replaces a directory with everything in it.
                _ => remove_subtree(&mut fs, &e.path, true),
            }
            let node = if e.kind == Kind::Hardlink {
                match fs.get(&e.link) {
                    Some(target) => Node {
                        entry: Entry {
                            path: e.path.clone(),
                            ..target.entry.clone()
                        },
                        source: target.source.clone(),
                        linked_to: Some(e.link.clone()),
                    },
                    // A dangling link: keep it as what it claims to be.
                    None => Node {
                        entry: e.clone(),
                        source: (li, e.path.clone()),
                        linked_to: Some(e.link.clone()),
                    },
                }
            } else {
                Node {
                    entry: e.clone(),
                    source: (li, e.path.clone()),
                    linked_to: None,
                }
            };
            fs.insert(e.path.clone(), node);
        }
    }
    fs
}

/// For every path that shares its inode with others: the first of them in layer order,
/// which names the group whichever way round the links were written.
pub fn link_groups(fs: &RootFs) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut parent: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    fn find(parent: &mut BTreeMap<Vec<u8>, Vec<u8>>, x: &[u8]) -> Vec<u8> {
        let mut cur = x.to_vec();
        while let Some(p) = parent.get(&cur) {
            if *p == cur {
                break;
            }
            cur = p.clone();
        }
        cur
    }
    for (path, node) in fs {
        let Some(t) = &node.linked_to else { continue };
        if !fs.contains_key(t) {
            continue;
        }
        parent.entry(path.clone()).or_insert_with(|| path.clone());
        parent.entry(t.clone()).or_insert_with(|| t.clone());
        let (ra, rb) = (find(&mut parent, path), find(&mut parent, t));
        if ra != rb {
            // The smaller root (layer order) stays the root.
            let (keep, other) = if cmp_paths(&ra, &rb).is_le() {
                (ra, rb)
            } else {
                (rb, ra)
            };
            parent.insert(other, keep);
        }
    }
    let members: Vec<Vec<u8>> = parent.keys().cloned().collect();
    members
        .into_iter()
        .map(|m| {
            let r = find(&mut parent, &m);
            (m, r)
        })
        .collect()
}
