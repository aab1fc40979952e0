//! ISO 8601 durations (`PT1H`, `P30D`, `P1Y6M`), the one parser every seed 003 field that takes
//! a duration uses (TTLs, retention periods, JIT grant lengths), with one error that names the
//! field. Years and months have no fixed length: they are kept apart from the exact part, so a
//! TTL can refuse them and a retention period can add them to a date on the calendar.

use chrono::{DateTime, Months, TimeDelta, Utc};

/// A parsed duration: calendar months (a year is 12) and an exact part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsoDuration {
    pub months: u32,
    pub exact: TimeDelta,
}

/// Why a field's text is not a duration this API takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be an ISO 8601 duration such as PT1H or P30D: {reason}")]
pub struct DurationError {
    pub field: String,
    pub reason: &'static str,
}

/// The longest text taken: enough for any real duration, short enough to bound the work.
const LONGEST: usize = 64;
/// The largest exact part taken (about 1,000 years): keeps every sum and date in range.
const MOST_SECONDS: i64 = 1_000 * 366 * 86_400;

impl IsoDuration {
    /// Parses `text`, naming `field` in the error. Designators: `Y`, `M`, `W`, `D` before `T`;
    /// `H`, `M`, `S` after it; a fraction only on the last (seconds) component.
    pub fn parse(field: &str, text: &str) -> Result<Self, DurationError> {
        let fail = |reason| DurationError {
            field: field.to_string(),
            reason,
        };
        if text.len() > LONGEST {
            return Err(fail("it is too long"));
        }
        let rest = text
            .strip_prefix('P')
            .ok_or_else(|| fail("it must start with P"))?;
        let (date, time) = match rest.split_once('T') {
            Some((_, "")) => return Err(fail("T must be followed by a time part")),
            Some((d, t)) => (d, Some(t)),
            None => (rest, None),
        };
        if date.is_empty() && time.is_none() {
            return Err(fail("it names no amount"));
        }
        let mut months: u64 = 0;
        let mut millis: i64 = 0;
        let mut add = |amount: u64, unit_millis: i64| -> Result<(), DurationError> {
            let part = i64::try_from(amount)
                .ok()
                .and_then(|a| a.checked_mul(unit_millis))
                .ok_or_else(|| fail("it is too long a time"))?;
            millis = millis
                .checked_add(part)
                .filter(|m| *m / 1000 <= MOST_SECONDS)
                .ok_or_else(|| fail("it is too long a time"))?;
            Ok(())
        };
        let mut order = 0;
        for (number, designator) in components(date).map_err(fail)? {
            let (rank, amount) = (rank(designator, b"YMWD"), whole(number).map_err(fail)?);
            let rank = rank.ok_or_else(|| fail("a date part uses Y, M, W or D"))?;
            if rank < order {
                return Err(fail("its parts are out of order or repeated"));
            }
            order = rank + 1;
            match designator {
                b'Y' => months = months.saturating_add(amount.saturating_mul(12)),
                b'M' => months = months.saturating_add(amount),
                b'W' => add(amount, 7 * 86_400_000)?,
                _ => add(amount, 86_400_000)?,
            }
        }
        if let Some(time) = time {
            let parts = components(time).map_err(fail)?;
            let last = parts.len().saturating_sub(1);
            let mut order = 0;
            for (i, (number, designator)) in parts.into_iter().enumerate() {
                let rank =
                    rank(designator, b"HMS").ok_or_else(|| fail("a time part uses H, M or S"))?;
                if rank < order {
                    return Err(fail("its parts are out of order or repeated"));
                }
                order = rank + 1;
                if designator == b'S' && i == last {
                    let (whole_part, fraction) = seconds(number).map_err(fail)?;
                    add(whole_part, 1000)?;
                    add(fraction, 1)?;
                } else {
                    let amount = whole(number).map_err(fail)?;
                    add(
                        amount,
                        if designator == b'H' {
                            3_600_000
                        } else {
                            60_000
                        },
                    )?;
                }
            }
        }
        let months = u32::try_from(months)
            .ok()
            .filter(|m| *m <= 12_000)
            .ok_or_else(|| fail("it is too long a time"))?;
        Ok(IsoDuration {
            months,
            exact: TimeDelta::milliseconds(millis),
        })
    }

    /// The exact length, for a field that cannot take years or months (a TTL, a lease).
    pub fn fixed(field: &str, text: &str) -> Result<TimeDelta, DurationError> {
        let d = Self::parse(field, text)?;
        if d.months > 0 {
            return Err(DurationError {
                field: field.to_string(),
                reason: "years and months have no fixed length here; use weeks, days or hours",
            });
        }
        Ok(d.exact)
    }

    /// The moment this long after `from`, months counted on the calendar (31 January plus a
    /// month is the last day of February).
    pub fn after(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        from.checked_add_months(Months::new(self.months))?
            .checked_add_signed(self.exact)
    }

    /// Whether it is zero long.
    pub fn is_zero(&self) -> bool {
        self.months == 0 && self.exact.is_zero()
    }
}

/// Splits `"1Y2M"` into `[("1", b'Y'), ("2", b'M')]`.
fn components(text: &str) -> Result<Vec<(&str, u8)>, &'static str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b.is_ascii_alphabetic() {
            if i == start {
                return Err("a designator has no number before it");
            }
            out.push((&text[start..i], b));
            start = i + 1;
        }
    }
    if start != text.len() {
        return Err("a number has no designator after it");
    }
    Ok(out)
}

fn rank(designator: u8, order: &[u8]) -> Option<usize> {
    order.iter().position(|d| *d == designator)
}

fn whole(number: &str) -> Result<u64, &'static str> {
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err("only the seconds may have a fraction, and numbers are digits");
    }
    number.parse().map_err(|_| "it is too long a time")
}

/// Whole seconds and milliseconds (a finer fraction is cut, not rounded up).
fn seconds(number: &str) -> Result<(u64, u64), &'static str> {
    let (int, fraction) = match number.split_once(['.', ',']) {
        Some((i, f)) if !i.is_empty() && !f.is_empty() => (i, f),
        Some(_) => return Err("a fraction needs digits on both sides"),
        None => (number, ""),
    };
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err("numbers are digits");
    }
    let millis = format!("{fraction:0<3}")[..3]
        .parse()
        .map_err(|_| "numbers are digits")?;
    Ok((whole(int)?, millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(text: &str) -> i64 {
        IsoDuration::parse("ttl", text)
            .expect(text)
            .exact
            .num_milliseconds()
    }

    #[test]
    fn the_documents_forms_parse_to_their_lengths() {
        assert_eq!(exact("PT1H"), 3_600_000);
        assert_eq!(exact("P30D"), 30 * 86_400_000);
        assert_eq!(exact("PT15M"), 900_000);
        assert_eq!(exact("P1W"), 7 * 86_400_000);
        assert_eq!(exact("P1DT12H"), 36 * 3_600_000);
        assert_eq!(exact("PT0.5S"), 500);
        assert_eq!(exact("PT1,25S"), 1_250);
        assert_eq!(exact("PT90M"), 5_400_000, "a part may exceed its carry");
        let d = IsoDuration::parse("retentionPeriod", "P1Y6M").expect("parses");
        assert_eq!((d.months, d.exact.num_seconds()), (18, 0));
    }

    #[test]
    fn months_fall_on_the_calendar() {
        let d = IsoDuration::parse("deleteAfter", "P1M").expect("parses");
        let jan31 = "2026-01-31T00:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("date");
        assert_eq!(
            d.after(jan31).map(|t| t.to_rfc3339()),
            Some("2026-02-28T00:00:00+00:00".into())
        );
    }

    #[test]
    fn a_ttl_refuses_years_and_months_and_names_the_field() {
        let e = IsoDuration::fixed("ttl", "P1M").expect_err("no fixed length");
        assert_eq!(e.field, "ttl");
        assert!(
            e.to_string()
                .starts_with("ttl must be an ISO 8601 duration"),
            "{e}"
        );
        assert_eq!(
            IsoDuration::fixed("ttl", "PT1M").map(|d| d.num_seconds()),
            Ok(60)
        );
    }

    #[test]
    fn malformed_text_is_refused_with_a_reason() {
        for bad in [
            "",
            "P",
            "PT",
            "1H",
            "pt1h",
            "PT1H30",
            "PTH",
            "P1H",
            "PT1D",
            "P1DT",
            "PT1M1H",
            "P1D1D",
            "P1.5D",
            "PT.5S",
            "PT1.S",
            "PT-1S",
            "P 1D",
            "PT1.5H2S",
            "P99999999999999999999D",
            "P1000000D",
        ] {
            let e = IsoDuration::parse("max", bad).expect_err(bad);
            assert_eq!(e.field, "max", "{bad}");
        }
        assert!(IsoDuration::parse("max", &format!("P{}D", "1".repeat(70))).is_err());
    }
}
