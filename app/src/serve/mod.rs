//! `ltlab serve`: the web lab. One HTTP server (axum) serves the page (the wasm build of the
//! same panels, embedded in this binary), the runs (files, incremental metrics, grids) and a live
//! channel (server-sent events), and carries out the pages' commands on one engine host.

mod bundle;
mod files;
mod guard;
mod hub;
mod routes;
mod start;

use std::net::SocketAddr;
use std::path::PathBuf;

/// `ltlab serve` options.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// The runs folder: every run in it is listed, runs started from the page go in it.
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Address to listen on. Anything but loopback needs a token (or `--read-only`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Serve files and the live view only: every command is refused (403).
    #[arg(long)]
    pub read_only: bool,
    /// Every request must carry this token (`Authorization: Bearer T` or `?token=T`). Generated
    /// and printed when the address is not loopback and the server is not read-only.
    #[arg(long)]
    pub token: Option<String>,
    /// Another name the server is reached by (the `Host` header; repeatable). localhost,
    /// 127.0.0.1, [::1] and the bound address always are; any other name is refused (403), so
    /// that a site which re-points its own name to this machine (DNS rebinding) reads nothing.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
    /// A folder a page's Start may read datasets from (repeatable; Debian's dataset packages
    /// under /usr/share/datasets always). Any other `--root` is refused (403).
    #[arg(long = "data-root", value_name = "DIR")]
    pub data_roots: Vec<PathBuf>,
}

/// The token every request must carry, if any.
fn token_for(args: &ServeArgs) -> anyhow::Result<Option<String>> {
    if let Some(t) = &args.token {
        anyhow::ensure!(
            t.len() >= 8 && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "option `--token`: expected at least 8 letters, digits, `-` or `_`"
        );
        return Ok(Some(t.clone()));
    }
    if args.addr.ip().is_loopback() || args.read_only {
        return Ok(None);
    }
    let bytes: [u8; 16] = rand::random();
    Ok(Some(bytes.iter().map(|b| format!("{b:02x}")).collect()))
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.runs).map_err(|e| anyhow::anyhow!("option `--runs`: cannot create {}: {e}", args.runs.display()))?;
    let root = args.runs.canonicalize().map_err(|e| anyhow::anyhow!("option `--runs`: {}: {e}", args.runs.display()))?;
    let token = token_for(&args)?;
    let data_roots = start::DataRoots::new(&args.data_roots)?;
    // A few blocking threads (PNG and column encodes), kept for the server's life: the allocator
    // keeps what each thread ever held (main.rs), so threads that came and went with every
    // burst of requests grew the server's memory with no end.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .thread_keep_alive(std::time::Duration::from_secs(24 * 3600))
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("the server's runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr).await.map_err(|e| anyhow::anyhow!("option `--addr`: cannot listen on {}: {e}", args.addr))?;
        let bound = listener.local_addr()?;
        let shared = hub::start(root.clone(), args.read_only);
        let app = routes::router(shared, token.clone(), guard::AllowedHosts::new(bound, &args.allow_hosts), data_roots);
        let query = token.as_ref().map(|t| format!("?token={t}")).unwrap_or_default();
        let host = if bound.ip().is_unspecified() { SocketAddr::new([127, 0, 0, 1].into(), bound.port()) } else { bound };
        println!("ltlab serve: http://{host}/{query}");
        println!("  runs: {}{}", root.display(), if args.read_only { " (read-only)" } else { "" });
        use std::io::Write;
        let _ = std::io::stdout().flush();
        axum::serve(listener, app).await.map_err(|e| anyhow::anyhow!("the server stopped: {e}"))
    })
}
