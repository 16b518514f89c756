//! The root file system an image's layers build up, with OCI whiteout semantics: what a
//! container would see. Semantic comparison looks at this, not at the layers.

use std::collections::BTreeMap;
use std::ops::Bound;

use kiln_layer::order::cmp_paths;

use crate::listing::{Entry, Kind, Listing};

/// A path of the root file system, borrowing from the layers' listings (a layer of a
/// million files would otherwise be held three times).
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    /// The entry that made it; for a hard link, the entry of the file it links to (under
    /// that file's name: the key of the root file system is this path's own name).
    pub entry: &'a Entry,
    /// Layer the content comes from (where `entry` is).
    pub layer: usize,
    /// For hard links: the path linked to.
    pub linked_to: Option<&'a [u8]>,
}

impl Node<'_> {
    /// Where the content lives: (layer index, name there).
    pub fn source(&self) -> (usize, Vec<u8>) {
        (self.layer, self.entry.path.clone())
    }
}

/// Paths in byte order, so that a subtree `p/...` is one range.
pub type RootFs<'a> = BTreeMap<&'a [u8], Node<'a>>;

fn remove_subtree(fs: &mut RootFs<'_>, path: &[u8], keep_root: bool) {
    if !keep_root {
        fs.remove(path);
    }
    let mut start = path.to_vec();
    start.push(b'/');
    // Everything starting with "p/" sorts before "p0" ('0' follows '/').
    let mut end = path.to_vec();
    end.push(b'0');
    let doomed: Vec<&[u8]> = fs
        .range::<[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
        .map(|(&k, _)| k)
        .collect();
    for k in doomed {
        fs.remove(k);
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
pub fn merge(layers: &[Listing]) -> RootFs<'_> {
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
            let own = Node {
                entry: e,
                layer: li,
                linked_to: None,
            };
            let node = if e.kind == Kind::Hardlink {
                let linked_to = Some(e.link.as_slice());
                match fs.get(e.link.as_slice()) {
                    Some(target) => Node {
                        linked_to,
                        ..*target
                    },
                    // A dangling link: keep it as what it claims to be.
                    None => Node { linked_to, ..own },
                }
            } else {
                own
            };
            fs.insert(&e.path, node);
        }
    }
    fs
}

/// For every path that shares its inode with others: the first of them in layer order,
/// which names the group whichever way round the links were written.
pub fn link_groups<'a>(fs: &RootFs<'a>) -> BTreeMap<&'a [u8], &'a [u8]> {
    let mut parent: BTreeMap<&[u8], &[u8]> = BTreeMap::new();
    fn find<'a>(parent: &BTreeMap<&'a [u8], &'a [u8]>, x: &'a [u8]) -> &'a [u8] {
        let mut cur = x;
        while let Some(&p) = parent.get(cur) {
            if p == cur {
                break;
            }
            cur = p;
        }
        cur
    }
    for (&path, node) in fs {
        let Some(t) = node.linked_to else { continue };
        if !fs.contains_key(t) {
            continue;
        }
        parent.entry(path).or_insert(path);
        parent.entry(t).or_insert(t);
        let (ra, rb) = (find(&parent, path), find(&parent, t));
        if ra != rb {
            // The smaller root (layer order) stays the root.
            let (keep, other) = if cmp_paths(ra, rb).is_le() {
                (ra, rb)
            } else {
                (rb, ra)
            };
            parent.insert(other, keep);
        }
    }
    parent.keys().map(|&m| (m, find(&parent, m))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::scan;
    use kiln_layer::tar::{typeflag, Header, TarWriter, Timestamp};
    use kiln_normalize::Expected;

    fn layer(entries: &[(u8, &str, &str)]) -> Listing {
        let mut w = TarWriter::new(Vec::new());
        for (flag, name, arg) in entries {
            let data = if *flag == typeflag::REG {
                arg.as_bytes()
            } else {
                b""
            };
            w.write_header(&Header {
                typeflag: *flag,
                name: name.as_bytes().to_vec(),
                linkname: if *flag == typeflag::REG {
                    Vec::new()
                } else {
                    arg.as_bytes().to_vec()
                },
                size: data.len() as i64,
                mode: 0o644,
                mtime: Some(Timestamp::from_secs(1)),
                ..Header::default()
            })
            .unwrap();
            w.write_data(data).unwrap();
        }
        scan(&w.finish().unwrap()[..], &Expected::default()).unwrap()
    }

    fn paths(fs: &RootFs) -> Vec<String> {
        fs.keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    fn node<'a>(fs: &RootFs<'a>, path: &str) -> Node<'a> {
        fs[path.as_bytes()]
    }

    #[test]
    fn whiteouts_opaque_dirs_and_replacements() {
        let lower = layer(&[
            (typeflag::DIR, "a/", ""),
            (typeflag::REG, "a/x", "1"),
            (typeflag::DIR, "a/d/", ""),
            (typeflag::REG, "a/d/y", "2"),
            (typeflag::DIR, "o/", ""),
            (typeflag::REG, "o/old", "3"),
            (typeflag::DIR, "r/", ""),
            (typeflag::REG, "r/inside", "4"),
            (typeflag::REG, "a-b", "5"),
        ]);
        let upper = layer(&[
            (typeflag::REG, "a/.wh.d", ""),
            (typeflag::REG, "o/.wh..wh..opq", ""),
            (typeflag::REG, "o/new", "6"),
            (typeflag::REG, "r", "now a file"),
        ]);
        let layers = [lower, upper];
        let fs = merge(&layers);
        assert_eq!(paths(&fs), ["a", "a-b", "a/x", "o", "o/new", "r"]);
        assert_eq!(node(&fs, "r").entry.kind, Kind::File);
        assert_eq!(
            node(&fs, "o/new").source(),
            (1, b"o/new".to_vec()),
            "content comes from the upper layer"
        );
    }

    #[test]
    fn hard_link_groups_are_named_by_their_first_path() {
        let l = layer(&[
            (typeflag::REG, "z", "data"),
            (typeflag::LINK, "m", "z"),
            (typeflag::LINK, "a", "m"),
            (typeflag::REG, "solo", "x"),
        ]);
        let layers = [l];
        let fs = merge(&layers);
        assert_eq!(
            node(&fs, "a").entry.kind,
            Kind::File,
            "a resolved link is a file"
        );
        assert_eq!(node(&fs, "a").entry.digest, node(&fs, "z").entry.digest);
        assert_eq!(node(&fs, "a").source(), (0, b"z".to_vec()));
        assert_eq!(node(&fs, "a").linked_to, Some(&b"m"[..]));
        let g = link_groups(&fs);
        for p in ["a", "m", "z"] {
            assert_eq!(g[p.as_bytes()], b"a");
        }
        assert!(!g.contains_key(&b"solo"[..]));
    }
}
