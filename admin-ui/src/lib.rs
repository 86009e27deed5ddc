//! Airlock's admin web UI: renders plain view models to HTML. It knows nothing of
//! storage, HTTP or the scanner. The pages arrive with the admin UI issue; until then
//! this crate holds the place the workspace layout prescribes.
#![warn(missing_docs)]
