//! Civil (proleptic Gregorian, UTC) dates and the time-partition arithmetic of time-series
//! tables: which (date, index) a timestamp falls in, and which time range a partition covers.
//!
//! Owns: `days_from_civil` / `civil_from_days` (Howard Hinnant's algorithms, so no date crate
//! is needed) and [`PartitionSpec`]. Must not: read a clock; every time here is given.
//!
//! Timestamps are milliseconds since the Unix epoch, UTC. Only dates 1970-01-01 through
//! 9999-12-31 are accepted: YYYYMMDD must fit eight digits and a u64 of milliseconds must not
//! wrap, and a timestamp outside that range is almost certainly a unit mistake (seconds or
//! nanoseconds passed as milliseconds), which is better refused than silently partitioned.

use serde::{Deserialize, Serialize};

pub const MS_PER_DAY: u64 = 86_400_000;
pub const MINUTES_PER_DAY: u32 = 1_440;
/// 9999-12-31 is day 2_932_896 since the epoch; the first excluded millisecond follows it.
pub const TIMESTAMP_END_MS: u64 = 2_932_897 * MS_PER_DAY;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum TimeError {
    /// 1 <= n <= 1440 and 1440 % n == 0: a partition is a whole number of minutes.
    #[error("partition count per day {0} must divide a day into whole minutes (1..=1440, 1440 % n == 0)")]
    BadPartitionCount(u32),
    #[error("timestamp {0} ms is outside 1970-01-01..=9999-12-31 UTC")]
    TimestampOutOfRange(u64),
    #[error("date {0} is not a valid YYYYMMDD in 19700101..=99991231")]
    BadDate(u32),
    #[error("partition index {index} is not below the count {count}")]
    BadIndex { index: u32, count: u32 },
}

/// Days since 1970-01-01 of the civil date (y, m, d). `m` in 1..=12, `d` in 1..=31.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = i64::from((m + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The civil date (y, m, d) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both casts are of values proven small by the algorithm: d in 1..=31, m in 1..=12.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// YYYYMMDD of the UTC day holding `ts_ms`.
pub fn date_of(ts_ms: u64) -> Result<u32, TimeError> {
    if ts_ms >= TIMESTAMP_END_MS {
        return Err(TimeError::TimestampOutOfRange(ts_ms));
    }
    let (y, m, d) = civil_from_days((ts_ms / MS_PER_DAY) as i64);
    // y is in 1970..=9999 by the range check above.
    Ok(y as u32 * 10_000 + m * 100 + d)
}

/// The first millisecond of the UTC day YYYYMMDD.
pub fn day_start_ms(date: u32) -> Result<u64, TimeError> {
    let (y, m, d) = (date / 10_000, (date / 100) % 100, date % 100);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return Err(TimeError::BadDate(date));
    }
    let days = days_from_civil(i64::from(y), m, d);
    // Reject 20230231 and the like: the round trip must give the same date back.
    if civil_from_days(days) != (i64::from(y), m, d) || days < 0 {
        return Err(TimeError::BadDate(date));
    }
    Ok(days as u64 * MS_PER_DAY)
}

/// How a table cuts each day: `count` partitions of equal, whole-minute length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSpec {
    count: u32,
}

/// Where a timestamp belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionSlot {
    /// YYYYMMDD.
    pub date: u32,
    pub index: u32,
}

impl PartitionSpec {
    pub fn new(count_per_day: u32) -> Result<Self, TimeError> {
        if count_per_day == 0
            || count_per_day > MINUTES_PER_DAY
            || (MINUTES_PER_DAY / count_per_day) * count_per_day != MINUTES_PER_DAY
        {
            return Err(TimeError::BadPartitionCount(count_per_day));
        }
        Ok(Self {
            count: count_per_day,
        })
    }
    pub fn count(self) -> u32 {
        self.count
    }
    /// Length of one partition in milliseconds.
    pub fn span_ms(self) -> u64 {
        MS_PER_DAY / u64::from(self.count)
    }
    pub fn slot_of(self, ts_ms: u64) -> Result<PartitionSlot, TimeError> {
        let date = date_of(ts_ms)?;
        let index = ((ts_ms % MS_PER_DAY) / self.span_ms()) as u32;
        Ok(PartitionSlot { date, index })
    }
    /// `[start, end)` in milliseconds of a partition.
    pub fn range_ms(self, slot: PartitionSlot) -> Result<(u64, u64), TimeError> {
        if slot.index >= self.count {
            return Err(TimeError::BadIndex {
                index: slot.index,
                count: self.count,
            });
        }
        let start = day_start_ms(slot.date)? + u64::from(slot.index) * self.span_ms();
        Ok((start, start + self.span_ms()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
        for z in (0..2_932_897).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z, "day {z}");
        }
    }

    #[test]
    fn partition_counts_must_cut_whole_minutes() {
        for bad in [0, 7, 1441, 1000, 2880] {
            assert_eq!(
                PartitionSpec::new(bad),
                Err(TimeError::BadPartitionCount(bad))
            );
        }
        let ok = (1..=1440)
            .filter(|n| PartitionSpec::new(*n).is_ok())
            .count();
        assert_eq!(ok, 36, "1440 = 2^5 * 3^2 * 5 has 36 divisors");
    }

    #[test]
    fn slots_and_ranges() {
        let spec = PartitionSpec::new(120).unwrap_or_else(|e| panic!("{e}"));
        // 2024-02-29 00:12:00.000 UTC starts partition 1 (12-minute partitions).
        let day = 19_782 * MS_PER_DAY;
        let slot = spec
            .slot_of(day + 12 * 60_000)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            slot,
            PartitionSlot {
                date: 20240229,
                index: 1
            }
        );
        let (s, e) = spec.range_ms(slot).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s, e), (day + 720_000, day + 1_440_000));
        let last = spec
            .slot_of(day + MS_PER_DAY - 1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(last.index, 119);
        assert_eq!(
            spec.slot_of(TIMESTAMP_END_MS),
            Err(TimeError::TimestampOutOfRange(TIMESTAMP_END_MS))
        );
        assert_eq!(day_start_ms(20230231), Err(TimeError::BadDate(20230231)));
        assert_eq!(
            spec.range_ms(PartitionSlot {
                date: 20240229,
                index: 120
            }),
            Err(TimeError::BadIndex {
                index: 120,
                count: 120
            })
        );
    }
}
