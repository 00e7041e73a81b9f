//! Sharding applications across replicas by a stable hash of their name.

use idp_core::{Error, Result};

/// The shard (`0..replicas`) that owns application `name`: 64-bit FNV-1a of the UTF-8
/// name, modulo `replicas`.
///
/// FNV-1a is fixed by its specification (offset basis `0xcbf29ce484222325`, prime
/// `0x100000001b3`), so every replica, version and platform computes the same shard.
/// Changing the number of replicas moves about `1 - 1/N` of the applications; use a
/// StatefulSet so a replica's index is stable across restarts.
///
/// ```
/// use idp_deploy::ha::shard_of;
/// assert_eq!(shard_of("shop-prod", 1), 0);
/// let s = shard_of("shop-prod", 3);
/// assert!(s < 3);
/// assert_eq!(s, shard_of("shop-prod", 3)); // stable
/// ```
pub fn shard_of(name: &str, replicas: u32) -> u32 {
    if replicas <= 1 {
        return 0;
    }
    (idp_core::hash::fnv1a64(name.as_bytes()) % u64::from(replicas)) as u32
}

/// Which shard one replica owns: its index out of the number of replicas.
///
/// ```
/// use idp_deploy::ha::Shard;
/// let shard = Shard::from_hostname("idp-reconciler-2", 3)?;
/// assert_eq!(shard.index(), 2);
/// let mine: Vec<&str> = ["a", "b", "c", "d"].into_iter().filter(|app| shard.owns(app)).collect();
/// # let _ = mine;
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    replicas: u32,
}

impl Shard {
    /// Shard `index` of `replicas` (index must be below replicas, replicas at least 1).
    ///
    /// ```
    /// assert!(idp_deploy::ha::Shard::new(3, 3).is_err());
    /// assert!(idp_deploy::ha::Shard::new(0, 1).is_ok());
    /// ```
    pub fn new(index: u32, replicas: u32) -> Result<Self> {
        if replicas == 0 || index >= replicas {
            return Err(Error::invalid_input(format!(
                "shard index {index} out of {replicas} replicas: the index must be in 0..{replicas} and there must be at least one replica"
            )));
        }
        Ok(Self { index, replicas })
    }

    /// The shard of a StatefulSet pod, from the ordinal that ends its hostname
    /// (`name-<ordinal>`).
    ///
    /// ```
    /// assert_eq!(idp_deploy::ha::Shard::from_hostname("rec-0", 2)?.index(), 0);
    /// assert!(idp_deploy::ha::Shard::from_hostname("rec", 2).is_err());
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn from_hostname(hostname: &str, replicas: u32) -> Result<Self> {
        let ordinal = hostname
            .rsplit_once('-')
            .and_then(|(_, n)| n.parse::<u32>().ok())
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "hostname {hostname:?} does not end in -<ordinal>; run the replicas as a StatefulSet or give the shard index explicitly"
                ))
            })?;
        Self::new(ordinal, replicas)
    }

    /// This replica's index.
    ///
    /// ```
    /// assert_eq!(idp_deploy::ha::Shard::new(1, 4)?.index(), 1);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The number of replicas.
    ///
    /// ```
    /// assert_eq!(idp_deploy::ha::Shard::new(1, 4)?.replicas(), 4);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn replicas(&self) -> u32 {
        self.replicas
    }

    /// Whether this replica reconciles application `name`.
    ///
    /// ```
    /// let all: Vec<_> = (0..3).map(|i| idp_deploy::ha::Shard::new(i, 3).unwrap()).collect();
    /// assert_eq!(all.iter().filter(|s| s.owns("shop-prod")).count(), 1);
    /// ```
    pub fn owns(&self, name: &str) -> bool {
        shard_of(name, self.replicas) == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fnv1a_values() {
        // FNV-1a 64 test vectors: "" -> cbf29ce484222325, "a" -> af63dc4c8601ec8c.
        assert_eq!(
            shard_of("a", u32::MAX),
            (0xaf63_dc4c_8601_ec8c_u64 % u64::from(u32::MAX)) as u32
        );
        assert_eq!(shard_of("", 7), (0xcbf2_9ce4_8422_2325_u64 % 7) as u32);
    }

    #[test]
    fn every_name_has_exactly_one_owner_and_load_spreads() {
        let shards: Vec<Shard> = (0..4).map(|i| Shard::new(i, 4).unwrap()).collect();
        let mut counts = [0usize; 4];
        for n in 0..1000 {
            let name = format!("app-{n}");
            let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns(&name)).collect();
            assert_eq!(owners.len(), 1);
            counts[owners[0].index() as usize] += 1;
        }
        assert!(counts.iter().all(|c| *c > 150), "{counts:?}");
    }

    proptest::proptest! {
        #[test]
        fn any_name_lands_on_exactly_one_shard(name in ".*", replicas in 1u32..64) {
            let owners = (0..replicas)
                .filter(|i| Shard::new(*i, replicas).unwrap().owns(&name))
                .count();
            proptest::prop_assert_eq!(owners, 1);
        }

        #[test]
        fn hostnames_never_panic(hostname in ".*", replicas in 0u32..8) {
            if let Ok(shard) = Shard::from_hostname(&hostname, replicas) {
                proptest::prop_assert!(shard.index() < shard.replicas());
            }
        }
    }
}
