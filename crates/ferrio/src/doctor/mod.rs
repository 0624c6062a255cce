//! `ferrio doctor URL`: walks a Socket.IO deployment the way a client does, one step at a
//! time, and says for every step that fails why it failed and how to fix it.
//!
//! The steps, in order (each one's module says exactly what it checks):
//!
//! | step        | module        | what it checks                                                 |
//! |-------------|---------------|----------------------------------------------------------------|
//! | `tcp`       | [`tcp`]       | the host resolves and accepts a TCP connection                 |
//! | `tls`       | [`tls`]       | https: version, certificate names, issuer, expiry; why refused |
//! | `handshake` | [`handshake`] | the v4 polling handshake: status, open packet, ping settings   |
//! | `cors`      | [`cors`]      | CORS headers for `--origin`, with and without credentials      |
//! | `preflight` | [`preflight`] | the OPTIONS preflight of a polling POST from `--origin`        |
//! | `long-poll` | [`polling`]   | a POST answered promptly on a held GET (no buffering proxy)    |
//! | `upgrade`   | [`websocket`] | the WebSocket upgrade from polling, through the proxy          |
//! | `websocket` | [`websocket`] | a WebSocket opened directly                                    |
//! | `heartbeat` | [`heartbeat`] | the first ping comes on time and the link survives it          |
//! | `eio3`      | [`handshake`] | whether Engine.IO v3 clients (socket.io-client v2) are accepted |
//! | `namespace` | [`socketio`]  | connecting to `--namespace` with `{token}` auth                |
//! | `event`     | [`socketio`]  | the event `ferrio:doctor` acknowledged, with its latency       |
//!
//! Every step ends `pass`, `warn`, `fail`, `info` or `skip` (not run: an earlier step failed
//! or an option is missing), and is bounded by `--timeout`. The exit status is 0 when no step
//! failed, 1 when one did, 2 when the deployment could not be checked (an invalid URL, an
//! unreadable `--ca-file`).
//!
//! Raw probes use hyper and tokio-tungstenite directly, so that every status and header can
//! be seen; the namespace and event steps use `ferrio-client`, as an application would.

mod certificate;
mod cors;
mod handshake;
mod heartbeat;
mod polling;
mod preflight;
mod probe;
mod report;
mod socketio;
mod target;
mod tcp;
mod tls;
mod tls_client;
mod websocket;

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::future::Either;

use crate::cli::DoctorArgs;
use report::{Outcome, Report, Status, Step};
pub(crate) use socketio::DOCTOR_EVENT;
use target::Target;

/// Exit status when a step failed.
const EXIT_FAILED: i32 = 1;
/// Exit status when the deployment could not be checked at all (a bad URL, a bad --ca-file).
const EXIT_UNCHECKED: i32 = 2;

/// What the steps share: the target, the options, and what earlier steps found.
pub(crate) struct Doctor {
    target: Target,
    origin: Option<String>,
    namespace: String,
    token: Option<String>,
    timeout: Duration,
    /// Whether the upgrade from polling worked.
    upgrade_ok: bool,
    steps: Vec<Step>,
}

/// Runs the doctor and prints its report; returns the process exit status.
pub(crate) async fn run(args: DoctorArgs) -> i32 {
    let mut target = match Target::parse(&args.url, args.path.as_deref()) {
        Ok(target) => target,
        Err(error) => {
            eprintln!("ferrio doctor: {error}");
            return EXIT_UNCHECKED;
        }
    };
    if target.tls {
        match tls_client::TlsClient::new(&target.host, args.ca_file.as_deref(), args.insecure) {
            Ok(client) => target.tls_client = Some(client),
            Err(error) => {
                eprintln!("ferrio doctor: {error}");
                return EXIT_UNCHECKED;
            }
        }
    } else if args.ca_file.is_some() || args.insecure {
        eprintln!("ferrio doctor: --ca-file and --insecure are for https:// URLs");
        return EXIT_UNCHECKED;
    }
    let mut doctor = Doctor {
        target,
        origin: args.origin,
        namespace: args.namespace,
        token: args.token,
        timeout: args.timeout,
        upgrade_ok: false,
        steps: Vec::new(),
    };
    doctor.walk().await;
    let report = Report {
        url: doctor.target.url.clone(),
        path: doctor.target.path.clone(),
        namespace: doctor.namespace.clone(),
        ok: !doctor.steps.iter().any(|s| s.status == Status::Fail),
        steps: doctor.steps,
    };
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if report.ok {
        0
    } else {
        EXIT_FAILED
    }
}

impl Doctor {
    async fn walk(&mut self) {
        // The steps borrow these while `self` records.
        let target = self.target.clone();
        let (origin, namespace, token) = (
            self.origin.clone(),
            self.namespace.clone(),
            self.token.clone(),
        );
        let timeout = self.timeout;
        let outcome = self.timed("tcp", tcp::connect(&target)).await;
        if outcome != Status::Pass {
            return self.skip_rest("tcp", "needs a TCP connection");
        }
        match &target.tls_client {
            Some(client) => {
                let status = self.timed("tls", tls::check(&target, client)).await;
                if status == Status::Fail {
                    return self.skip_rest(
                        "tls",
                        "needs a TLS connection the client accepts (--ca-file to trust a private \
                         authority, --insecure to look past the certificate)",
                    );
                }
            }
            None => {
                let skip = Outcome::skip("plain http:// URL: no TLS to check");
                self.record("tls", skip, Duration::ZERO);
            }
        }

        // Each later step opens a session of its own.
        let handshake_status = self
            .timed("handshake", handshake::polling(&target, timeout))
            .await;
        if handshake_status == Status::Fail && !target.tls && tls::speaks_tls(&target).await {
            self.tls_spoken_here();
        }
        if handshake_status == Status::Fail {
            for name in ["cors", "preflight", "long-poll", "upgrade"] {
                self.record(
                    name,
                    Outcome::skip("needs a working polling handshake"),
                    Duration::ZERO,
                );
            }
        } else {
            let cors = cors::check(&target, origin.as_deref(), timeout);
            self.timed("cors", cors).await;
            let preflight = preflight::preflight(&target, origin.as_deref());
            self.timed("preflight", preflight).await;
            let round_trip = polling::round_trip(&target, &namespace, token.as_deref(), timeout);
            self.timed("long-poll", round_trip).await;
            let upgrade = websocket::upgrade(&target, timeout);
            self.upgrade_ok = self.timed("upgrade", upgrade).await == Status::Pass;
        }

        let (outcome, opened) = timed_value(timeout, websocket::direct(&target, timeout)).await;
        let websocket_status = self.push("websocket", outcome);
        let watch = match opened.flatten() {
            Some(opened) => Some(Either::Left(heartbeat::websocket(opened, timeout))),
            None if handshake_status != Status::Fail => {
                Some(Either::Right(heartbeat::polling(&target, timeout)))
            }
            None => None,
        };
        match watch {
            Some(watch) => {
                // The watch bounds itself by the timeout; the margin covers the last read.
                let started = Instant::now();
                let outcome = match tokio::time::timeout(timeout * 2, watch).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::fail(
                        "the heartbeat watch did not end",
                        "report this as a bug of ferrio doctor",
                    ),
                };
                self.record("heartbeat", outcome, started.elapsed());
            }
            None => {
                self.record(
                    "heartbeat",
                    Outcome::skip("needs a polling session or a WebSocket"),
                    Duration::ZERO,
                );
            }
        }

        if handshake_status == Status::Fail {
            self.record(
                "eio3",
                Outcome::skip("needs a working polling handshake"),
                Duration::ZERO,
            );
        } else {
            self.timed("eio3", handshake::eio3(&target, timeout)).await;
        }

        let transports = socketio::transports(
            handshake_status != Status::Fail,
            self.upgrade_ok,
            websocket_status != Status::Fail,
        );
        let Some(transports) = transports else {
            return self.skip_rest("eio3", "needs a working transport");
        };
        let upgrade = transports.1;
        let connect = socketio::connect(&target, &namespace, token.as_deref(), transports, timeout);
        let started = Instant::now();
        // The client gives up after the timeout; the margin covers its last request.
        let (outcome, client) = tokio::time::timeout(timeout + Duration::from_secs(1), connect)
            .await
            .unwrap_or_else(|_| (timed_out(timeout), None));
        self.record("namespace", outcome, started.elapsed());
        match client {
            Some(client) => {
                self.timed("event", socketio::event(&client, upgrade, timeout))
                    .await;
                client.manager().disconnect();
            }
            None => {
                self.record(
                    "event",
                    Outcome::skip("needs a connected namespace"),
                    Duration::ZERO,
                );
            }
        }
    }

    /// Runs one step, bounded by the timeout, and records it.
    async fn timed(&mut self, name: &'static str, step: impl Future<Output = Outcome>) -> Status {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(self.timeout, step).await {
            Ok(outcome) => outcome,
            Err(_) => timed_out(self.timeout),
        };
        self.record(name, outcome, started.elapsed())
    }

    fn push(&mut self, name: &'static str, (outcome, took): (Outcome, Duration)) -> Status {
        self.record(name, outcome, took)
    }

    fn record(&mut self, name: &'static str, outcome: Outcome, took: Duration) -> Status {
        let status = outcome.status;
        self.steps.push(Step::new(name, outcome, took));
        status
    }

    /// The handshake of an http:// URL failed, and the port speaks TLS: says so.
    fn tls_spoken_here(&mut self) {
        let https = format!("https://{}{}", self.target.authority, self.target.path);
        if let Some(step) = self.steps.iter_mut().find(|s| s.name == "handshake") {
            step.detail = format!(
                "{}\nthis port speaks TLS: the URL should be https://",
                step.detail
            );
            step.fix = Some(format!(
                "use {https} (and --ca-file if its certificate is from a private authority); \
                 a TLS port answers plain HTTP with an error (nginx: 400 \"The plain HTTP \
                 request was sent to HTTPS port\")"
            ));
            step.code = Some("tls-expected");
        }
    }

    /// Records every step after `after` as skipped.
    fn skip_rest(&mut self, after: &str, why: &str) {
        let position = STEPS.iter().position(|s| *s == after).unwrap_or(0);
        for name in &STEPS[position + 1..] {
            if !self.steps.iter().any(|s| s.name == *name) {
                self.record(name, Outcome::skip(why), Duration::ZERO);
            }
        }
    }
}

/// Every step, in the order they run.
const STEPS: [&str; 12] = [
    "tcp",
    "tls",
    "handshake",
    "cors",
    "preflight",
    "long-poll",
    "upgrade",
    "websocket",
    "heartbeat",
    "eio3",
    "namespace",
    "event",
];

/// Runs a step that also hands a value to later steps, bounded by the timeout.
async fn timed_value<T>(
    timeout: Duration,
    step: impl Future<Output = (Outcome, Option<T>)>,
) -> ((Outcome, Duration), Option<Option<T>>) {
    let started = Instant::now();
    match tokio::time::timeout(timeout, step).await {
        Ok((outcome, value)) => ((outcome, started.elapsed()), Some(value)),
        Err(_) => ((timed_out(timeout), started.elapsed()), None),
    }
}

fn timed_out(timeout: Duration) -> Outcome {
    Outcome::fail(
        format!("no answer within {}", human(timeout)),
        "check that the server is up and not overloaded, and that no firewall drops packets; \
         raise --timeout for a slow link",
    )
}

/// A duration for people: `250 ms`, `1.5 s`.
pub(crate) fn human(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        let seconds = duration.as_secs_f64();
        if seconds.fract() == 0.0 {
            format!("{seconds:.0} s")
        } else {
            format!("{seconds:.1} s")
        }
    }
}
