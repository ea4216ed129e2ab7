//! Send→ack latency percentiles (nearest rank) over every acked transaction, in microseconds.

pub struct Percentiles {
    pub count: usize,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

fn rank(sorted: &[u64], q: f64) -> f64 {
    let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1000.0
}

/// Percentiles of latencies given in nanoseconds (sorted in place); None when there are none.
pub fn percentiles(nanos: &mut [u64]) -> Option<Percentiles> {
    if nanos.is_empty() {
        return None;
    }
    nanos.sort_unstable();
    Some(Percentiles {
        count: nanos.len(),
        min: rank(nanos, 0.0),
        p50: rank(nanos, 0.5),
        p90: rank(nanos, 0.9),
        p99: rank(nanos, 0.99),
        p999: rank(nanos, 0.999),
        max: rank(nanos, 1.0),
    })
}

impl Percentiles {
    pub fn to_json(&self) -> String {
        format!(
            "{{\"count\":{},\"min\":{:.1},\"p50\":{:.1},\"p90\":{:.1},\"p99\":{:.1},\"p999\":{:.1},\"max\":{:.1}}}",
            self.count, self.min, self.p50, self.p90, self.p99, self.p999, self.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<u64> = (1..=1000).rev().map(|n| n * 1000).collect();
        let p = percentiles(&mut v).unwrap();
        assert_eq!((p.count, p.min, p.p50, p.p90, p.p99, p.p999, p.max), (1000, 1.0, 500.0, 900.0, 990.0, 999.0, 1000.0));
        assert!(percentiles(&mut []).is_none());
        assert_eq!(p.to_json(), "{\"count\":1000,\"min\":1.0,\"p50\":500.0,\"p90\":900.0,\"p99\":990.0,\"p999\":999.0,\"max\":1000.0}");
    }
}
