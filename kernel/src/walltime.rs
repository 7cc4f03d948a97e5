//! Calendar arithmetic: the wall clock as the CMOS RTC reports it, Unix time,
//! and the two date formats the shell prints.
//!
//! Everything here is UTC and pure integer arithmetic. Reading the CMOS
//! registers is the kernel's job; this module only interprets the values
//! ([`RtcTime::from_cmos`]).

use alloc::format;
use alloc::string::String;

/// Status register B: the RTC counts in binary rather than BCD.
pub const RTC_B_BINARY: u8 = 1 << 2;
/// Status register B: the RTC counts hours 0..=23 rather than 1..=12 + PM bit.
pub const RTC_B_24HOUR: u8 = 1 << 1;
/// The PM flag in the hour register when the RTC is in 12-hour mode.
pub const RTC_HOUR_PM: u8 = 0x80;

const SECS_PER_DAY: u64 = 86_400;
/// Days from 1970-01-01 to 9999-12-31, the last day [`from_unix`] represents.
const MAX_DAYS: i64 = 2_932_896;

/// Converts one packed BCD byte (`0x59`) to binary (`59`).
///
/// Nibbles above 9 are not valid BCD; they are converted arithmetically
/// (`0x1a` → 20) rather than rejected, and the caller's range checks catch them.
pub const fn bcd_to_bin(v: u8) -> u8 {
    (v >> 4) * 10 + (v & 0x0f)
}

/// The raw CMOS clock registers, exactly as read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CmosRegs {
    /// Register 0x00.
    pub sec: u8,
    /// Register 0x02.
    pub min: u8,
    /// Register 0x04 (bit 7 is the PM flag in 12-hour mode).
    pub hour: u8,
    /// Register 0x07, day of month.
    pub day: u8,
    /// Register 0x08.
    pub month: u8,
    /// Register 0x09, year within the century.
    pub year: u8,
    /// The century register named by the FADT, if there is one.
    pub century: Option<u8>,
    /// Status register B (0x0b): data mode and hour format.
    pub status_b: u8,
}

/// A UTC calendar date and time of day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct RtcTime {
    /// Full year, e.g. 2026.
    pub year: u16,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub min: u8,
    /// 0..=59 (60 is tolerated for a leap second).
    pub sec: u8,
}

impl RtcTime {
    /// Interprets raw CMOS registers: BCD or binary and 12- or 24-hour mode
    /// per status register B; the year is `century * 100 + year` when a
    /// century register is given, else `2000 + year`.
    ///
    /// Returns `None` when a field is out of range (the RTC was read during
    /// an update, or holds garbage).
    pub fn from_cmos(r: &CmosRegs) -> Option<RtcTime> {
        let binary = r.status_b & RTC_B_BINARY != 0;
        let conv = |v: u8| if binary { v } else { bcd_to_bin(v) };

        let pm = r.hour & RTC_HOUR_PM != 0;
        let mut hour = conv(r.hour & !RTC_HOUR_PM);
        if r.status_b & RTC_B_24HOUR == 0 {
            // 12-hour mode: 12 AM is midnight, 12 PM is noon.
            if !(1..=12).contains(&hour) {
                return None;
            }
            hour %= 12;
            if pm {
                hour += 12;
            }
        }
        let century = match r.century {
            Some(c) => u16::from(conv(c)),
            None => 20,
        };
        let t = RtcTime {
            year: century * 100 + u16::from(conv(r.year)),
            month: conv(r.month),
            day: conv(r.day),
            hour,
            min: conv(r.min),
            sec: conv(r.sec),
        };
        t.is_valid().then_some(t)
    }

    /// True when every field is in range, including the day for the month
    /// (leap years counted) and a year of at least 1970.
    pub fn is_valid(&self) -> bool {
        self.year >= 1970
            && (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.min < 60
            && self.sec <= 60
    }
}

/// True for Gregorian leap years.
pub const fn is_leap_year(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Days in `month` (1..=12) of `year`; 0 for an invalid month.
pub const fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (may be negative).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The date of a day number counted from 1970-01-01 (day ≥ 0).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Seconds since 1970-01-01 00:00:00 UTC. Fields are taken as they are
/// (no validation); a time before the epoch gives 0.
pub fn to_unix(t: &RtcTime) -> u64 {
    let days = days_from_civil(i64::from(t.year), i64::from(t.month), i64::from(t.day));
    let secs = days * 86_400 + i64::from(t.hour) * 3600 + i64::from(t.min) * 60 + i64::from(t.sec);
    u64::try_from(secs).unwrap_or(0)
}

/// The calendar time of a Unix timestamp. Times past 9999-12-31 23:59:59
/// are clamped to it.
pub fn from_unix(unix: u64) -> RtcTime {
    let days = (unix / SECS_PER_DAY) as i64;
    let (days, rem) = if days > MAX_DAYS {
        (MAX_DAYS, SECS_PER_DAY - 1)
    } else {
        (days, unix % SECS_PER_DAY)
    };
    let (year, month, day) = civil_from_days(days);
    RtcTime {
        year: year as u16,
        month,
        day,
        hour: (rem / 3600) as u8,
        min: (rem % 3600 / 60) as u8,
        sec: (rem % 60) as u8,
    }
}

/// `MM/DD/YYYY HH:MM:SS`, as `psrinfo` prints dates.
pub fn fmt_solaris_date(unix: u64) -> String {
    let t = from_unix(unix);
    format!(
        "{:02}/{:02}/{:04} {:02}:{:02}:{:02}",
        t.month, t.day, t.year, t.hour, t.min, t.sec
    )
}

/// A 12-hour clock without padding, as `uptime` prints it: `10:22pm`,
/// `9:05am`, `12:00am` (midnight).
pub fn fmt_clock_12h(unix: u64) -> String {
    let t = from_unix(unix);
    let hour12 = match t.hour % 12 {
        0 => 12,
        h => h,
    };
    let ampm = if t.hour < 12 { "am" } else { "pm" };
    format!("{}:{:02}{}", hour12, t.min, ampm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(year: u16, month: u8, day: u8, hour: u8, min: u8, sec: u8) -> RtcTime {
        RtcTime {
            year,
            month,
            day,
            hour,
            min,
            sec,
        }
    }

    #[test]
    fn bcd() {
        assert_eq!(bcd_to_bin(0x00), 0);
        assert_eq!(bcd_to_bin(0x09), 9);
        assert_eq!(bcd_to_bin(0x10), 10);
        assert_eq!(bcd_to_bin(0x59), 59);
        assert_eq!(bcd_to_bin(0x99), 99);
        assert_eq!(bcd_to_bin(0xff), 165); // garbage in, no panic
    }

    #[test]
    fn known_timestamps() {
        assert_eq!(to_unix(&t(1970, 1, 1, 0, 0, 0)), 0);
        assert_eq!(to_unix(&t(2000, 1, 1, 0, 0, 0)), 946_684_800);
        assert_eq!(to_unix(&t(2000, 2, 29, 12, 0, 0)), 951_825_600);
        assert_eq!(to_unix(&t(2038, 1, 19, 3, 14, 8)), 2_147_483_648);
        assert_eq!(to_unix(&t(2026, 11, 23, 22, 0, 0)), 1_795_471_200);
        assert_eq!(from_unix(1_795_471_200), t(2026, 11, 23, 22, 0, 0));
        assert_eq!(from_unix(0), t(1970, 1, 1, 0, 0, 0));
        assert_eq!(from_unix(951_825_600), t(2000, 2, 29, 12, 0, 0));
    }

    #[test]
    fn leap_years() {
        assert!(is_leap_year(2000));
        assert!(is_leap_year(2024));
        assert!(!is_leap_year(1900));
        assert!(!is_leap_year(2100));
        assert!(!is_leap_year(2023));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2024, 13), 0);
        // Feb 28 → Feb 29 → Mar 1 in a leap year, Feb 28 → Mar 1 otherwise.
        let feb28 = to_unix(&t(2024, 2, 28, 0, 0, 0));
        assert_eq!(from_unix(feb28 + 86_400), t(2024, 2, 29, 0, 0, 0));
        assert_eq!(from_unix(feb28 + 2 * 86_400), t(2024, 3, 1, 0, 0, 0));
        let feb28 = to_unix(&t(2100, 2, 28, 0, 0, 0));
        assert_eq!(from_unix(feb28 + 86_400), t(2100, 3, 1, 0, 0, 0));
        // Year lengths.
        let y = |y| to_unix(&t(y, 1, 1, 0, 0, 0));
        assert_eq!(y(2025) - y(2024), 366 * 86_400);
        assert_eq!(y(2101) - y(2100), 365 * 86_400);
        assert_eq!(y(2001) - y(2000), 366 * 86_400);
    }

    #[test]
    fn round_trip_every_day_for_centuries() {
        let mut unix = 0u64;
        while unix < 5_000_000_000 {
            let c = from_unix(unix + 45_296); // 12:34:56
            assert!(c.is_valid(), "{c:?}");
            assert_eq!(to_unix(&c), unix + 45_296);
            unix += 86_400;
        }
    }

    #[test]
    fn extremes_do_not_panic() {
        let last = from_unix(u64::MAX);
        assert_eq!(last, t(9999, 12, 31, 23, 59, 59));
        assert_eq!(to_unix(&last), 253_402_300_799);
        assert_eq!(to_unix(&t(1969, 12, 31, 23, 59, 59)), 0);
        assert_eq!(to_unix(&t(0, 0, 0, 0, 0, 0)), 0);
        let _ = to_unix(&t(u16::MAX, 255, 255, 255, 255, 255));
    }

    #[test]
    fn cmos_bcd_24h() {
        let r = CmosRegs {
            sec: 0x56,
            min: 0x34,
            hour: 0x23,
            day: 0x29,
            month: 0x02,
            year: 0x24,
            century: Some(0x20),
            status_b: RTC_B_24HOUR,
        };
        assert_eq!(RtcTime::from_cmos(&r), Some(t(2024, 2, 29, 23, 34, 56)));
    }

    #[test]
    fn cmos_binary_12h() {
        let mut r = CmosRegs {
            sec: 5,
            min: 7,
            hour: 12,
            day: 31,
            month: 12,
            year: 26,
            century: None,
            status_b: RTC_B_BINARY,
        };
        assert_eq!(RtcTime::from_cmos(&r).unwrap().hour, 0); // 12 AM
        r.hour = 12 | RTC_HOUR_PM;
        assert_eq!(RtcTime::from_cmos(&r).unwrap().hour, 12); // 12 PM
        r.hour = 11 | RTC_HOUR_PM;
        assert_eq!(RtcTime::from_cmos(&r), Some(t(2026, 12, 31, 23, 7, 5)));
        r.hour = 1;
        assert_eq!(RtcTime::from_cmos(&r).unwrap().hour, 1);
        r.hour = 0; // not a 12-hour value
        assert_eq!(RtcTime::from_cmos(&r), None);
    }

    #[test]
    fn cmos_bcd_12h_pm() {
        let r = CmosRegs {
            sec: 0,
            min: 0x22,
            hour: 0x10 | RTC_HOUR_PM,
            day: 0x01,
            month: 0x07,
            year: 0x99,
            century: Some(0x19),
            status_b: 0,
        };
        assert_eq!(RtcTime::from_cmos(&r), Some(t(1999, 7, 1, 22, 22, 0)));
    }

    #[test]
    fn cmos_garbage_is_rejected() {
        let mut r = CmosRegs {
            sec: 0,
            min: 0,
            hour: 0,
            day: 0x30,
            month: 0x02,
            year: 0x25,
            century: None,
            status_b: RTC_B_24HOUR,
        };
        assert_eq!(RtcTime::from_cmos(&r), None); // Feb 30
        r.day = 0x29;
        assert_eq!(RtcTime::from_cmos(&r), None); // 2025 is not leap
        r.day = 0x28;
        assert!(RtcTime::from_cmos(&r).is_some());
        r.month = 0x13;
        assert_eq!(RtcTime::from_cmos(&r), None);
        let r = CmosRegs {
            status_b: 0xff,
            hour: 0xff,
            ..Default::default()
        };
        assert_eq!(RtcTime::from_cmos(&r), None);
    }

    #[test]
    fn formats() {
        let u = to_unix(&t(2026, 11, 23, 22, 0, 0));
        assert_eq!(fmt_solaris_date(u), "11/23/2026 22:00:00");
        assert_eq!(fmt_solaris_date(0), "01/01/1970 00:00:00");
        assert_eq!(fmt_clock_12h(to_unix(&t(2026, 1, 1, 22, 22, 0))), "10:22pm");
        assert_eq!(fmt_clock_12h(to_unix(&t(2026, 1, 1, 0, 5, 0))), "12:05am");
        assert_eq!(fmt_clock_12h(to_unix(&t(2026, 1, 1, 12, 0, 59))), "12:00pm");
        assert_eq!(fmt_clock_12h(to_unix(&t(2026, 1, 1, 9, 5, 0))), "9:05am");
    }
}
