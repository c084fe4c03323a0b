//! Integration tests: our built executables against real registries started by the
//! harness in `util/`. One test binary (`autotests = false`).

mod util;

mod check;
mod check_access;
mod get;
mod get_hostile;
mod get_rootfs;
mod harness;
mod put;
mod put_sources;
