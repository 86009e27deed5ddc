//! The subcommands of the `airlock` binary. Each reads its own input and hands bytes to
//! the pure crates or runs the server.

pub mod admin;
pub mod prefetch;
pub mod scan;
pub mod scan_provenance;
pub mod serve;
pub mod users;
pub mod verify;
