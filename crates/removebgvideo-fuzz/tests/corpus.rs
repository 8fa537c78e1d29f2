//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through every target on stable,
//! so a target that no longer builds, or an input that once found a bug, fails CI. A few
//! thousand seeded random inputs per target run too, so a change is shaken a little even
//! before anyone runs `cargo +nightly fuzz`.

use std::path::PathBuf;

use removebgvideo_fuzz::TARGETS;

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name)
}

#[test]
fn every_target_has_a_committed_corpus_and_a_fuzz_binary() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for (name, _) in TARGETS {
        let inputs = std::fs::read_dir(corpus(name))
            .unwrap_or_else(|e| panic!("fuzz/corpus/{name}: {e}"))
            .count();
        assert!(inputs > 0, "fuzz/corpus/{name} is empty");
        assert!(
            fuzz.join("fuzz_targets")
                .join(format!("{name}.rs"))
                .exists(),
            "fuzz/fuzz_targets/{name}.rs is missing"
        );
    }
}

#[test]
fn the_committed_corpus_replays_without_a_failure() {
    for (name, target) in TARGETS {
        let mut files: Vec<_> = std::fs::read_dir(corpus(name))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", file.display());
        }
    }
}

#[test]
fn seeded_random_inputs_hold_too() {
    let mut state: u64 = 0x5eed_2026_1201;
    let mut next = move || {
        // xorshift64*: deterministic, so a failure here reproduces.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for (name, target) in TARGETS {
        for case in 0..2_000 {
            let length = (next() % 512) as usize;
            let data: Vec<u8> = (0..length).map(|_| next() as u8).collect();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: seeded case {case} fails");
        }
    }
}
