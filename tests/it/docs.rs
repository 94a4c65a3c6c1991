//! The documentation's links: every relative link and image in the README, `docs/` and the crates'
//! READMEs names a file of the repository, and every `#anchor` a heading of the page it points to
//! (as GitHub makes them), so that a reader who follows one lands where it says.

use std::path::{Path, PathBuf};

use crate::support::repo_root;

/// The pages a reader is sent to: the README, `docs/`, and each crate's README.
fn pages(root: &Path) -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = [
        "README.md",
        "BENCHMARKS.md",
        "cli/README.md",
        "shared/README.md",
    ]
    .iter()
    .map(|p| root.join(p))
    .filter(|p| p.is_file())
    .collect();
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    pages
}

/// The page's text outside fenced code blocks.
fn prose(text: &str) -> String {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `[text](target)` and `![alt](target)` target of a page's prose, outside code spans.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose(text).lines() {
        // Code spans can hold brackets and parentheses that are no link.
        let outside_code: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, part)| part)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = outside_code.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            match after.find(')') {
                Some(end) => {
                    targets.push(after[..end].to_owned());
                    rest = &after[end..];
                }
                None => break,
            }
        }
    }
    targets
}

/// A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    prose(text)
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| anchor(heading.trim_start_matches('#')))
        .collect()
}

/// Each link of `pages` that leads nowhere, as `page: target (why)`.
fn broken_links(root: &Path, pages: &[PathBuf]) -> Vec<String> {
    let mut broken = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(page).unwrap();
        let shown = page
            .strip_prefix(root)
            .unwrap_or(page)
            .display()
            .to_string();
        for target in link_targets(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let (file, fragment) = match target.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (target.as_str(), None),
            };
            let linked = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            if !linked.exists() {
                broken.push(format!("{shown}: {target} (no such file)"));
                continue;
            }
            if let Some(fragment) = fragment {
                let linked_text = std::fs::read_to_string(&linked).unwrap_or_default();
                if !anchors(&linked_text).iter().any(|a| a == fragment) {
                    broken.push(format!("{shown}: {target} (no such heading)"));
                }
            }
        }
    }
    broken
}

#[test]
fn every_link_of_the_documentation_leads_somewhere() {
    let root = repo_root();
    let pages = pages(&root);
    assert!(pages.len() >= 8, "{pages:?}");
    let broken = broken_links(&root, &pages);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn a_link_to_a_missing_file_or_heading_is_named() {
    let root = crate::support::tree(
        "hookcatch-docs",
        &[
            (
                "docs/local.md",
                "# Local\n\n## Routes: add, edit, remove, Test\n",
            ),
            (
                "README.md",
                "See [routes](docs/local.md#routes-add-edit-remove-test), [gone](docs/gone.md), \
                 [nowhere](docs/local.md#nowhere), `[code](not-a-link.md)` and \
                 [web](https://example.com).\n```\n[fenced](also-not.md)\n```\n",
            ),
        ],
    );
    let pages = vec![root.join("README.md"), root.join("docs/local.md")];
    assert_eq!(
        broken_links(&root, &pages),
        [
            "README.md: docs/gone.md (no such file)",
            "README.md: docs/local.md#nowhere (no such heading)",
        ]
    );
}
