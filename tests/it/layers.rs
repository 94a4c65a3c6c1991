//! The core's floors (`shared/src/lib.rs`): a file imports its own floor and the floors below it,
//! never one above. This test reads every production line of `shared/src` (everything above a
//! file's `#[cfg(test)] mod tests`) and names each `crate::` path that points up. `super::` stays
//! inside a folder, so on one floor. `testing/` is test support and may import anything.

use std::path::{Path, PathBuf};

use crate::support::repo_root;

/// The floor of each top-level module of the core, bottom first.
const FLOORS: &[(&str, u8)] = &[
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

fn floor_of(module: &str) -> Option<u8> {
    FLOORS
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
fn upward_imports(root: &Path) -> Vec<String> {
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
        if top == "lib" || top == "testing" {
            continue;
        }
        let own = floor_of(&top).unwrap_or_else(|| {
            panic!(
                "{}: module `{top}` has no floor in FLOORS",
                relative.display()
            )
        });
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in production_lines(&text) {
            for module in crate_paths(line) {
                let Some(floor) = floor_of(module) else {
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

#[test]
fn the_core_imports_only_its_own_floor_and_those_below() {
    let upward = upward_imports(&repo_root().join("shared/src"));
    assert!(
        upward.is_empty(),
        "imports that point up:\n{}",
        upward.join("\n")
    );
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
    let upward = upward_imports(&root);
    assert_eq!(
        upward,
        [
            "model/request.rs:3: floor 0 imports `consume` on floor 4: use crate::consume::Consumer;",
            "ports.rs:1: `crate::Consumer` names no floor (import through its module): use crate::Consumer;",
        ]
    );
}
