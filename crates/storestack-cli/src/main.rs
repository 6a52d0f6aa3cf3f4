//! The `storestack` command. See the `storestack_cli` crate docs.

use std::process::ExitCode;

use clap::Parser as _;
use storestack_cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(storestack_cli::EXIT_STORE);
        }
    };
    let code = runtime.block_on(storestack_cli::run(cli));
    // Do not wait for connection tasks the stores left behind.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    ExitCode::from(code)
}
