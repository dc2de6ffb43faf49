//! Server health and selection: smoothed RTT, consecutive failures, the
//! order servers are tried in, and the adaptive per-attempt timeout.
//!
//! A deterministic state machine: time comes in as arguments, so tests are
//! exact without sleeping.

use std::time::Duration;

/// Samples needed before the timeout adapts to the measured RTT.
const SAMPLES_FOR_ADAPTIVE: u32 = 3;
/// Adaptive timeout = this × SRTT (then clamped).
const RTT_MULTIPLIER: u32 = 5;

/// Health of one server, as exposed to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerHealth {
    /// Smoothed round-trip time (RFC 6298 style, α = 1/8), once measured.
    pub srtt: Option<Duration>,
    /// RTT samples taken.
    pub samples: u32,
    /// Failures (timeouts, SERVFAIL, REFUSED, malformed) since the last success.
    pub consecutive_failures: u32,
    /// Whether the server counts as down (left to background probes).
    pub down: bool,
    /// The per-attempt timeout the next query to this server gets.
    pub timeout: Duration,
}

/// The health table of all configured servers.
#[derive(Debug, Clone)]
pub struct Health {
    servers: Vec<ServerHealth>,
    /// Useful answers from each server so far: a query that times out
    /// after its server answered others meanwhile says nothing about the
    /// server (see [`Health::timed_out`]).
    answers: Vec<u64>,
    max_timeout: Duration,
    min_timeout: Duration,
    down_after: u32,
    rotation: usize,
    rotate: bool,
}

impl Health {
    /// A table for `count` servers, none measured yet.
    pub fn new(
        count: usize,
        max_timeout: Duration,
        min_timeout: Duration,
        down_after: u32,
        rotate: bool,
    ) -> Self {
        let fresh = ServerHealth {
            timeout: max_timeout,
            ..Default::default()
        };
        Self {
            servers: vec![fresh; count],
            answers: vec![0; count],
            max_timeout,
            min_timeout: min_timeout.min(max_timeout),
            down_after: down_after.max(1),
            rotation: 0,
            rotate,
        }
    }

    /// Snapshot of every server's state, in configuration order.
    pub fn servers(&self) -> &[ServerHealth] {
        &self.servers
    }

    /// The order to try servers in for one round: up servers, fastest first
    /// (unmeasured ones count as fast so they get measured; ties keep the
    /// configured order, or rotate when asked). Down servers are left to
    /// the probes, unless every server is down.
    pub fn order(&mut self) -> Vec<usize> {
        let mut up: Vec<usize> = (0..self.servers.len())
            .filter(|&i| !self.servers[i].down)
            .collect();
        if up.is_empty() {
            up = (0..self.servers.len()).collect();
        }
        if self.rotate && !up.is_empty() {
            let shift = self.rotation % up.len();
            self.rotation = self.rotation.wrapping_add(1);
            up.rotate_left(shift);
        }
        up.sort_by_key(|&i| self.servers[i].srtt.unwrap_or(Duration::ZERO));
        up
    }

    /// The per-attempt timeout for server `i`.
    pub fn timeout(&self, i: usize) -> Duration {
        self.servers.get(i).map_or(self.max_timeout, |s| s.timeout)
    }

    /// Server `i` answered usefully after `rtt`.
    pub fn success(&mut self, i: usize, rtt: Duration) {
        let Some(s) = self.servers.get_mut(i) else {
            return;
        };
        s.srtt = Some(match s.srtt {
            Some(srtt) => (srtt * 7 + rtt) / 8,
            None => rtt,
        });
        s.samples = s.samples.saturating_add(1);
        if let Some(answers) = self.answers.get_mut(i) {
            *answers += 1;
        }
        s.consecutive_failures = 0;
        s.down = false;
        s.timeout = adaptive_timeout(s, self.min_timeout, self.max_timeout);
    }

    /// Server `i` failed an attempt. Returns true when this made it down.
    pub fn failure(&mut self, i: usize) -> bool {
        let Some(s) = self.servers.get_mut(i) else {
            return false;
        };
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        let was_down = s.down;
        s.down = s.consecutive_failures >= self.down_after;
        s.down && !was_down
    }

    /// Useful answers from server `i` so far: what a query notes when it
    /// is sent, for [`Health::timed_out`].
    pub fn answers(&self, i: usize) -> u64 {
        self.answers.get(i).copied().unwrap_or(0)
    }

    /// A query to server `i`, sent when the server had given
    /// `answers_at_send` answers, got none in time. If the server answered
    /// other queries since, the query was lost or its name is slow (a
    /// long-tailed zone): the server is up and its timeout fits, so
    /// nothing changes. Otherwise it is a failure, and the server's timeout
    /// doubles (RFC 6298 §5.5) up to the configured one, so a server that
    /// slowed down is waited for long enough again; the next answer
    /// recomputes the timeout from the SRTT. Returns true when this made
    /// the server down.
    pub fn timed_out(&mut self, i: usize, answers_at_send: u64) -> bool {
        if self.answers(i) > answers_at_send {
            return false;
        }
        if let Some(s) = self.servers.get_mut(i) {
            s.timeout = (s.timeout * 2).min(self.max_timeout);
        }
        self.failure(i)
    }

    /// A probe of server `i` came back after `rtt`: it is up again, and its
    /// RTT estimate restarts from this sample.
    pub fn probe_succeeded(&mut self, i: usize, rtt: Duration) {
        let Some(s) = self.servers.get_mut(i) else {
            return;
        };
        s.srtt = None;
        self.success(i, rtt);
    }

    /// Indices of servers that are down.
    pub fn down(&self) -> Vec<usize> {
        (0..self.servers.len())
            .filter(|&i| self.servers[i].down)
            .collect()
    }
}

fn adaptive_timeout(s: &ServerHealth, min: Duration, max: Duration) -> Duration {
    match s.srtt {
        Some(srtt) if s.samples >= SAMPLES_FOR_ADAPTIVE => (srtt * RTT_MULTIPLIER).clamp(min, max),
        _ => max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn table(n: usize) -> Health {
        Health::new(n, 2000 * MS, 250 * MS, 3, false)
    }

    #[test]
    fn prefers_fast_servers_and_adapts_the_timeout() {
        let mut h = table(3);
        assert_eq!(h.order(), [0, 1, 2]);
        for _ in 0..3 {
            h.success(0, 80 * MS);
            h.success(1, 10 * MS);
        }
        // Server 2 is unmeasured: tried first so it gets measured.
        assert_eq!(h.order(), [2, 1, 0]);
        h.success(2, 40 * MS);
        assert_eq!(h.order(), [1, 2, 0]);
        assert_eq!(h.timeout(0), 400 * MS);
        assert_eq!(h.timeout(1), 250 * MS, "clamped up to the floor");
        assert_eq!(h.timeout(2), 2000 * MS, "one sample is not enough");
    }

    #[test]
    fn a_failing_server_goes_down_and_probes_bring_it_back() {
        let mut h = table(2);
        assert!(!h.failure(0));
        assert!(!h.failure(0));
        assert!(h.failure(0));
        assert!(!h.failure(0), "only the transition is reported");
        assert_eq!(h.order(), [1]);
        assert_eq!(h.down(), [0]);
        h.failure(1);
        h.failure(1);
        h.failure(1);
        assert_eq!(
            h.order(),
            [0, 1],
            "all down: try them all rather than nothing"
        );
        h.probe_succeeded(0, 5 * MS);
        assert_eq!(h.order(), [0]);
        assert_eq!(h.servers()[0].srtt, Some(5 * MS));
    }

    #[test]
    fn timeouts_back_off_to_the_configured_timeout() {
        let mut h = table(1);
        for _ in 0..3 {
            h.success(0, 10 * MS);
        }
        assert_eq!(h.timeout(0), 250 * MS);
        h.timed_out(0, h.answers(0));
        assert_eq!(h.timeout(0), 500 * MS);
        h.timed_out(0, h.answers(0));
        assert_eq!(h.timeout(0), 1000 * MS);
        h.timed_out(0, h.answers(0));
        h.timed_out(0, h.answers(0));
        assert_eq!(h.timeout(0), 2000 * MS, "capped at the configured timeout");
        h.success(0, 10 * MS);
        assert_eq!(
            h.timeout(0),
            250 * MS,
            "an answer brings it back to the SRTT's"
        );
    }

    #[test]
    fn rotation_spreads_equal_servers() {
        let mut h = Health::new(3, 2000 * MS, 250 * MS, 3, true);
        let firsts: Vec<usize> = (0..3).map(|_| h.order()[0]).collect();
        assert_eq!(firsts, [0, 1, 2]);
    }
}
