//! `darts-pt`: the command-line entry; the CLI lives in [`cli`].

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
