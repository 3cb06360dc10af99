//! The `kiln` binary: `kiln serve` runs the server; every other subcommand is its client.

mod access;
mod builds;
mod cli;
mod commands;
mod config_files;
mod credentials;
mod functions;
mod includes;
mod npm_config;
mod output;
mod pack;
mod pip_config;
mod push;
mod serve;
mod tasks;

use std::process::ExitCode;

use cli::{AdminCommand, Command};

fn main() -> ExitCode {
    let cli = cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Admin(AdminCommand::ResetToken { data_dir }) => serve::reset_admin_token(&data_dir).await,
            Command::Openapi => commands::print_openapi(),
            Command::Schema { name } => commands::print_schema(&name),
            Command::Login(args) => access::login(cli.connection.server.as_deref(), args).await,
            Command::Logout => access::logout(cli.connection.server.as_deref()),
            other => commands::run(&cli.connection, cli.output, other).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // What a shell reports for a tool stopped by SIGPIPE, without a word on a stream
        // nobody reads any more.
        Err(e) if e.downcast_ref::<output::OutputClosed>().is_some() => ExitCode::from(141),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
