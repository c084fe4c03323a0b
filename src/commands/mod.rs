//! The three executables' bodies. Each command is a function of the request bytes, the
//! arguments and a [`Log`], returning the response; [`main`] wires them to stdin, stdout and
//! stderr, and turns an error into a one-paragraph message on stderr and exit status 1.

pub mod check;
pub mod get;
pub mod put;

use crate::log::Log;
use std::io::{Read, Write};
use std::process::ExitCode;

/// Which executable is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executable {
    /// `/opt/resource/check`.
    Check,
    /// `/opt/resource/in`.
    In,
    /// `/opt/resource/out`.
    Out,
}

/// The whole of an executable: read stdin, run, print the response or the error.
pub fn main(executable: Executable) -> ExitCode {
    let log = Log::stderr();
    let response = arguments(std::env::args_os().skip(1)).and_then(|args| {
        let mut input = Vec::new();
        std::io::stdin()
            .read_to_end(&mut input)
            .map_err(|e| anyhow::anyhow!("reading the request from stdin: {e}"))?;
        run(executable, &input, &args, &log)
    });
    match response {
        Ok(response) => {
            let mut stdout = std::io::stdout().lock();
            match serde_json::to_writer(&mut stdout, &response)
                .map_err(std::io::Error::from)
                .and_then(|()| stdout.write_all(b"\n"))
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log.line(format_args!("error: writing the response to stdout: {e}"));
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            log.line(format_args!("error: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// `source.repository` as written (D and R do not normalise it; R's bare ECR names get their
/// ECR host, as R writes them), less a `:tag` or `@digest` carried there, so that
/// `repository:tag` still names the image: the `repository` file and metadata of `in` and
/// `out`.
pub(crate) fn repository_as_written(source: &crate::resource::Source) -> String {
    without_tag_or_digest(source.repository_name().trim()).to_string()
}

/// `repository` without a trailing `:tag` or `@digest` (a port's colon stays).
fn without_tag_or_digest(repository: &str) -> &str {
    let name = repository
        .split_once('@')
        .map_or(repository, |(name, _)| name);
    let last = name.rfind('/').map_or(0, |i| i + 1);
    match name[last..].find(':') {
        Some(colon) => &name[..last + colon],
        None => name,
    }
}

/// The platform to pick out of an index: the given one's fields over the host's.
pub(crate) fn platform_spec(
    platform: Option<&crate::resource::Platform>,
) -> crate::image::manifest::PlatformSpec {
    use crate::image::manifest::PlatformSpec;
    match platform {
        Some(p) => PlatformSpec::with_overrides(
            p.os.as_deref(),
            p.architecture.as_deref(),
            p.variant.as_deref(),
        ),
        None => PlatformSpec::host(),
    }
}

/// The arguments as text: a directory whose name is not UTF-8 is an error, not a panic
/// (Concourse always passes plain paths).
fn arguments(args: impl Iterator<Item = std::ffi::OsString>) -> anyhow::Result<Vec<String>> {
    args.enumerate()
        .map(|(i, arg)| {
            arg.into_string().map_err(|arg| {
                anyhow::anyhow!(
                    "argument {} ({}) is not valid UTF-8; give the directory by a UTF-8 path",
                    i + 1,
                    std::path::Path::new(&arg).display()
                )
            })
        })
        .collect()
}

/// Runs one command on the request `input` with its arguments (`in`'s destination, `out`'s
/// sources directory) on a runtime of its own; messages go to `log`.
pub fn run(
    executable: Executable,
    input: &[u8],
    args: &[String],
    log: &Log,
) -> anyhow::Result<serde_json::Value> {
    use anyhow::Context as _;
    match executable {
        Executable::Check => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(check::run(input, log))
        }
        Executable::In => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(get::run(input, args, log))
        }
        Executable::Out => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(put::run(input, args, log))
        }
    }
}

#[cfg(test)]
mod tests;
