//! Command-line options (hand-parsed: no argument parser is among the crates this builds with).

use std::net::SocketAddr;
use std::time::Duration;

pub const USAGE: &str = "usage: quinn-client --server IP:PORT [--connections 1] [--endpoints N] [--streams 512]
       [--streams-per-connection 131072] [--duration 5] [--tx-size 235] [--threads N] [--alpn solana-tpu] [--drain 2]
  Sends one transaction per unidirectional stream (with FIN) over quinn and counts a transaction
  acked when its stream is fully acknowledged (SendStream::finish resolves). One JSON line on stdout.
  --connections  QUIC connections (default 1: on this 2-core bed, more connections only split one core)
  --endpoints    UDP sockets (quinn endpoints) the connections are spread over (default: one each)
  --streams      streams kept open per connection; more than the server's MAX_STREAMS only wait
                 (default 512, quic-sink's grant)
  --streams-per-connection  open the next connection after this many streams, the old one
                 draining meanwhile (default 131072, quic-flood's; 0: never)
  --duration     seconds of sending after every handshake is done (default 5)
  --tx-size      bytes per transaction, at most 1232 (default 235, quic-flood's)
  --threads      tokio worker threads (default: the CPUs)
  --drain        seconds to wait for the last acknowledgements after --duration (default 2)";

#[derive(Debug, Clone)]
pub struct Options {
    pub server: SocketAddr,
    pub connections: usize,
    pub endpoints: usize,
    pub streams: usize,
    pub streams_per_connection: u64,
    pub duration: Duration,
    pub tx_size: usize,
    pub threads: usize,
    pub alpn: String,
    pub drain: Duration,
}

pub const MAX_TX_SIZE: usize = 1232;

fn number(flag: &str, value: &str, min: f64, max: f64) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!("{} takes a number from {} to {}, not {:?}", flag, min, max, value)),
    }
}

/// Options from the arguments after the program name; Err carries the usage error.
pub fn parse(args: &[String]) -> Result<Options, String> {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut server = None;
    let mut connections = 1usize;
    let mut endpoints = None;
    let mut streams = 512usize;
    let mut streams_per_connection = 131072u64;
    let mut duration = 5.0;
    let mut tx_size = 235usize;
    let mut threads = cpus;
    let mut alpn = "solana-tpu".to_string();
    let mut drain = 2.0;
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = args.get(i + 1).ok_or_else(|| format!("{} needs a value", flag))?;
        match flag {
            "--server" => {
                server = Some(value.parse::<SocketAddr>().map_err(|_| format!("--server takes IP:PORT, not {:?}", value))?)
            }
            "--connections" => connections = number(flag, value, 1.0, 1024.0)? as usize,
            "--endpoints" => endpoints = Some(number(flag, value, 1.0, 1024.0)? as usize),
            "--streams" => streams = number(flag, value, 1.0, 65536.0)? as usize,
            "--streams-per-connection" => {
                streams_per_connection = match number(flag, value, 0.0, 1e15)? as u64 {
                    0 => u64::MAX,
                    n => n,
                }
            }
            "--duration" => duration = number(flag, value, 0.1, 86400.0)?,
            "--tx-size" => tx_size = number(flag, value, 1.0, MAX_TX_SIZE as f64)? as usize,
            "--threads" => threads = number(flag, value, 1.0, 256.0)? as usize,
            "--alpn" => alpn = value.clone(),
            "--drain" => drain = number(flag, value, 0.0, 60.0)?,
            _ => return Err(format!("unknown option {}", flag)),
        }
        i += 2;
    }
    let server = server.ok_or_else(|| "--server IP:PORT is required".to_string())?;
    let endpoints = endpoints.unwrap_or(connections).min(connections);
    Ok(Options {
        server,
        connections,
        endpoints,
        streams,
        streams_per_connection,
        duration: Duration::from_secs_f64(duration),
        tx_size,
        threads,
        alpn,
        drain: Duration::from_secs_f64(drain),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_and_limits() {
        let o = parse(&args("--server 10.0.0.1:8004")).unwrap();
        assert_eq!((o.connections, o.endpoints, o.streams, o.tx_size), (1, 1, 512, 235));
        assert!(parse(&args("--server 10.0.0.1:8004 --tx-size 1233")).is_err());
        assert!(parse(&args("--connections 2")).is_err());
        assert!(parse(&args("--server nowhere")).is_err());
        assert_eq!(parse(&args("--server 10.0.0.1:1 --connections 2 --endpoints 8")).unwrap().endpoints, 2);
        assert_eq!(o.streams_per_connection, 131072);
        assert_eq!(parse(&args("--server 10.0.0.1:1 --streams-per-connection 0")).unwrap().streams_per_connection, u64::MAX);
    }
}
