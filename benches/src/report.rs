//! A measured figure, its target, and the line printed for it.

use std::fmt;

/// What a figure must reach.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The ratio to the limit must be at most this.
    RatioAtMost(f64),
    /// The ratio to the limit must be at least this.
    RatioAtLeast(f64),
    /// The value itself must be at most this (in the figure's unit).
    ValueAtMost(f64),
    /// The value itself must be at least this (in the figure's unit).
    ValueAtLeast(f64),
    /// The ratio must be below 1 and the value given in `Figure::bound` at most the bound.
    FasterAndBounded,
    /// The ratio to the limit must be at most the first number, and the value at most the
    /// second.
    RatioAndValueAtMost(f64, f64),
}

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The figure's name, as in the table.
    pub name: &'static str,
    /// The measured value.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// The measured value divided by the limit's.
    pub ratio: f64,
    /// What it must reach.
    pub target: Target,
    /// For [`Target::FasterAndBounded`]: the measured memory and its bound, in MiB.
    pub bound: Option<(f64, f64)>,
    /// The limit's value and other details, printed after the verdict.
    pub details: String,
}

impl Figure {
    /// Whether the figure meets its target.
    pub fn passes(&self) -> bool {
        match self.target {
            Target::RatioAtMost(max) => self.ratio <= max,
            Target::RatioAtLeast(min) => self.ratio >= min,
            Target::ValueAtMost(max) => self.value <= max,
            Target::ValueAtLeast(min) => self.value >= min,
            Target::FasterAndBounded => {
                self.ratio < 1.0 && self.bound.is_some_and(|(used, max)| used <= max)
            }
            Target::RatioAndValueAtMost(ratio, value) => self.ratio <= ratio && self.value <= value,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::RatioAtMost(max) => write!(f, "ratio<={max}"),
            Target::RatioAtLeast(min) => write!(f, "ratio>={min}"),
            Target::ValueAtMost(max) => write!(f, "value<={max}"),
            Target::ValueAtLeast(min) => write!(f, "value>={min}"),
            Target::FasterAndBounded => write!(f, "ratio<1,bounded-memory"),
            Target::RatioAndValueAtMost(ratio, value) => {
                write!(f, "ratio<={ratio},value<={value}")
            }
        }
    }
}

/// `NAME value unit ratio=R target=T PASS|MISS (details)`.
impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.value >= 1000.0 {
            format!("{:.0}", self.value)
        } else if self.value >= 10.0 {
            format!("{:.1}", self.value)
        } else {
            format!("{:.2}", self.value)
        };
        write!(
            f,
            "{} {value} {} ratio={:.3} target={} {}",
            self.name,
            self.unit,
            self.ratio,
            self.target,
            if self.passes() { "PASS" } else { "MISS" }
        )?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Figure, Target};

    fn figure(value: f64, ratio: f64, target: Target) -> Figure {
        Figure {
            name: "call-host-to-plugin",
            value,
            unit: "ns",
            ratio,
            target,
            bound: None,
            details: String::new(),
        }
    }

    #[test]
    fn line_starts_with_name_value_unit_ratio() {
        let line = figure(11.64, 1.4, Target::RatioAtMost(1.5)).to_string();
        assert_eq!(
            line,
            "call-host-to-plugin 11.6 ns ratio=1.400 target=ratio<=1.5 PASS"
        );
    }

    #[test]
    fn targets() {
        assert!(!figure(1.0, 1.6, Target::RatioAtMost(1.5)).passes());
        assert!(figure(1.0, 0.6, Target::RatioAtLeast(0.5)).passes());
        assert!(!figure(1.0, 0.4, Target::RatioAtLeast(0.5)).passes());
        assert!(figure(10.0, 9.0, Target::ValueAtMost(10.0)).passes());
        assert!(!figure(10.01, 9.0, Target::ValueAtMost(10.0)).passes());
        assert!(figure(400.0, 0.1, Target::ValueAtLeast(400.0)).passes());
        assert!(!figure(399.9, 9.0, Target::ValueAtLeast(400.0)).passes());
        let mut wordfreq = figure(9.5, 0.1, Target::FasterAndBounded);
        assert!(!wordfreq.passes(), "no memory figure");
        wordfreq.bound = Some((5.0, 64.0));
        assert!(wordfreq.passes());
        wordfreq.bound = Some((65.0, 64.0));
        assert!(!wordfreq.passes());
    }
}
