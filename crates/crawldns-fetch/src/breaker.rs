//! The per-origin breaker for dead hosts, as a pure state machine: time is
//! an input (`now`, a [`Duration`] since any fixed start), so tests are
//! exact and need no sleeps.
//!
//! - *Closed*: requests go. After `threshold` connect-level failures in a
//!   row (refused, unreachable, connect timeout, TLS handshake failure) it
//!   opens.
//! - *Open*: requests fail at once (class `host_down`) until the cool-down
//!   has passed.
//! - *Half-open*: one probe request goes; the others still fail at once.
//!   The probe connecting closes the breaker; the probe failing opens it
//!   again with twice the cool-down (up to a ceiling). A probe that ends
//!   without a verdict (cancelled, or failing before connecting) lets the
//!   next request probe.

use std::time::Duration;

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive connect-level failures that open the breaker (0: never).
    pub threshold: u32,
    /// The first cool-down.
    pub cool_down: Duration,
    /// The longest cool-down, however often the probe fails.
    pub max_cool_down: Duration,
}

impl Default for BreakerPolicy {
    /// K = 3, 60 s doubling up to 1 h.
    fn default() -> Self {
        Self {
            threshold: 3,
            cool_down: Duration::from_secs(60),
            max_cool_down: Duration::from_secs(3600),
        }
    }
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Go ahead.
    Go,
    /// Go ahead as the half-open probe: report its verdict.
    Probe,
    /// Fail at once: the origin is down until `until` (or until the
    /// probe in flight decides).
    Reject {
        /// When a probe may be tried.
        until: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Duration,
        cool_down: Duration,
    },
    HalfOpen {
        probing: bool,
        cool_down: Duration,
    },
}

/// One origin's breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    state: State,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            state: State::Closed { failures: 0 },
        }
    }
}

impl Breaker {
    /// Whether a request may go at `now`.
    pub fn admit(&mut self, now: Duration) -> Admit {
        match self.state {
            State::Closed { .. } => Admit::Go,
            State::Open { until, cool_down } => {
                if now < until {
                    Admit::Reject { until }
                } else {
                    self.state = State::HalfOpen {
                        probing: true,
                        cool_down,
                    };
                    Admit::Probe
                }
            }
            // The probe in flight decides.
            State::HalfOpen { probing: true, .. } => Admit::Reject { until: now },
            State::HalfOpen {
                probing: false,
                cool_down,
            } => {
                self.state = State::HalfOpen {
                    probing: true,
                    cool_down,
                };
                Admit::Probe
            }
        }
    }

    /// A connection to the origin was established (TCP, and TLS if any).
    pub fn on_connected(&mut self) {
        self.state = State::Closed { failures: 0 };
    }

    /// A connect-level failure at `now`. Returns true if this opened the
    /// breaker.
    pub fn on_connect_failure(&mut self, policy: &BreakerPolicy, now: Duration) -> bool {
        match self.state {
            State::Closed { failures } => {
                let failures = failures + 1;
                if policy.threshold > 0 && failures >= policy.threshold {
                    self.state = State::Open {
                        until: now + policy.cool_down,
                        cool_down: policy.cool_down,
                    };
                    true
                } else {
                    self.state = State::Closed { failures };
                    false
                }
            }
            // Late failures of requests that started before it opened.
            State::Open { .. } => false,
            State::HalfOpen { cool_down, .. } => {
                let cool_down = (cool_down * 2).min(policy.max_cool_down);
                self.state = State::Open {
                    until: now + cool_down,
                    cool_down,
                };
                true
            }
        }
    }

    /// The probe ended without a verdict: the next request probes.
    pub fn on_probe_abandoned(&mut self) {
        if let State::HalfOpen { cool_down, .. } = self.state {
            self.state = State::HalfOpen {
                probing: false,
                cool_down,
            };
        }
    }

    /// True when the breaker holds nothing worth keeping (closed, no
    /// failures counted).
    pub fn is_idle(&self) -> bool {
        self.state == State::Closed { failures: 0 }
    }

    /// True while requests are rejected or probing.
    pub fn is_down(&self) -> bool {
        !matches!(self.state, State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[derive(Debug, Clone, Copy)]
    enum Event {
        Ask(Admit),
        Connected,
        Failed { opened: bool },
        Abandoned,
    }
    use Event::*;

    /// Feeds `(second, event)` pairs and checks each outcome.
    fn run(policy: BreakerPolicy, table: &[(u64, Event)]) {
        let mut breaker = Breaker::default();
        for (i, &(at, event)) in table.iter().enumerate() {
            let now = S * u32::try_from(at).unwrap();
            match event {
                Ask(expected) => {
                    assert_eq!(breaker.admit(now), expected, "row {i} at {at}s")
                }
                Connected => breaker.on_connected(),
                Failed { opened } => assert_eq!(
                    breaker.on_connect_failure(&policy, now),
                    opened,
                    "row {i} at {at}s"
                ),
                Abandoned => breaker.on_probe_abandoned(),
            }
        }
    }

    fn reject(until: u64) -> Event {
        Ask(Admit::Reject {
            until: S * u32::try_from(until).unwrap(),
        })
    }

    #[test]
    fn opens_after_k_failures_in_a_row_and_probes_after_the_cool_down() {
        run(
            BreakerPolicy::default(),
            &[
                (0, Ask(Admit::Go)),
                (0, Failed { opened: false }),
                (1, Failed { opened: false }),
                // A success in between resets the count.
                (1, Connected),
                (2, Failed { opened: false }),
                (2, Failed { opened: false }),
                (2, Failed { opened: true }),
                (3, reject(62)),
                // Late failures of earlier requests change nothing.
                (4, Failed { opened: false }),
                (61, reject(62)),
                (62, Ask(Admit::Probe)),
                // One probe at a time.
                (62, reject(62)),
                (63, Connected),
                (63, Ask(Admit::Go)),
            ],
        );
    }

    #[test]
    fn a_failed_probe_doubles_the_cool_down_up_to_the_ceiling() {
        let policy = BreakerPolicy {
            threshold: 1,
            cool_down: 10 * S,
            max_cool_down: 30 * S,
        };
        run(
            policy,
            &[
                (0, Failed { opened: true }),
                (5, reject(10)),
                (10, Ask(Admit::Probe)),
                (12, Failed { opened: true }),
                (31, reject(32)),
                (32, Ask(Admit::Probe)),
                (32, Failed { opened: true }),
                // 40 s would exceed the 30 s ceiling.
                (61, reject(62)),
                (62, Ask(Admit::Probe)),
                // A probe cancelled without a verdict: the next one probes.
                (63, Abandoned),
                (63, Ask(Admit::Probe)),
                (64, Connected),
                (64, Ask(Admit::Go)),
            ],
        );
    }

    #[test]
    fn threshold_zero_never_opens() {
        let policy = BreakerPolicy {
            threshold: 0,
            ..BreakerPolicy::default()
        };
        let mut table = vec![];
        for t in 0..10 {
            table.push((t, Failed { opened: false }));
            table.push((t, Ask(Admit::Go)));
        }
        run(policy, &table);
    }
}
