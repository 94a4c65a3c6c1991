//! The floors of the core (`shared/src/lib.rs`) and of the binary (`cli/src/lib.rs`): a file imports
//! its own floor and the floors below it, never one above. This test reads every production line
//! (everything above a file's `#[cfg(test)] mod tests`) and names each `crate::` path that points
//! up. `super::` stays inside a folder, so on one floor. `testing/` is test support and may import
//! anything. In `cli/src`, no two files import each other, directly or around a longer circle; a
//! folder's `mod.rs` and the files directly inside it are one room (its facade re-exports them and
//! they see its types through `super::`), so edges between them are not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::repo_root;

/// The floor of each top-level module of the core, bottom first.
const CORE_FLOORS: &[(&str, u8)] = &[
    ("model", 0),
    ("ports", 1),
    ("clock", 1),
    ("secrets", 1),
    ("metrics", 1),
    ("tls", 1),
    ("config", 2),
    ("providers", 3),
    ("hydrate", 3),
    ("ingest", 4),
    ("consume", 4),
    ("edge", 5),
    ("aws", 5),
    ("runtime", 6),
];

/// The floor of each top-level module of the binary, bottom first (`cli/src/lib.rs` says why).
const CLI_FLOORS: &[(&str, u8)] = &[
    ("term", 0),
    ("server", 0),
    ("project", 1),
    ("store", 1),
    ("send", 1),
    ("views", 2),
    ("replay", 2),
    ("handshakes", 2),
    ("refusals", 2),
    ("stack", 3),
    ("zoho", 3),
    ("source", 4),
    ("console", 5),
    ("serve", 6),
    ("commands", 7),
];

fn floor_of(floors: &[(&str, u8)], module: &str) -> Option<u8> {
    floors
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, floor)| *floor)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's lines above its unit tests, with comments dropped.
fn production_lines(text: &str) -> Vec<(usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|pair| {
            pair[0].trim() == "#[cfg(test)]" && pair[1].trim_start().contains("mod tests")
        })
        .unwrap_or(lines.len());
    lines[..end]
        .iter()
        .enumerate()
        .map(|(at, line)| (at + 1, *line))
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .collect()
}

/// Every `crate::<module>` a line names, and where.
fn crate_paths(line: &str) -> Vec<&str> {
    line.match_indices("crate::")
        .filter(|(at, _)| {
            // `hookcatch_crate::` or `$crate::` are other things.
            !line[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$')
        })
        .map(|(at, found)| {
            let rest = &line[at + found.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// Each import that points up, as `file:line: text (floor a imports b on floor c)`.
fn upward_imports(root: &Path, floors: &[(&str, u8)]) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.sort();
    let mut found = Vec::new();
    for path in files {
        let relative = path.strip_prefix(root).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "main" || top == "testing" {
            continue;
        }
        let own = floor_of(floors, &top).unwrap_or_else(|| {
            panic!(
                "{}: module `{top}` has no floor in FLOORS",
                relative.display()
            )
        });
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in production_lines(&text) {
            for module in crate_paths(line) {
                let Some(floor) = floor_of(floors, module) else {
                    found.push(format!(
                        "{}:{number}: `crate::{module}` names no floor (import through its module): {}",
                        relative.display(),
                        line.trim()
                    ));
                    continue;
                };
                if floor > own {
                    found.push(format!(
                        "{}:{number}: floor {own} imports `{module}` on floor {floor}: {}",
                        relative.display(),
                        line.trim()
                    ));
                }
            }
        }
    }
    found
}

/// Fails naming every import of `dir` that points up.
fn assert_floors_hold(dir: &str, floors: &[(&str, u8)]) {
    let upward = upward_imports(&repo_root().join(dir), floors);
    assert!(
        upward.is_empty(),
        "imports that point up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_core_imports_only_its_own_floor_and_those_below() {
    assert_floors_hold("shared/src", CORE_FLOORS);
}

#[test]
fn an_import_that_points_up_is_named_with_its_line() {
    let root = std::env::temp_dir().join(crate::support::unique("hookcatch-layers"));
    std::fs::create_dir_all(root.join("model")).unwrap();
    std::fs::write(
        root.join("model/request.rs"),
        "//! crate::consume in a comment is fine\nuse crate::model::value::X;\nuse crate::consume::Consumer;\n\n#[cfg(test)]\nmod tests {\n    use crate::ingest::Ingestor;\n}\n",
    )
    .unwrap();
    std::fs::write(root.join("ports.rs"), "use crate::Consumer;\n").unwrap();
    let upward = upward_imports(&root, CORE_FLOORS);
    assert_eq!(
        upward,
        [
            "model/request.rs:3: floor 0 imports `consume` on floor 4: use crate::consume::Consumer;",
            "ports.rs:1: `crate::Consumer` names no floor (import through its module): use crate::Consumer;",
        ]
    );
}

#[test]
fn the_binary_imports_only_its_own_floor_and_those_below() {
    assert_floors_hold("cli/src", CLI_FLOORS);
}

/// A file's module path: `serve/hooks.rs` is `serve::hooks`, `serve/mod.rs` is `serve`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned()
        })
        .collect();
    if parts
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        parts.pop();
    }
    parts
}

/// The modules a file declares (`mod x;`, `pub mod x;`): what its relative paths start with.
fn declared_modules(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("pub(crate) mod "))
                .or_else(|| line.strip_prefix("mod "))?;
            rest.strip_suffix(';').map(str::to_owned)
        })
        .collect()
}

/// Every path a line names through `crate::`, `super::` or a declared child module, as segments
/// from the crate root, and the file's own module path.
fn named_paths(line: &str, own: &[String], children: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let segments_at = |rest: &str| -> Vec<String> {
        let mut segments = Vec::new();
        let mut rest = rest;
        loop {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            segments.push(rest[..end].to_owned());
            match rest[end..].strip_prefix("::") {
                Some(next) => rest = next,
                None => break,
            }
        }
        segments
    };
    for (at, _) in line.match_indices("::") {
        let before = &line[..at];
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        // `a::b::c` is read once, from its first segment.
        if before[..start].ends_with("::") || before[..start].ends_with('$') {
            continue;
        }
        let first = &before[start..];
        let rest = segments_at(&line[at + 2..]);
        let mut path = match first {
            "crate" => Vec::new(),
            "super" => own[..own.len().saturating_sub(1)].to_vec(),
            child if children.iter().any(|c| c == child) => {
                let mut path = own.to_vec();
                path.push(child.to_owned());
                path
            }
            _ => continue,
        };
        path.extend(rest);
        found.push(path);
    }
    found
}

/// The import graph of a crate's files (production lines only), leaving out the edges between a
/// folder's `mod.rs` and the files directly inside it.
fn file_imports(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|path| {
            let relative = path.strip_prefix(root).unwrap();
            (module_path(relative), relative.display().to_string())
        })
        .collect();
    let mut graph = BTreeMap::new();
    for path in &files {
        let relative = path.strip_prefix(root).unwrap();
        let name = relative.display().to_string();
        let own = module_path(relative);
        let text = std::fs::read_to_string(path).unwrap();
        let children = declared_modules(&text);
        let mut edges = BTreeSet::new();
        for (_, line) in production_lines(&text) {
            for named in named_paths(line, &own, &children) {
                // The longest prefix that is a file of the crate.
                let target = (1..=named.len())
                    .rev()
                    .find_map(|n| modules.get(&named[..n]));
                let Some(target) = target else { continue };
                let target_module = module_path(Path::new(target));
                let parent_and_child =
                    |a: &[String], b: &[String]| a.len() + 1 == b.len() && b.starts_with(a);
                if *target != name
                    && !parent_and_child(&own, &target_module)
                    && !parent_and_child(&target_module, &own)
                {
                    edges.insert(target.clone());
                }
            }
        }
        graph.insert(name, edges);
    }
    graph
}

/// Each circle of imports, as `a.rs -> b.rs -> a.rs`, once.
fn import_cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit(
        file: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut BTreeSet<String>,
    ) {
        if let Some(at) = stack.iter().position(|f| f == file) {
            let mut circle = stack[at..].to_vec();
            // The same circle from any of its files reads the same.
            let first = (0..circle.len()).min_by_key(|&i| &circle[i]).unwrap_or(0);
            circle.rotate_left(first);
            circle.push(circle[0].clone());
            found.insert(circle.join(" -> "));
            return;
        }
        if done.contains(file) {
            return;
        }
        stack.push(file.to_owned());
        for next in graph.get(file).into_iter().flatten() {
            visit(next, graph, stack, done, found);
        }
        stack.pop();
        done.insert(file.to_owned());
    }
    let mut found = BTreeSet::new();
    let mut done = BTreeSet::new();
    for file in graph.keys() {
        visit(file, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found.into_iter().collect()
}

#[test]
fn no_two_files_of_the_binary_import_each_other() {
    let cycles = import_cycles(&file_imports(&repo_root().join("cli/src")));
    assert!(
        cycles.is_empty(),
        "files that import each other:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn a_circle_of_imports_is_named_file_by_file() {
    let root = crate::support::tree(
        "hookcatch-cycles",
        &[
            (
                "lib.rs",
                "pub mod config;\npub mod routes;\npub mod serve;\n",
            ),
            ("config.rs", "use crate::routes::write;\n"),
            (
                "routes.rs",
                "use crate::config::ConfigFile;\n\n#[cfg(test)]\nmod tests {\n    use crate::serve::start;\n}\n",
            ),
            // A folder's facade and its files see each other: one room, no circle.
            (
                "serve/mod.rs",
                "mod hooks;\nuse hooks::hook;\npub struct App;\n",
            ),
            (
                "serve/hooks.rs",
                "use super::App;\nuse crate::config::ConfigFile;\n",
            ),
        ],
    );
    let graph = file_imports(&root);
    assert_eq!(
        graph["serve/hooks.rs"],
        BTreeSet::from(["config.rs".to_owned()])
    );
    assert_eq!(
        import_cycles(&graph),
        ["config.rs -> routes.rs -> config.rs"]
    );
}
