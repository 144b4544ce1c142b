//! Restart policies with docker's semantics (pure: the shim asks, this
//! answers).

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "Name")]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure {
        #[serde(rename = "MaximumRetryCount")]
        max_retries: u32,
    },
    Always,
    UnlessStopped,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid restart policy {0:?}: use no, on-failure[:N], always or unless-stopped")]
pub struct ParseError(String);

/// The first delay, doubled after each restart up to [`MAX_DELAY`].
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A container that ran this long before exiting starts over at the first
/// delay (and, with on-failure, is not counted against its retries).
pub const RESET_AFTER: Duration = Duration::from_secs(10);

impl RestartPolicy {
    pub fn parse(s: &str) -> Result<RestartPolicy, ParseError> {
        let err = || ParseError(s.to_string());
        match s.split_once(':') {
            None => match s {
                "" | "no" => Ok(RestartPolicy::No),
                "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: 0 }),
                "always" => Ok(RestartPolicy::Always),
                "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
                _ => Err(err()),
            },
            Some(("on-failure", n)) => {
                let max_retries = n.parse().map_err(|_| err())?;
                Ok(RestartPolicy::OnFailure { max_retries })
            }
            Some(_) => Err(err()),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure { .. } => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }
}

/// What happened to the container, as the restart decision needs it.
#[derive(Clone, Copy, Debug)]
pub struct Exit {
    pub code: i32,
    /// How long it ran before exiting.
    pub ran: Duration,
    /// `stop`, `kill` or `rm -f` by the user: the policy is suspended.
    pub stopped_by_user: bool,
}

/// Restart bookkeeping the shim keeps between exits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartState {
    /// Restarts so far (docker's RestartCount).
    pub count: u32,
    /// Consecutive failures counted against on-failure's maximum.
    pub failures: u32,
    /// The delay before the next restart.
    pub delay_ms: u64,
}

/// Decides whether to restart after `exit`, and after how long. Updates
/// `state` when the answer is yes.
pub fn next_delay(policy: RestartPolicy, exit: Exit, state: &mut RestartState) -> Option<Duration> {
    if exit.stopped_by_user {
        return None;
    }
    let long_run = exit.ran >= RESET_AFTER;
    if long_run {
        state.delay_ms = 0;
        state.failures = 0;
    }
    let restart = match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure { max_retries } => {
            exit.code != 0 && (max_retries == 0 || state.failures < max_retries)
        }
    };
    if !restart {
        return None;
    }
    let delay = if state.delay_ms == 0 {
        FIRST_DELAY
    } else {
        (Duration::from_millis(state.delay_ms) * 2).min(MAX_DELAY)
    };
    state.delay_ms = delay.as_millis() as u64;
    state.count += 1;
    if exit.code != 0 {
        state.failures += 1;
    }
    Some(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i32) -> Exit {
        Exit {
            code,
            ran: Duration::from_millis(50),
            stopped_by_user: false,
        }
    }

    #[test]
    fn parse_policies() {
        assert_eq!(RestartPolicy::parse("no").unwrap(), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("on-failure:3").unwrap(),
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        assert_eq!(
            RestartPolicy::parse("unless-stopped").unwrap(),
            RestartPolicy::UnlessStopped
        );
        assert!(RestartPolicy::parse("sometimes").is_err());
        assert!(RestartPolicy::parse("on-failure:x").is_err());
    }

    #[test]
    fn on_failure_counts_and_doubles() {
        let p = RestartPolicy::OnFailure { max_retries: 3 };
        let mut st = RestartState::default();
        let delays: Vec<_> = (0..5).map(|_| next_delay(p, exit(1), &mut st)).collect();
        assert_eq!(
            delays,
            vec![
                Some(Duration::from_millis(100)),
                Some(Duration::from_millis(200)),
                Some(Duration::from_millis(400)),
                None,
                None
            ]
        );
        assert_eq!(st.count, 3);
        assert_eq!(
            next_delay(p, exit(0), &mut RestartState::default()),
            None,
            "success is not a failure"
        );
    }

    #[test]
    fn always_caps_at_a_minute_and_resets_after_a_long_run() {
        let mut st = RestartState::default();
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            last = next_delay(RestartPolicy::Always, exit(0), &mut st).unwrap();
        }
        assert_eq!(last, MAX_DELAY);
        let long = Exit {
            code: 0,
            ran: Duration::from_secs(11),
            stopped_by_user: false,
        };
        assert_eq!(
            next_delay(RestartPolicy::Always, long, &mut st),
            Some(FIRST_DELAY)
        );
    }

    #[test]
    fn a_manual_stop_suspends_every_policy() {
        let e = Exit {
            code: 137,
            ran: Duration::from_secs(1),
            stopped_by_user: true,
        };
        for p in [
            RestartPolicy::Always,
            RestartPolicy::UnlessStopped,
            RestartPolicy::OnFailure { max_retries: 0 },
        ] {
            assert_eq!(next_delay(p, e, &mut RestartState::default()), None);
        }
    }
}
