//! `berth`: the engine a person types. Commands arrive with later issues.
fn main() {
    eprintln!("berth: the engine is not built yet; use berth-runtime");
    std::process::exit(1);
}
