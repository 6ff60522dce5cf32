//! The `onramp` command: `serve` (the default) or `migrate`.

use std::process::ExitCode;

use onramp::{bootstrap, clock::Clock, config::Config, db, server, telemetry::Telemetry};
use tokio::net::TcpListener;

const USAGE: &str = "usage: onramp [serve | migrate | descriptors [FILE] | help]

  serve        create and migrate the database if needed, then serve gRPC (default)
  migrate      create and migrate the database, then exit
  descriptors  write the API's descriptor set, with its HTTP rules and the
               google.rpc error types, for a JSON-transcoding gateway such as
               Envoy (to FILE, or to standard output)

Configuration comes from environment variables; README.md lists them all.";

fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    if command == "serve" {
        onramp::malloc::hold_mapping_threshold();
    }
    if matches!(command.as_str(), "help" | "-h" | "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if command == "descriptors" {
        return write_descriptors(std::env::args().nth(2));
    }
    if !matches!(command.as_str(), "serve" | "migrate") {
        eprintln!("unknown command '{command}'\n\n{USAGE}");
        return ExitCode::from(2);
    }
    // Read before the runtime starts: it is built with the threads the
    // configuration names.
    let config = match Config::from_environment() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run(&command, config)),
        Err(e) => {
            eprintln!("onramp: could not start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: &str, config: Config) -> ExitCode {
    let telemetry = match Telemetry::init(command == "serve" && config.metrics_addr.is_some()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        "migrate" => migrate(&config).await,
        _ => serve(config, &telemetry).await,
    };
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onramp: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_descriptors(path: Option<String>) -> ExitCode {
    use std::io::Write;
    let set = onramp::descriptors::gateway_set();
    let written = match &path {
        Some(path) => std::fs::write(path, &set),
        None => std::io::stdout().write_all(&set),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onramp: writing the descriptor set failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &Config) -> Result<(), server::StartError> {
    if db::create_database_if_missing(&config.database_url).await? {
        println!("created the database");
    }
    let applied = db::migrate(&config.database_url).await?;
    println!("applied {} migration(s)", applied.len());
    Ok(())
}

async fn serve(config: Config, telemetry: &Telemetry) -> Result<(), server::StartError> {
    let listen_addr = config.listen_addr;
    let metrics_addr = config.metrics_addr;
    let dev_bootstrap = config.dev_bootstrap;
    let state = server::prepare(config, Clock::system()).await?;
    let listener = TcpListener::bind(listen_addr)
        .await
        .map_err(|e| format!("cannot listen on {listen_addr} (ONRAMP_LISTEN_ADDR): {e}"))?;
    let address = listener.local_addr()?;
    let metrics = match (metrics_addr, telemetry.registry()) {
        (Some(at), Some(registry)) => {
            let listener = TcpListener::bind(at)
                .await
                .map_err(|e| format!("cannot serve metrics on {at} (ONRAMP_METRICS_ADDR): {e}"))?;
            let at = listener.local_addr()?;
            Some((at, tokio::spawn(onramp::metrics::serve::run(listener, registry))))
        }
        _ => None,
    };

    println!("Onramp is listening on {address} (gRPC, gRPC-Web, health, reflection, the web pages)");
    println!("Emails are {}", state.mailer.describe());
    if telemetry.exporting() {
        println!("Traces are exported over OTLP");
    }
    if let Some((at, _)) = &metrics {
        println!("Metrics are served at http://{at}/metrics");
    }
    let dev = if dev_bootstrap {
        bootstrap::dev_organization(&state).await?
    } else {
        None
    };
    let key = match &dev {
        Some(dev) => {
            println!();
            println!(
                "Created the development organisation '{}' ({})",
                dev.name, dev.organization_id
            );
            println!("Its admin API key, shown this once:");
            println!();
            println!("    {}", dev.api_key);
            dev.api_key.as_str()
        }
        None => "<your API key>",
    };
    println!();
    println!("Try:");
    println!(
        "    grpcurl -plaintext -H 'authorization: Bearer {key}' {address} onramp.v1.UserAdmin/ListUsers"
    );
    if let Some(dev) = &dev {
        println!();
        println!("Invite yourself, then open the link in the email in a browser:");
        println!(
            "    grpcurl -plaintext -H 'authorization: Bearer {key}' -d '{{\"recipients_text\": \"you@example.com\", \
             \"service_area_id\": \"{}\", \"role_id\": \"{}\"}}' {address} onramp.v1.Invitations/SendInvitations",
            dev.service_area_id, dev.role_id
        );
        println!();
        println!(
            "Sign-in page: {}",
            state.config.links.sign_in_for(dev.organization_id)
        );
    }
    println!();

    server::run(state, listener, shutdown_signal()).await?;
    if let Some((_, serving)) = metrics {
        serving.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
