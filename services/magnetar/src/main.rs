fn main() -> std::process::ExitCode {
    magnetar::cli::main()
}
