//! The result stream: workers add one entry per finished URL (see
//! [`crate::frontier::complete`]); the collector reads them in order and
//! trims what it has stored, so the stream only holds what is not yet
//! collected.

use redis::streams::StreamRangeReply;

use crate::connection::FleetRedis;
use crate::error::FleetError;

/// One result as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultEntry {
    /// The stream entry id.
    pub entry: String,
    /// The URL id.
    pub id: u64,
    /// The worker that fetched it.
    pub worker: String,
    /// The outcome class (`ok`, `dns`, ...).
    pub class: String,
    /// The result line, as the worker's fetch wrote it.
    pub line: String,
}

/// Up to `count` results after entry `after` (exclusive; `-` for the start).
pub async fn read_after(
    redis: &FleetRedis,
    after: &str,
    count: usize,
) -> Result<Vec<ResultEntry>, FleetError> {
    let start = if after == "-" {
        "-".to_owned()
    } else {
        format!("({after}")
    };
    let reply: StreamRangeReply = redis
        .query(
            redis::cmd("XRANGE")
                .arg(redis.keys().results())
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(count.max(1)),
        )
        .await?;
    reply
        .ids
        .iter()
        .map(|e| {
            let field = |name: &str| -> Result<String, FleetError> {
                e.get::<String>(name)
                    .ok_or_else(|| FleetError::Data(format!("result {} has no {name}", e.id)))
            };
            Ok(ResultEntry {
                entry: e.id.clone(),
                id: field("id")?
                    .parse()
                    .map_err(|_| FleetError::Data(format!("result {} has a bad id", e.id)))?,
                worker: field("worker")?,
                class: field("class")?,
                line: field("line")?,
            })
        })
        .collect()
}

/// Removes every result up to and including entry `upto`.
pub async fn trim_through(redis: &FleetRedis, upto: &str) -> Result<u64, FleetError> {
    let Some(next) = next_id(upto) else {
        return Err(FleetError::Data(format!("bad result entry id {upto:?}")));
    };
    redis
        .query(
            redis::cmd("XTRIM")
                .arg(redis.keys().results())
                .arg("MINID")
                .arg(next),
        )
        .await
}

/// Results not yet collected.
pub async fn len(redis: &FleetRedis) -> Result<u64, FleetError> {
    redis
        .query(redis::cmd("XLEN").arg(redis.keys().results()))
        .await
}

/// The smallest entry id after `id` (`ms-seq` → `ms-(seq+1)`).
fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let ms: u64 = ms.parse().ok()?;
    let seq: u64 = seq.parse().ok()?;
    Some(match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}"),
        None => format!("{}-0", ms.checked_add(1)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_ids() {
        assert_eq!(next_id("1700-0").as_deref(), Some("1700-1"));
        assert_eq!(
            next_id("1700-18446744073709551615").as_deref(),
            Some("1701-0")
        );
        assert_eq!(next_id("x-1"), None);
        assert_eq!(next_id("17"), None);
    }
}
