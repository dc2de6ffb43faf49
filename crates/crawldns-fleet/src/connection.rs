//! One connection to the fleet's Redis: reconnecting, with errors scrubbed
//! of credentials and sorted into transient (retry) and not.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, FromRedisValue, RedisError};

use crate::backoff::Backoff;
use crate::error::FleetError;
use crate::keys::Keys;
use crate::redis_url::RedisUrl;

/// A connection (reconnecting under the hood) and the fleet's key names.
#[derive(Clone)]
pub struct FleetRedis {
    url: RedisUrl,
    keys: Keys,
    conn: ConnectionManager,
}

impl std::fmt::Debug for FleetRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetRedis")
            .field("url", &self.url)
            .field("namespace", &self.keys.namespace())
            .finish()
    }
}

impl FleetRedis {
    /// Connects once; fails at once if Redis cannot be reached.
    pub async fn connect(url: &RedisUrl, namespace: &str) -> Result<Self, FleetError> {
        let client = redis::Client::open(url.secret()).map_err(|e| scrub(url, &e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(10))
            .set_number_of_retries(2)
            .set_factor(50)
            .set_max_delay(500);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| scrub(url, &e))?;
        Ok(Self {
            url: url.clone(),
            keys: Keys::new(namespace),
            conn,
        })
    }

    /// Connects, retrying with back-off while Redis is away (transient
    /// errors); other errors (bad password, TLS) are returned.
    pub async fn connect_retrying(
        url: &RedisUrl,
        namespace: &str,
        backoff: Backoff,
    ) -> Result<Self, FleetError> {
        let mut attempt = 0;
        loop {
            match Self::connect(url, namespace).await {
                Ok(conn) => return Ok(conn),
                Err(e) if e.is_transient() => {
                    if attempt == 0 {
                        tracing::warn!("{e}; retrying");
                    }
                    tokio::time::sleep(backoff.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The URL (masked when shown).
    pub fn url(&self) -> &RedisUrl {
        &self.url
    }

    /// Runs one command.
    pub async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, FleetError> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| scrub(&self.url, &e))
    }

    /// Runs a pipeline (atomic when built with `.atomic()`).
    pub async fn pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, FleetError> {
        let mut conn = self.conn.clone();
        pipe.query_async(&mut conn)
            .await
            .map_err(|e| scrub(&self.url, &e))
    }

    /// Runs a script.
    pub async fn script<T: FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, FleetError> {
        let mut conn = self.conn.clone();
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| scrub(&self.url, &e))
    }

    /// The text of `INFO section` (e.g. `memory`, `commandstats`).
    pub async fn info(&self, section: &str) -> Result<String, FleetError> {
        self.query(redis::cmd("INFO").arg(section)).await
    }

    /// Resets Redis's command statistics (`CONFIG RESETSTAT`).
    pub async fn reset_stats(&self) -> Result<(), FleetError> {
        self.query(redis::cmd("CONFIG").arg("RESETSTAT")).await
    }

    /// Redis's clock, ms since the epoch.
    pub async fn time_ms(&self) -> Result<u64, FleetError> {
        let (secs, micros): (u64, u64) = self.query(&redis::cmd("TIME")).await?;
        Ok(secs * 1000 + micros / 1000)
    }

    /// Runs `op` until it succeeds or fails with a non-transient error,
    /// sleeping by `backoff` in between; logs the first failure of a run.
    pub async fn retry<T, F, Fut>(
        &self,
        what: &str,
        backoff: Backoff,
        mut op: F,
    ) -> Result<T, FleetError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, FleetError>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(value) => {
                    if attempt > 0 {
                        tracing::info!("{what}: Redis is back after {attempt} retries");
                    }
                    return Ok(value);
                }
                Err(e) if e.is_transient() => {
                    if attempt == 0 {
                        tracing::warn!("{what}: {e}; retrying");
                    }
                    tokio::time::sleep(backoff.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether a client error may go away by itself (Redis restarting or busy).
fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::BusyLoadingError | ErrorKind::TryAgain | ErrorKind::MasterDown
        )
}

/// A client error as a fleet error, its text scrubbed of the credentials.
pub(crate) fn scrub(url: &RedisUrl, e: &RedisError) -> FleetError {
    FleetError::Redis {
        url: url.to_string(),
        message: url.scrub(&e.to_string()),
        transient: is_transient(e),
    }
}
