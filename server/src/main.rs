//! The `airlock` binary: everything is in `airlock_server::cli::main`, so the tests can
//! build the same program under another name (their check worker).

fn main() -> std::process::ExitCode {
    airlock_server::cli::main()
}
