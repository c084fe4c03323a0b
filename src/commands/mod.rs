//! The three executables' bodies. Each reads its request from stdin, writes exactly one JSON
//! response to stdout, and logs to stderr; [`main`] turns an error into a one-paragraph message
//! on stderr and exit status 1.

pub mod check;
pub mod get;
pub mod put;

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
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(executable, &args) {
        Ok(response) => {
            let mut stdout = std::io::stdout().lock();
            match serde_json::to_writer(&mut stdout, &response)
                .map_err(std::io::Error::from)
                .and_then(|()| stdout.write_all(b"\n"))
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: writing the response to stdout: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(executable: Executable, args: &[String]) -> anyhow::Result<serde_json::Value> {
    use anyhow::Context as _;
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("reading the request from stdin")?;
    match executable {
        Executable::Check => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(check::run(&input))
        }
        Executable::In => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(get::run(&input, args))
        }
        Executable::Out => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(put::run(&input, args))
        }
    }
}
