//! Happy eyeballs for resolution (RFC 8305): the A/AAAA race with its
//! resolution delay (§3), and the order addresses are tried in (§4).

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

/// Runs the A and AAAA lookups in parallel. When A finishes first with an
/// answer `usable` accepts and a resolution `delay` is given, AAAA gets
/// only that long more: `None` in its place means it did not make it (its
/// query goes on in the background, where single-flight keeps it, and
/// fills the cache). Otherwise both are awaited.
pub(crate) async fn race<T>(
    a: impl Future<Output = T>,
    aaaa: impl Future<Output = T>,
    delay: Option<Duration>,
    usable: impl Fn(&T) -> bool,
) -> (T, Option<T>) {
    tokio::pin!(a, aaaa);
    tokio::select! {
        a_first = &mut a => {
            let aaaa = match delay {
                Some(delay) if usable(&a_first) => tokio::time::timeout(delay, aaaa).await.ok(),
                _ => Some(aaaa.await),
            };
            (a_first, aaaa)
        }
        aaaa_first = &mut aaaa => (a.await, Some(aaaa_first)),
    }
}

/// Interleaves two families, taking one address of `first` then one of
/// `second`, and so on; the rest of the longer list follows.
pub fn interleave(first: &[IpAddr], second: &[IpAddr]) -> Vec<IpAddr> {
    let mut out = Vec::with_capacity(first.len() + second.len());
    let (mut a, mut b) = (first.iter(), second.iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y).copied()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    async fn after<T>(ms: u64, value: T) -> T {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        value
    }

    #[tokio::test(start_paused = true)]
    async fn aaaa_gets_the_resolution_delay_after_a_usable_a() {
        let start = tokio::time::Instant::now();
        let (a, aaaa) = race(after(10, 4), after(500, 6), Some(50 * MS), |_| true).await;
        assert_eq!((a, aaaa), (4, None));
        assert_eq!(start.elapsed(), 60 * MS);
        let (a, aaaa) = race(after(10, 4), after(40, 6), Some(50 * MS), |_| true).await;
        assert_eq!((a, aaaa), (4, Some(6)));
    }

    #[tokio::test(start_paused = true)]
    async fn both_are_awaited_when_a_is_unusable_or_no_delay_is_given() {
        let start = tokio::time::Instant::now();
        let (a, aaaa) = race(after(10, 0), after(500, 6), Some(50 * MS), |v| *v != 0).await;
        assert_eq!((a, aaaa), (0, Some(6)));
        assert_eq!(start.elapsed(), 500 * MS);
        let (_, aaaa) = race(after(10, 4), after(700, 6), None, |_| true).await;
        assert_eq!(aaaa, Some(6));
        // AAAA first: A is always awaited.
        let (a, aaaa) = race(after(300, 4), after(10, 6), Some(50 * MS), |_| true).await;
        assert_eq!((a, aaaa), (4, Some(6)));
    }

    #[test]
    fn interleaves_preferred_family_first() {
        let v6: Vec<IpAddr> = vec![
            "::1".parse().unwrap(),
            "::2".parse().unwrap(),
            "::3".parse().unwrap(),
        ];
        let v4: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
        let order: Vec<String> = interleave(&v6, &v4)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(order, ["::1", "127.0.0.1", "::2", "::3"]);
        assert_eq!(interleave(&[], &v4), v4);
        assert!(interleave(&[], &[]).is_empty());
    }
}
