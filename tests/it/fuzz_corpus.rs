//! Replays the fuzz targets' committed corpus (`fuzz/corpus/<target>/`) through the same entry
//! points the fuzzer calls, so every seed and every saved crash stays a regression test in CI.

use std::path::Path;

use crate::support::repo_root;

fn replay(target: &str, entry: fn(&[u8])) {
    let dir = repo_root().join("fuzz/corpus").join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 2,
        "{target}: the seed corpus is missing from {}",
        dir.display()
    );
    for input in &inputs {
        let data = std::fs::read(input).unwrap();
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let outcome = std::panic::catch_unwind(|| entry(&data));
        assert!(outcome.is_ok(), "{target}/{name} panicked");
    }
}

#[test]
fn verify_corpus() {
    replay("verify", hookcatch::testing::fuzzing::verify);
}

#[test]
fn envelope_corpus() {
    replay("envelope", hookcatch::testing::fuzzing::envelope);
}

#[test]
fn forms_corpus() {
    replay("forms", hookcatch::testing::fuzzing::forms);
}

#[test]
fn function_url_corpus() {
    replay("function_url", hookcatch_ingest::testing::fuzz_function_url);
}

#[test]
fn every_fuzz_target_has_a_corpus_and_a_replay() {
    let targets = std::fs::read_dir(repo_root().join("fuzz/fuzz_targets")).unwrap();
    for target in targets {
        let path = target.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            Path::new(&repo_root().join("fuzz/corpus").join(&name)).is_dir(),
            "fuzz target {name} has no corpus"
        );
        let this = std::fs::read_to_string(repo_root().join("tests/it/fuzz_corpus.rs")).unwrap();
        assert!(
            this.contains(&format!("replay(\"{name}\"")),
            "fuzz target {name} is not replayed here"
        );
    }
}
