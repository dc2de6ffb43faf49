//! Address ordering for connection attempts (RFC 8305 §4).

use std::net::IpAddr;

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
