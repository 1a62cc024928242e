//! The one build, run, test and bench entry point: `cargo xtask <command>`.
//!
//! `cargo xtask --help` lists the commands ([`args::Cmd`]).

mod args;
mod bench;
mod build;
mod demo;
mod factory;
mod fuses;
mod fuzz;
mod image;
mod keys;
mod prereq;
mod run;
mod testcmd;

use clap::{CommandFactory, Parser};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Error type of the xtask commands: a message for the user.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;

/// The workspace root.
pub fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The cargo binary running us (`CARGO`), or `cargo`.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    // Without the OEM's key (`MFG_BOOT_KEY`), the project's own builds use
    // the development boot key, production ones included (keys/dev/).
    if std::env::var_os("MFG_BOOT_KEY").is_none() {
        c.env("MFG_ALLOW_DEV_BOOT_KEY", "1");
    }
    c
}

/// Prints a command line the way a user would type it.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command, echoing it, and fails unless it exits 0.
pub fn run_cmd(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", show(cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", show(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", show(cmd)).into())
    }
}

fn main() -> ExitCode {
    // A usage error exits with status 2, `--help` with 0.
    let Some(cmd) = args::Cli::parse().cmd else {
        return match args::Cli::command().print_help() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    };
    let result = match cmd {
        args::Cmd::Build(opts) => build::build(&opts).map(|_| ()),
        args::Cmd::Qemu {
            build,
            fuses,
            disk,
            qemu_args,
        } => run::interactive(build, fuses, disk, qemu_args),
        args::Cmd::Fuses(args::FusesCmd::New(f)) => fuses::new(&f),
        args::Cmd::Fuses(args::FusesCmd::Show { file, json }) => fuses::show(&file, json),
        args::Cmd::Test => testcmd::test(),
        args::Cmd::Bench => bench::bench(),
        args::Cmd::Fuzz { cases, secs } => fuzz::fuzz(cases, secs),
        args::Cmd::Demo => demo::demo(),
        args::Cmd::Clippy => testcmd::clippy_all(),
        args::Cmd::Fmt { check } => testcmd::fmt(check),
        args::Cmd::Elf2Bin { elf, bin } => build::elf2bin(&elf, &bin),
        args::Cmd::Factory(o) => factory::factory(&o),
        args::Cmd::Prereqs => prereq::ensure(prereq::Need::All).map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
