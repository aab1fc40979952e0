//! No import cycle between the modules of one crate (ARCHITECTURE.md, "Code map"): within
//! each module, its child modules (each with everything below it) and the module's own file
//! depend on one another without a cycle. A lower layer that reaches up into an adapter for
//! application logic (`auth` calling into `http`, a reactor calling a handler) is what this
//! refuses. References are the `crate::` and `super::` paths of each file's code (tests aside);
//! a parent naming its children (`mod x;`, `x::router()`) is composition, not a dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod support;

type Module = Vec<String>;

/// Each workspace crate's `src/` directory.
fn crate_sources() -> Vec<(String, PathBuf)> {
    let meta = support::workspace();
    let mut crates = Vec::new();
    for package in meta["packages"].as_array().expect("packages") {
        let manifest = PathBuf::from(package["manifest_path"].as_str().expect("manifest path"));
        let src = manifest
            .parent()
            .expect("a manifest has a directory")
            .join("src");
        if src.is_dir() {
            let name = package["name"].as_str().unwrap_or_default().to_string();
            crates.push((name, src));
        }
    }
    crates
}

/// The crate's modules, by path, with their code (what precedes `#[cfg(test)]`, comments
/// dropped). Binaries (`src/bin`) are crates of their own and are left out.
fn modules(src: &Path) -> BTreeMap<Module, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<Module, String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path != root.join("bin") {
                    walk(root, &path, out);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .expect("under the root")
                .with_extension("");
            let mut module: Module = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if module
                .last()
                .is_some_and(|l| matches!(l.as_str(), "mod" | "lib" | "main"))
            {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            out.insert(module, code.join("\n"));
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Reads `a::b::{c, d::e as f}` from the start of `s`: every full path it names.
fn paths(s: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix;
    let mut i = 0;
    let b = s.as_bytes();
    loop {
        let start = i;
        while i < s.len() && is_ident(b[i] as char) {
            i += 1;
        }
        if i > start {
            path.push(s[start..i].to_string());
        }
        if s[i..].starts_with("::{") {
            i += 3;
            loop {
                while i < s.len() && (b[i] as char).is_whitespace() {
                    i += 1;
                }
                if i >= s.len() || b[i] == b'}' {
                    return i + 1;
                }
                i += paths(&s[i..], path.clone(), out);
                while i < s.len() && b[i] != b',' && b[i] != b'}' {
                    i += 1; // ` as name`
                }
                if i < s.len() && b[i] == b',' {
                    i += 1;
                }
            }
        }
        if s[i..].starts_with("::") {
            i += 2;
            continue;
        }
        out.push(path);
        return i;
    }
}

/// The modules each module refers to through `crate::` and `super::` paths.
fn references(mods: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let resolve = |path: &[String]| -> Module {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|m| mods.contains_key(m))
            .unwrap_or_default()
    };
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, code) in mods {
        for (at, _) in code
            .match_indices("crate::")
            .chain(code.match_indices("super::"))
        {
            if code[..at].chars().next_back().is_some_and(is_ident) {
                continue;
            }
            let mut found = Vec::new();
            paths(&code[at..], Vec::new(), &mut found);
            for mut path in found {
                let mut base: Module = Vec::new();
                if path.first().is_some_and(|p| p == "crate") {
                    path.remove(0);
                } else {
                    base = module.clone();
                    while path.first().is_some_and(|p| p == "super") {
                        path.remove(0);
                        base.pop();
                    }
                }
                base.extend(path);
                let target = resolve(&base);
                if &target != module {
                    edges.entry(module.clone()).or_default().insert(target);
                }
            }
        }
    }
    edges
}

/// A cycle among the children of `parent` (and its own file, `.`), if any.
fn cycle_under(parent: &Module, edges: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<String>> {
    let node = |m: &Module| -> Option<String> {
        if !m.starts_with(parent) {
            return None;
        }
        Some(m.get(parent.len()).cloned().unwrap_or_else(|| ".".into()))
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in edges {
        let Some(a) = node(from) else { continue };
        for t in targets {
            if let Some(b) = node(t).filter(|b| *b != a) {
                graph.entry(a.clone()).or_default().insert(b);
            }
        }
    }
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for next in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, &graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let mut cycles = Vec::new();
    for (name, src) in crate_sources() {
        let mods = modules(&src);
        let edges = references(&mods);
        let parents: BTreeSet<Module> = mods
            .keys()
            .flat_map(|m| (0..m.len()).map(|n| m[..n].to_vec()))
            .collect();
        for parent in parents {
            if let Some(cycle) = cycle_under(&parent, &edges) {
                let at = if parent.is_empty() {
                    "crate".into()
                } else {
                    parent.join("::")
                };
                cycles.push(format!("{name}: under {at}: {}", cycle.join(" -> ")));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_reader_sees_grouped_and_relative_paths() {
    let mut found = Vec::new();
    paths("crate::a::{b, c::{d, e as f}};", Vec::new(), &mut found);
    let found: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(found, ["crate::a::b", "crate::a::c::d", "crate::a::c::e"]);
    let mods: BTreeMap<Module, String> = [
        (vec![], String::new()),
        (vec!["x".into()], "use crate::y::thing;".into()),
        (vec!["y".into()], "fn f() { super::x::g() }".into()),
    ]
    .into_iter()
    .collect();
    let edges = references(&mods);
    assert!(
        cycle_under(&vec![], &edges).is_some(),
        "x -> y -> x is a cycle"
    );
}
