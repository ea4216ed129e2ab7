//! quinn-client: the quinn baseline of `pnpm bench quic`. Sends Solana-style transactions the way
//! Agave's client library does (quinn, ALPN solana-tpu, a self-signed Ed25519 client certificate, one
//! transaction per unidirectional stream ended with FIN, at most 1232 bytes), keeps `--streams` streams
//! open per connection (quinn's open_uni waits for the peer's MAX_STREAMS), and counts a transaction
//! acked when SendStream::finish resolves, which quinn 0.9 does once the peer acknowledged every byte
//! and the FIN. Connections rotate after --streams-per-connection streams. Prints one JSON line
//! (`{"event":"end","tool":"quinn-client","data":{…}}`) on stdout; errors go to stderr (exit 2 for
//! usage, 1 for a failure).

mod identity;
mod latency;
mod options;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quinn::{ClientConfig, Connection, Endpoint, TransportConfig, WriteError};
use tokio::sync::Notify;

use identity::Identity;
use options::Options;

const SERVER_NAME: &str = "localhost";
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const RECONNECT_BACKOFF: Duration = Duration::from_millis(50);

/// A server certificate verifier that accepts anything: TPU servers present self-signed certificates.
struct AcceptAnyServer;

impl rustls::client::ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::Certificate,
        _intermediates: &[rustls::Certificate],
        _server_name: &rustls::ServerName,
        _scts: &mut dyn Iterator<Item = &[u8]>,
        _ocsp_response: &[u8],
        _now: std::time::SystemTime,
    ) -> Result<rustls::client::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::ServerCertVerified::assertion())
    }
}

fn client_config(opts: &Options, identity: &Identity) -> Result<ClientConfig, String> {
    let mut crypto = rustls::ClientConfig::builder()
        .with_safe_default_cipher_suites()
        .with_safe_default_kx_groups()
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS versions: {}", e))?
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer))
        .with_single_cert(vec![rustls::Certificate(identity.certificate.clone())], rustls::PrivateKey(identity.pkcs8.clone()))
        .map_err(|e| format!("client certificate: {}", e))?;
    crypto.alpn_protocols = vec![opts.alpn.as_bytes().to_vec()];
    let mut transport = TransportConfig::default();
    transport.max_concurrent_uni_streams(0u8.into());
    transport.max_concurrent_bidi_streams(0u8.into());
    transport.max_idle_timeout(Some(Duration::from_secs(30).try_into().map_err(|_| "idle timeout".to_string())?));
    let mut config = ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// What every connection adds up to.
#[derive(Default)]
struct Totals {
    acked: AtomicU64,
    /// streams whose FIN was not acknowledged: connection lost, stopped by the peer, or the drain ran out
    unacked: AtomicU64,
    handshakes: AtomicU64,
    handshake_failures: AtomicU64,
    datagrams_sent: AtomicU64,
    send_calls: AtomicU64,
    datagrams_received: AtomicU64,
    lost_packets: AtomicU64,
    closes: Mutex<Vec<String>>,
}

struct Deadlines {
    /// no stream is opened after this
    stop: Instant,
    /// acknowledgements still awaited until this
    drain: Instant,
}

async fn connect(endpoint: &Endpoint, opts: &Options, totals: &Totals) -> Result<Connection, String> {
    let connecting = endpoint.connect(opts.server, SERVER_NAME).map_err(|e| format!("connect: {}", e))?;
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => {
            totals.handshakes.fetch_add(1, Ordering::Relaxed);
            Ok(conn)
        }
        Ok(Err(e)) => {
            totals.handshake_failures.fetch_add(1, Ordering::Relaxed);
            Err(format!("handshake with {}: {}", opts.server, e))
        }
        Err(_) => {
            totals.handshake_failures.fetch_add(1, Ordering::Relaxed);
            Err(format!("handshake with {}: no answer in {:?}", opts.server, HANDSHAKE_TIMEOUT))
        }
    }
}

/// One connection's run: its stream slots count the streams they open on it, and the first slot past
/// `limit` (--streams-per-connection) or the end of every slot raises `event`.
struct ConnectionRun {
    conn: Connection,
    opened: AtomicU64,
    limit: u64,
    event: Notify,
}

/// One stream slot of a connection: open a stream (waiting for MAX_STREAMS credit), write one
/// transaction with FIN, await its acknowledgement, again until the stop deadline or the connection's
/// stream limit. Returns the send→ack latencies (ns) and whether the connection was lost.
async fn stream_slot(run: Arc<ConnectionRun>, tx: Arc<Vec<u8>>, deadlines: Arc<Deadlines>, totals: Arc<Totals>) -> (Vec<u64>, bool) {
    let mut latencies = Vec::with_capacity(4096);
    while Instant::now() < deadlines.stop {
        if run.opened.fetch_add(1, Ordering::Relaxed) >= run.limit {
            run.event.notify_one();
            break;
        }
        let mut stream = match run.conn.open_uni().await {
            Ok(stream) => stream,
            Err(_) => return (latencies, true),
        };
        let sent_at = Instant::now();
        if let Err(e) = stream.write_all(&tx).await {
            totals.unacked.fetch_add(1, Ordering::Relaxed);
            return (latencies, matches!(e, WriteError::ConnectionLost(_)));
        }
        match tokio::time::timeout_at(deadlines.drain.into(), stream.finish()).await {
            Ok(Ok(())) => {
                latencies.push(sent_at.elapsed().as_nanos() as u64);
                totals.acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(WriteError::ConnectionLost(_))) => {
                totals.unacked.fetch_add(1, Ordering::Relaxed);
                return (latencies, true);
            }
            Ok(Err(_)) => {
                totals.unacked.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                totals.unacked.fetch_add(1, Ordering::Relaxed);
                return (latencies, false);
            }
        }
    }
    (latencies, false)
}

fn add_stats(totals: &Totals, conn: &Connection) {
    let stats = conn.stats();
    totals.datagrams_sent.fetch_add(stats.udp_tx.datagrams, Ordering::Relaxed);
    totals.send_calls.fetch_add(stats.udp_tx.transmits, Ordering::Relaxed);
    totals.datagrams_received.fetch_add(stats.udp_rx.datagrams, Ordering::Relaxed);
    totals.lost_packets.fetch_add(stats.path.lost_packets, Ordering::Relaxed);
}

/// Every stream slot of one connection, to their end; then the connection's stats, and a close unless
/// it was lost. Returns the latencies and whether the connection was lost.
async fn drive_connection(run: Arc<ConnectionRun>, streams: usize, tx: Arc<Vec<u8>>, deadlines: Arc<Deadlines>, totals: Arc<Totals>) -> (Vec<u64>, bool) {
    let slots: Vec<_> = (0..streams)
        .map(|_| tokio::spawn(stream_slot(run.clone(), tx.clone(), deadlines.clone(), totals.clone())))
        .collect();
    let mut latencies = Vec::new();
    let mut lost = false;
    for slot in slots {
        let (mut l, slot_lost) = slot.await.expect("stream task");
        latencies.append(&mut l);
        lost |= slot_lost;
    }
    add_stats(&totals, &run.conn);
    if lost {
        if let Some(reason) = run.conn.close_reason() {
            totals.closes.lock().unwrap().push(reason.to_string());
        }
    } else {
        run.conn.close(0u8.into(), b"done");
    }
    run.event.notify_one();
    (latencies, lost)
}

/// One connection slot until the stop deadline. After --streams-per-connection streams the next
/// connection is opened at once while the old one drains (quic-sink, on ngtcp2 0.12, closes a connection
/// that used up its streams: rotating first, as quic-flood does, spares the stall); a connection the
/// server closes is reopened.
async fn connection_slot(
    endpoint: Endpoint,
    first: Connection,
    opts: Arc<Options>,
    tx: Arc<Vec<u8>>,
    deadlines: Arc<Deadlines>,
    totals: Arc<Totals>,
) -> Vec<u64> {
    let mut draining = Vec::new();
    let mut conn = first;
    loop {
        let run = Arc::new(ConnectionRun { conn, opened: AtomicU64::new(0), limit: opts.streams_per_connection, event: Notify::new() });
        let driver = tokio::spawn(drive_connection(run.clone(), opts.streams, tx.clone(), deadlines.clone(), totals.clone()));
        run.event.notified().await;
        draining.push(driver);
        if Instant::now() >= deadlines.stop {
            break;
        }
        // the stream limit (the old connection drains meanwhile) or a lost connection: a new one
        let mut next = None;
        while next.is_none() && Instant::now() < deadlines.stop {
            match connect(&endpoint, &opts, &totals).await {
                Ok(c) => next = Some(c),
                Err(e) => {
                    eprintln!("quinn-client: {}", e);
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                }
            }
        }
        match next {
            Some(c) => conn = c,
            None => break,
        }
    }
    let mut latencies = Vec::new();
    for driver in draining {
        latencies.append(&mut driver.await.expect("connection task").0);
    }
    latencies
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

async fn run(opts: Arc<Options>) -> Result<String, String> {
    let identity = Identity::generate()?;
    let config = client_config(&opts, &identity)?;
    let mut endpoints = Vec::with_capacity(opts.endpoints);
    for _ in 0..opts.endpoints {
        let mut endpoint = Endpoint::client("0.0.0.0:0".parse().unwrap()).map_err(|e| format!("UDP socket: {}", e))?;
        endpoint.set_default_client_config(config.clone());
        endpoints.push(endpoint);
    }
    let totals = Arc::new(Totals::default());
    let mut conns = Vec::with_capacity(opts.connections);
    for i in 0..opts.connections {
        conns.push(connect(&endpoints[i % endpoints.len()], &opts, &totals).await?);
    }
    let tx: Arc<Vec<u8>> = Arc::new((0..opts.tx_size).map(|i| (i * 131 + 7) as u8).collect());
    let started = Instant::now();
    let deadlines = Arc::new(Deadlines { stop: started + opts.duration, drain: started + opts.duration + opts.drain });
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let endpoint = endpoints[i % endpoints.len()].clone();
            tokio::spawn(connection_slot(endpoint, conn, opts.clone(), tx.clone(), deadlines.clone(), totals.clone()))
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.append(&mut task.await.map_err(|e| format!("connection task: {}", e))?);
    }
    let seconds = started.elapsed().as_secs_f64();
    for endpoint in &endpoints {
        endpoint.wait_idle().await;
    }
    let acked = totals.acked.load(Ordering::Relaxed);
    let closes: Vec<String> = totals.closes.lock().unwrap().iter().map(|c| json_string(c)).collect();
    let latency = latency::percentiles(&mut latencies).map(|p| p.to_json()).unwrap_or_else(|| "null".to_string());
    Ok(format!(
        concat!(
            "{{\"event\":\"end\",\"tool\":\"quinn-client\",\"data\":{{\"server\":\"{}\",\"acked\":{},\"unacked\":{},",
            "\"seconds\":{:.3},\"ackedPerSec\":{},\"ackLatencyUs\":{},\"connections\":{},\"endpoints\":{},",
            "\"streamsInFlight\":{},\"rotateAfterStreams\":{},\"txSize\":{},\"threads\":{},\"handshakes\":{},\"handshakeFailures\":{},",
            "\"closes\":[{}],\"datagramsSent\":{},\"sendCalls\":{},\"datagramsReceived\":{},\"lostPackets\":{}}}}}"
        ),
        opts.server,
        acked,
        totals.unacked.load(Ordering::Relaxed),
        seconds,
        (acked as f64 / seconds).round(),
        latency,
        opts.connections,
        opts.endpoints,
        opts.streams,
        opts.streams_per_connection,
        opts.tx_size,
        opts.threads,
        totals.handshakes.load(Ordering::Relaxed),
        totals.handshake_failures.load(Ordering::Relaxed),
        closes.join(","),
        totals.datagrams_sent.load(Ordering::Relaxed),
        totals.send_calls.load(Ordering::Relaxed),
        totals.datagrams_received.load(Ordering::Relaxed),
        totals.lost_packets.load(Ordering::Relaxed),
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match options::parse(&args) {
        Ok(opts) => Arc::new(opts),
        Err(message) if message.is_empty() => {
            eprintln!("{}", options::USAGE);
            return;
        }
        Err(message) => {
            eprintln!("quinn-client: {}\n{}", message, options::USAGE);
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(opts.threads).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("quinn-client: tokio runtime: {}", e);
            std::process::exit(1);
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(line) => println!("{}", line),
        Err(e) => {
            eprintln!("quinn-client: {}", e);
            std::process::exit(1);
        }
    }
}
