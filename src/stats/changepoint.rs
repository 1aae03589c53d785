//! Change points in a series of runs (one metric, oldest first): E-divisive means
//! (Matteson & James, "A Nonparametric Approach for Multiple Change Point Analysis of
//! Multivariate Data", JASA 2014) chooses where to split, and, as Hunter does (Fleming et
//! al., "Hunter: Using Change Point Detection to Hunt for Performance Regressions", ICPE
//! 2023; now Apache Otava), a two-sample Student t-test instead of the permutation test
//! decides whether the split is significant: deterministic, and fast enough for every
//! metric of every run. Pure arithmetic; the effect-size floor is the caller's.

/// One significant change: the series differs before and after `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePoint {
    /// Index of the first value of the new segment.
    pub at: usize,
    /// Mean of the segment that ends at `at` (from the change point before, if any).
    pub before_mean: f64,
    /// Mean of the segment that starts at `at` (up to the next change point, if any).
    pub after_mean: f64,
    /// The t-test's two-sided p-value for the split.
    pub pvalue: f64,
}

/// Every change point of `xs` whose split has a p-value below `max_pvalue`, in order.
/// Splits are found by recursive bisection: the E-divisive statistic (α = 1) picks the
/// best split of a segment, the t-test keeps or rejects it, and both halves are searched
/// again. A segment may be a single value, so the newest run alone can differ.
pub fn change_points(xs: &[f64], max_pvalue: f64) -> Vec<ChangePoint> {
    let mut cuts = Vec::new();
    bisect(xs, 0, xs.len(), max_pvalue, &mut cuts);
    cuts.sort_by_key(|(at, _)| *at);
    let bounds: Vec<usize> = std::iter::once(0)
        .chain(cuts.iter().map(|(at, _)| *at))
        .chain(std::iter::once(xs.len()))
        .collect();
    cuts.iter()
        .enumerate()
        .map(|(i, &(at, pvalue))| ChangePoint {
            at,
            before_mean: mean(&xs[bounds[i]..at]),
            after_mean: mean(&xs[at..bounds[i + 2]]),
            pvalue,
        })
        .collect()
}

fn bisect(xs: &[f64], lo: usize, hi: usize, max_pvalue: f64, out: &mut Vec<(usize, f64)>) {
    if hi - lo < 3 {
        return;
    }
    let seg = &xs[lo..hi];
    let Some(tau) = (1..seg.len()).max_by(|&a, &b| q_hat(seg, a).total_cmp(&q_hat(seg, b))) else {
        return;
    };
    let p = t_test(&seg[..tau], &seg[tau..]);
    if p < max_pvalue {
        out.push((lo + tau, p));
        bisect(xs, lo, lo + tau, max_pvalue, out);
        bisect(xs, lo + tau, hi, max_pvalue, out);
    }
}

/// Matteson & James's Q̂ for splitting `seg` at `tau`, with α = 1: the scaled energy
/// distance between the two sides.
fn q_hat(seg: &[f64], tau: usize) -> f64 {
    let (x, y) = seg.split_at(tau);
    let (m, n) = (x.len() as f64, y.len() as f64);
    let between: f64 = x
        .iter()
        .flat_map(|a| y.iter().map(move |b| (a - b).abs()))
        .sum();
    let within = |s: &[f64]| -> f64 {
        let k = s.len() as f64;
        if s.len() < 2 {
            return 0.0;
        }
        let sum: f64 = (0..s.len())
            .flat_map(|i| (i + 1..s.len()).map(move |j| (s[i] - s[j]).abs()))
            .sum();
        sum / (k * (k - 1.0) / 2.0)
    };
    let e = 2.0 * between / (m * n) - within(x) - within(y);
    m * n / (m + n) * e
}

/// Two-sided p-value of Student's two-sample t-test with pooled variance.
pub fn t_test(x: &[f64], y: &[f64]) -> f64 {
    let (m, n) = (x.len() as f64, y.len() as f64);
    let df = m + n - 2.0;
    if x.is_empty() || y.is_empty() || df < 1.0 {
        return 1.0;
    }
    let (mx, my) = (mean(x), mean(y));
    let ss = |s: &[f64], mu: f64| s.iter().map(|v| (v - mu).powi(2)).sum::<f64>();
    let pooled = (ss(x, mx) + ss(y, my)) / df;
    let se = (pooled * (1.0 / m + 1.0 / n)).sqrt();
    if se == 0.0 {
        return if mx == my { 1.0 } else { 0.0 };
    }
    let t = (mx - my) / se;
    // P(|T| > t) for Student's t with df degrees of freedom.
    incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// The mean of `xs` (NaN when empty).
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The regularised incomplete beta function I_x(a, b), by its continued fraction
/// (Numerical Recipes, 3rd ed., §6.4).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-12 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic series around `level` with ±`noise` relative jitter.
    fn noisy(level: f64, noise: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                level * (1.0 + noise * (2.0 * u - 1.0))
            })
            .collect()
    }

    #[test]
    fn t_test_p_values_match_scipy() {
        // t = -2 with 8 degrees of freedom: two-sided p = 0.080516 (R: 2 * pt(-2, 8)).
        let p = t_test(&[1.0, 2.0, 3.0, 4.0, 5.0], &[3.0, 4.0, 5.0, 6.0, 7.0]);
        assert!((p - 0.080_516_238).abs() < 1e-6, "{p}");
        assert_eq!(t_test(&[1.0, 1.0], &[1.0]), 1.0);
        assert_eq!(t_test(&[1.0, 1.0], &[2.0]), 0.0);
    }

    #[test]
    fn an_unchanged_series_has_no_change_point() {
        for seed in 0..50 {
            let xs = noisy(1000.0, 0.05, 20, seed);
            assert_eq!(change_points(&xs, 0.001), vec![], "seed {seed}: {xs:?}");
        }
    }

    #[test]
    fn a_step_is_found_where_it_happened() {
        let mut xs = noisy(1000.0, 0.05, 20, 7);
        xs.extend(noisy(1200.0, 0.05, 2, 8));
        let cps = change_points(&xs, 0.001);
        assert_eq!(cps.len(), 1, "{cps:?}");
        assert_eq!(cps[0].at, 20);
        assert!((cps[0].after_mean / cps[0].before_mean - 1.2).abs() < 0.05);
    }
}
