//! Which seeds a simulation runs, from the environment, and running a
//! scenario over each with its seed printed on failure (part of
//! [`crate::chord_sim`]).

/// Seeds to run: `CHORD_SIM_SEED=S` replays one, `CHORD_SIM_SEEDS=N` runs
/// N (divided by `cost` for scenarios that cost that many ordinary ones),
/// from the `CHORD_SIM_SEED_FROM`th on (a soak runner's share).
pub fn seeds(default_count: u64, salt: u64, cost: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("CHORD_SIM_SEED") {
        return vec![s.parse().expect("CHORD_SIM_SEED must be a number")];
    }
    let number = |var: &str| {
        std::env::var(var).ok().map(|s| {
            s.parse::<u64>()
                .unwrap_or_else(|_| panic!("{var} must be a number"))
        })
    };
    let from = number("CHORD_SIM_SEED_FROM");
    let ks = match (number("CHORD_SIM_SEEDS"), from) {
        (None, _) => 0..default_count,
        (Some(n), None) => 0..(n / cost).max(1),
        // A share of a larger run: the shares of a costly scenario tile
        // its seeds as the ordinary ones do.
        (Some(n), Some(from)) => from / cost..(from + n) / cost,
    };
    ks.map(|k| salt * 1_000_000 + k).collect()
}

/// Run `f` for every seed, printing the seed of a failure so it can be replayed.
pub fn for_each_seed(default_count: u64, salt: u64, f: impl Fn(u64) + std::panic::RefUnwindSafe) {
    for_each_seed_costly(default_count, salt, 1, f)
}

/// [`for_each_seed`] for a scenario `cost` times dearer than the others.
pub fn for_each_seed_costly(
    default_count: u64,
    salt: u64,
    cost: u64,
    f: impl Fn(u64) + std::panic::RefUnwindSafe,
) {
    let keep_going = std::env::var_os("CHORD_SIM_KEEP_GOING").is_some();
    let mut failed = Vec::new();
    for seed in seeds(default_count, salt, cost) {
        let result = std::panic::catch_unwind(|| f(seed));
        if let Err(e) = result {
            eprintln!("FAILED with seed {seed}; replay with CHORD_SIM_SEED={seed}");
            if !keep_going {
                std::panic::resume_unwind(e);
            }
            failed.push(seed);
        }
    }
    assert!(failed.is_empty(), "failed seeds: {failed:?}");
}
