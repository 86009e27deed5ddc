//! The `airlock` program under another name, built with the tests so they can start it
//! as the check worker (cargo builds a package's binaries for its integration tests,
//! not those of its dependencies).

fn main() -> std::process::ExitCode {
    airlock_server::cli::main()
}
