// A broker allocates and frees many small buffers per message on several threads; mimalloc's
// thread-local free lists cut glibc malloc's share of the CPU (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    magnetar::cli::main()
}
