//! Property tests: malformed or damaged FITs never panic the verifier, and
//! whatever damage it accepts left the signed kernel and command line as
//! they were. `PROPTEST_CASES=N` sets the case count.

use super::tests::{Env, MEM, Opts, env, kernel};
use super::*;
use proptest::prelude::*;
use std::sync::OnceLock;
use std::vec::Vec;

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

/// One mkimage-signed FIT (with a ramdisk) and its key, made once.
fn fixture() -> &'static (Env, Vec<u8>) {
    static F: OnceLock<(Env, Vec<u8>)> = OnceLock::new();
    F.get_or_init(|| {
        let e = env("props");
        let fit = e.signed(&Opts {
            ramdisk: true,
            ..Opts::default()
        });
        (e, fit)
    })
}

/// Every entry point on `b`; accepted results must carry the signed
/// kernel and command line.
fn exercise(b: &[u8], e: &Env) {
    let ring = e.ring();
    let _ = Keyring::from_control_dtb(b);
    if let Ok(fit) = Fit::open(b, b.len()) {
        let _ = fit.config_digest("signature-1");
        let _ = fit.config_name();
    }
    if let Ok(v) = verify(b, b.len(), &ring, &MEM) {
        assert_eq!(v.kernel.data, &kernel()[..]);
        assert_eq!(
            v.bootargs,
            Some("console=ttymxc1,115200 root=/dev/mmcblk2p5")
        );
    }
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(mut b in prop::collection::vec(any::<u8>(), 0..800),
                                   magic in any::<bool>()) {
        if magic && b.len() >= 8 {
            b[..4].copy_from_slice(&0xd00d_feed_u32.to_be_bytes());
            let n = u32::try_from(b.len()).unwrap();
            b[4..8].copy_from_slice(&n.to_be_bytes());
        }
        exercise(&b, &fixture().0);
    }

    #[test]
    fn damaged_signed_fit_never_panics_nor_boots_other_code(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        in_head in any::<bool>(),
    ) {
        let (e, good) = fixture();
        let mut b = good.clone();
        // Half the cases aim at the tree outside the big kernel data.
        let t = FdtRef::new(good).unwrap();
        let data = t.prop(t.path("/images/kernel-1").unwrap(), "data").unwrap();
        let k = data.as_ptr() as usize - good.as_ptr() as usize;
        let n = b.len();
        for (i, v) in flips {
            let at = if in_head {
                let pick = i.index(n - data.len());
                if pick < k { pick } else { pick + data.len() }
            } else {
                i.index(n)
            };
            b[at] = v;
        }
        exercise(&b, e);
    }

    #[test]
    fn truncated_or_grown_fit_is_refused_cleanly(cut in 0usize..4096, grow in any::<bool>()) {
        let (e, good) = fixture();
        let ring = e.ring();
        let mut b = good.clone();
        if grow {
            b.extend(std::iter::repeat_n(0u8, cut));
            // Trailing bytes beyond totalsize are not part of the FIT.
            prop_assert!(verify(&b, b.len(), &ring, &MEM).is_ok());
        } else {
            b.truncate(good.len().saturating_sub(cut + 1));
            prop_assert!(verify(&b, usize::MAX, &ring, &MEM).is_err());
        }
    }
}
