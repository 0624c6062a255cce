//! `ferrio-bench`: see the library documentation, or `ferrio-bench --help`.

fn main() -> std::process::ExitCode {
    match ferrio_bench::run(std::env::args_os()) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ferrio-bench: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
